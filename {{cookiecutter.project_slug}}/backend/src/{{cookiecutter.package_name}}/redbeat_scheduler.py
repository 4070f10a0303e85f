"""Beat's schedule in Redis, with celery-redbeat: two beats run, one sends
and the other stands by, and a lock in Redis says which.

The lock's timeout is short (BEAT_LOCK_TIMEOUT, 15 s): the active beat renews
it every tick (at least every 5 s), and when that beat dies the standby takes
over within the timeout plus one of its own ticks. The trade-off: an active
beat stalled for longer than the timeout (a frozen host, a Redis that stops
answering) loses the lock to the standby, and both may send the same run
once. A longer timeout means a slower failover instead.

On top of celery-redbeat (and scheduler.SendRecordingMixin) it:

- counts a run only once its send has succeeded (redbeat stores the new
  last_run_at in Redis before sending, so a failed send was a skipped run);
- takes the lock without blocking, in the tick: redbeat's own waits at start,
  never ticking, so a standby could not say that it is ready to take over;
- records its role, and a Redis it cannot reach, for the health check.
"""

import redis
from celery.signals import beat_init
from celery.utils.log import get_logger
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, acquire_distributed_beat_lock, get_redis
from redbeat.schedulers import RedBeatScheduler as RedBeatBase

from .scheduler import SendRecordingMixin, one_line

logger = get_logger(__name__)

# Replaced by RedBeatScheduler.hold_lock, which does not block.
beat_init.disconnect(acquire_distributed_beat_lock)


class RedBeatScheduler(SendRecordingMixin, RedBeatBase):
    scheduler_kind = "redbeat"

    def tick(self, *args, **kwargs):
        try:
            if self.hold_lock():
                self.role = "active"
                delay = super().tick(*args, **kwargs)
            else:
                self.role = "standby"
                delay = self.max_interval
            self.record_storage_problem(None)
            self.write_record(self.stored_entries())
        except redis.RedisError as exc:
            self.record_storage_problem(f"cannot reach the schedule in Redis ({one_line(exc)})")
            self.write_record({})
            delay = self.max_interval
        return delay

    def hold_lock(self) -> bool:
        """Keep the lock if this beat holds it, or take it if it is free.
        redbeat's tick renews it."""
        if self.lock is not None:
            if self.lock.owned():
                return True
            logger.warning("beat: Lost the lock to another beat; standing by")
            self.lock = None
        client = get_redis(self.app)
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        # redbeat's script renews the lock to its full timeout, as redbeat does.
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        if not lock.acquire(blocking=False):
            return False
        logger.info("beat: Acquired lock; this beat sends")
        self.lock = lock
        return True

    def maybe_due(self, entry, **kwargs):
        is_due, next_time_to_run = entry.is_due()
        if not is_due:
            return next_time_to_run
        if self.send(entry, kwargs.get("producer")):
            # Only now: the new last_run_at and the next due time, in Redis.
            next(entry)
            return next_time_to_run
        # Still due; a later tick retries it.
        return self.max_interval

    def stored_entries(self) -> dict:
        return {
            name: self.Entry.from_key(self.Entry.generate_key(self.app, name), app=self.app)
            for name in self.app.conf.beat_schedule
        }
