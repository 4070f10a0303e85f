"""Waking the relay: after an emitter commits its events, it sends the sweep
at once instead of leaving them for beat's next one (beat's sweep stays the
safety net).

A burst of emits sends one nudge. The first sets a flag in Redis and sends
the sweep; the sweep clears the flag as it starts, before it claims anything.
So an event committed after that start sends a new nudge, and one committed
before it is claimed by that sweep: no wake-up is lost.
"""

from contextlib import suppress
from functools import cache

import kombu.exceptions
import redis
from celery.utils.log import get_logger

from .settings import get_settings

logger = get_logger(__name__)

NUDGE_FLAG = "{{ cookiecutter.package_name }}:outbox:nudged"
SWEEP_TASK = "{{ cookiecutter.package_name }}.tasks.process_outbox_events"


@cache
def flags() -> redis.Redis:
    return redis.Redis.from_url(get_settings().celery_broker_url)


def nudge() -> bool:
    """Send the sweep now, unless one is already on its way. Never raises:
    an emitter's commit has happened, and beat's sweep will find its events."""
    # Expires in case its sweep is lost; beat's sweep clears it anyway.
    expiry = max(1, round(get_settings().outbox_interval_seconds))
    try:
        if not flags().set(NUDGE_FLAG, 1, nx=True, ex=expiry):
            return False
        from .celery_app import app

        app.send_task(SWEEP_TASK, ignore_result=True, retry=False)
    except (redis.RedisError, kombu.exceptions.OperationalError) as exc:
        logger.warning("Could not nudge the relay (%s); beat's next sweep picks the events up", exc)
        with suppress(redis.RedisError):
            flags().delete(NUDGE_FLAG)
        return False
    return True


def starting_sweep() -> None:
    """Called by the sweep before it claims: events committed from now on nudge again."""
    flags().delete(NUDGE_FLAG)
