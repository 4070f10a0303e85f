"""Beat's scheduler: the persistent shelve scheduler, plus a heartbeat.

Start beat with ``-S {{ cookiecutter.package_name }}.scheduler:HeartbeatScheduler``.
"""

from pathlib import Path

from celery.beat import PersistentScheduler
from celery.utils.log import get_logger

from .settings import get_settings

logger = get_logger(__name__)


class HeartbeatScheduler(PersistentScheduler):
    """Touches a heartbeat file on every tick, so a beat that is alive but no
    longer scheduling turns its container unhealthy instead of going silent."""

    def setup_schedule(self):
        super().setup_schedule()
        for name, entry in sorted(self.schedule.items()):
            logger.info("Registered periodic task %s: %s %r", name, entry.task, entry.schedule)

    def tick(self, *args, **kwargs):
        next_wake = super().tick(*args, **kwargs)
        Path(get_settings().beat_heartbeat_file).touch()
        return next_wake
