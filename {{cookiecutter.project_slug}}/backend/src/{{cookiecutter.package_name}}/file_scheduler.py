"""Beat's schedule in a file on its volume: Celery's persistent scheduler,
made to fail loudly and never skip a run.

On top of scheduler.SendRecordingMixin it:

- keeps beat sending when its volume is full or read-only: the schedule
  stays in memory until it can be saved again, and the health check says why;
- starts a fresh schedule, with one ERROR line, when the file is corrupt.
"""

import errno
import heapq
import os
import shelve

from celery.beat import PersistentScheduler, ScheduleEntry, event_t
from celery.utils.log import get_logger

from .scheduler import SendRecordingMixin, one_line

logger = get_logger(__name__)

# "Cannot write here", as opposed to "this file is corrupt". SQLite's errors
# (dbm.sqlite3 wraps them in an OSError without errno) only say so in words.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
STORAGE_MESSAGES = ("disk is full", "readonly database", "unable to open database file", "disk I/O error")


def is_storage_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return True
    return any(message in str(exc) for message in STORAGE_MESSAGES)


class FileScheduler(SendRecordingMixin, PersistentScheduler):
    """The schedule in a file on beat's volume (``--schedule``)."""

    scheduler_kind = "file"
    # SQLite, Python 3.13's default dbm, keeps a write-ahead log beside the file.
    known_suffixes = (*PersistentScheduler.known_suffixes, "-wal", "-shm")
    _in_memory = False

    def setup_schedule(self):
        self._next_runs = {}
        self._failed_this_tick = {}
        self._discard_unreadable_schedule()
        try:
            super().setup_schedule()
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            # Keep sending from memory rather than crash-loop; sync() moves
            # the schedule back to the file once it can be written.
            self._drop_store()
            self._in_memory = True
            super().setup_schedule()
            self.record_storage_problem(self._cannot_save(exc))

    def tick(self, *args, **kwargs):
        delay = super().tick(*args, **kwargs)
        if self._failed_this_tick:
            self._retry_later(self._failed_this_tick)
            self._failed_this_tick = {}
        self.write_record(self.schedule)
        return delay

    def reserve(self, entry):
        # tick() calls this just before sending: hold the next run back until
        # the send has succeeded (Celery stores and saves it before sending).
        next_run = self._next_runs[entry.name] = next(entry)
        return next_run

    def apply_entry(self, entry, producer=None):
        next_run = self._next_runs.pop(entry.name)
        if self.send(entry, producer):
            self.schedule[entry.name] = next_run
            self.sync()
        else:
            self._failed_this_tick[entry.name] = entry

    def _retry_later(self, failed: dict[str, ScheduleEntry]) -> None:
        """tick() has queued each failed entry's next regular run: replace
        it with a retry one loop interval from now; it is still due then."""
        retry_at = {name: self._when(entry, self.max_interval) for name, entry in failed.items()}
        self._heap = [event for event in self._heap if event[2].name not in failed]
        self._heap += [event_t(retry_at[name], 5, entry) for name, entry in failed.items()]
        heapq.heapify(self._heap)

    def _discard_unreadable_schedule(self) -> None:
        """Celery resets some corrupt files silently and crashes on others:
        read the file first, and start over with one ERROR line if it fails."""
        try:
            with shelve.open(self.schedule_filename, flag="r") as store:  # noqa: S301 - beat's own file
                if "entries" not in store:
                    raise LookupError("it holds no schedule entries")
                if not all(isinstance(entry, ScheduleEntry) for entry in dict(store["entries"]).values()):
                    raise TypeError("the stored entries are not schedule entries")
        except Exception as exc:  # noqa: BLE001 - whatever fails to load is corruption
            if is_storage_error(exc) or not self._schedule_file_exists():
                return
            logger.error(
                "The schedule file %s is corrupt (%s): starting a fresh schedule, "
                "in which each task's next run counts from now",
                self.schedule_filename,
                one_line(exc),
            )
            self._remove_db()

    def _schedule_file_exists(self) -> bool:
        return any(os.path.exists(self.schedule_filename + suffix) for suffix in self.known_suffixes)

    def _open_schedule(self):
        if self._in_memory:
            return shelve.Shelf({}, writeback=True)
        return super()._open_schedule()

    def _destroy_open_corrupted_schedule(self, exc):
        # Celery removes the file on any error opening it, a full disk
        # included: a good schedule would be lost. Corruption was handled above.
        if is_storage_error(exc):
            raise exc
        return super()._destroy_open_corrupted_schedule(exc)

    def sync(self):
        try:
            if self._in_memory:
                self._move_schedule_to_file()
            super().sync()
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            # shelve leaves writeback off after a failed write, and would
            # then never save again.
            self._store.writeback = True
            self.record_storage_problem(self._cannot_save(exc))
        else:
            self.record_storage_problem(None)

    def close(self):
        # Closing the store saves it once more; on a full volume that must
        # not end beat with a traceback instead of a reason.
        try:
            super().close()
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            logger.error("%s; beat stops without saving its last runs", self._cannot_save(exc))

    def _drop_store(self) -> None:
        """Close a half-set-up store without the final save that would fail
        the same way (and, left to the garbage collector, print a traceback)."""
        store, self._store = self._store, None
        if store is not None:
            store.writeback, store.cache = False, {}
            store.close()

    def _move_schedule_to_file(self) -> None:
        stored = self.persistence.open(self.schedule_filename, writeback=True)
        try:
            stored.update(dict(self._store))
            stored.sync()
        except BaseException:
            stored.close()
            raise
        self._store, self._in_memory = stored, False

    def _cannot_save(self, exc: BaseException) -> str:
        where = "kept in memory only" if self._in_memory else "not saved"
        return f"cannot save the schedule to {self.schedule_filename} ({one_line(exc)}): it is {where}"
