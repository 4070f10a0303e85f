"""Prometheus metrics, served inside the stack on METRICS_PORT (9808, not
published): beat serves its sends per entry, each worker the outbox. Flower's
own /metrics (tasks, workers) stays on its port.

The outbox's gauges are read from PostgreSQL on each scrape; its counters
live in Redis, where every sweep adds what it did, so they count across all
worker processes and replicas.
"""

from contextlib import suppress
from functools import cache

import redis
from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from . import outbox
from .models import PENDING, OutboxEvent
from .settings import get_settings

COUNTERS_KEY = "{{ cookiecutter.package_name }}:metrics:outbox"
COUNTED = {
    "processed": "Outbox events handled",
    "retried": "Failed attempts released for a retry",
    "dead_lettered": "Events dead-lettered after their last attempt",
}

BEAT_REGISTRY = CollectorRegistry()
BEAT_SENDS = Counter(
    "celery_beat_sends", "Sends of a beat entry that reached the broker", ["entry"], registry=BEAT_REGISTRY
)
BEAT_SEND_FAILURES = Counter(
    "celery_beat_send_failures", "Sends of a beat entry that failed", ["entry"], registry=BEAT_REGISTRY
)


@cache
def serve(registry: CollectorRegistry) -> None:
    """Serve `registry` on METRICS_PORT in a thread, once per process; 0 turns it off."""
    if port := get_settings().metrics_port:
        start_http_server(port, registry=registry)


def count_drain(result) -> None:
    """Add a sweep's outcome to the shared counters. Never raises: the sweep's
    work is committed, and a lost increment is only a lost increment."""
    with suppress(redis.RedisError), broker() as client, client.pipeline() as pipeline:
        for name in COUNTED:
            if amount := getattr(result, name):
                pipeline.hincrby(COUNTERS_KEY, name, amount)
        pipeline.execute()


def broker() -> redis.Redis:
    return redis.Redis.from_url(get_settings().celery_broker_url, socket_timeout=5, socket_connect_timeout=5)


class OutboxCollector:
    """Read on each scrape. Its own engine, without a pool: it runs in the
    worker's main process, whose forked children must not share connections."""

    def __init__(self) -> None:
        self.engine = create_engine(get_settings().sqlalchemy_url, poolclass=NullPool)

    def collect(self):
        with Session(self.engine) as session:
            counts = outbox.count_by_status(session)
            oldest = session.scalar(
                select(func.extract("epoch", func.now() - func.min(OutboxEvent.created_at))).where(
                    OutboxEvent.status == PENDING
                )
            )
        with broker() as client:
            totals = client.hgetall(COUNTERS_KEY)
        events = GaugeMetricFamily("outbox_events", "Outbox events per status", labels=["status"])
        for status, count in counts.items():
            events.add_metric([status], count)
        yield events
        yield GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending event; 0 when none is pending",
            value=float(oldest or 0),
        )
        for name, documentation in COUNTED.items():
            yield CounterMetricFamily(f"outbox_events_{name}", documentation, value=int(totals.get(name.encode(), 0)))


def serve_outbox_metrics() -> None:
    """Once the worker is ready, its main process serves the outbox (factory.py)."""
    registry = CollectorRegistry()
    registry.register(OutboxCollector())
    serve(registry)
