"""The worker's liveness record, which its health check reads
(`python -m {{ cookiecutter.package_name }}.probes worker`).

A consumer bootstep: Celery starts it once the worker consumes from the
broker, and stops and restarts it with the connection. While it runs, the
worker's own event loop rewrites the record every few seconds; a worker that
lost the broker, or whose loop is stuck, lets it go stale or removes it.
"""

import contextlib
import os
import time

from celery import bootsteps

from . import probes

REFRESH_SECONDS = 2.0


class LivenessRecord(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer, **kwargs):
        self.refresh = None
        super().__init__(consumer, **kwargs)

    def start(self, consumer):
        self.write()
        self.refresh = consumer.timer.call_repeatedly(REFRESH_SECONDS, self.write)

    def stop(self, consumer):
        if self.refresh is not None:
            self.refresh.cancel()
            self.refresh = None
        with contextlib.suppress(FileNotFoundError):
            os.remove(probes.WORKER_RECORD)

    shutdown = stop

    @staticmethod
    def write() -> None:
        probes.write_record(probes.WORKER_RECORD, {"alive_at": time.time()})
