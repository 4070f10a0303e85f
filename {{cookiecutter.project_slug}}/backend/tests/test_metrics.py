"""The outbox's Prometheus metrics: gauges from PostgreSQL, counters that
sweeps add to in Redis."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_outbox import drain, emit

from {{ cookiecutter.package_name }} import metrics, outbox
from {{ cookiecutter.package_name }}.orders import HANDLERS


def scrape() -> dict:
    registry = CollectorRegistry()
    registry.register(metrics.OutboxCollector())
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_outbox_metrics_show_its_state_and_count_what_sweeps_did(new_session):
    before = scrape()
    emit(new_session, 5)
    pending = scrape()
    assert pending[("outbox_events", (("status", "pending"),))] == 5
    assert pending[("outbox_oldest_pending_age_seconds", ())] >= 0

    def failing(session, events):
        raise RuntimeError("poison")

    with new_session() as session:
        outbox.record_event(session, "poison", {})
        session.commit()
    metrics.count_drain(drain(new_session, {**HANDLERS, "poison": failing}, max_attempts=1))

    after = scrape()
    assert after[("outbox_events", (("status", "processed"),))] == 5
    assert after[("outbox_events", (("status", "failed"),))] == 1
    assert after[("outbox_oldest_pending_age_seconds", ())] == 0
    processed = ("outbox_events_processed_total", ())
    dead = ("outbox_events_dead_lettered_total", ())
    assert after[processed] - before[processed] == 5
    assert after[dead] - before[dead] == 1


def test_counting_a_sweep_never_raises_when_redis_is_gone(dead_broker):
    metrics.count_drain(outbox.DrainResult(processed=3))
