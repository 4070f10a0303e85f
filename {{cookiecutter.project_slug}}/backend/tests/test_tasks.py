"""The tasks through a real worker on a real Redis broker, as beat sends them."""

import time

import pytest
from celery.contrib.testing.worker import start_worker

from {{ cookiecutter.package_name }} import outbox, probes, relay
from {{ cookiecutter.package_name }}.factory import create_app
from {{ cookiecutter.package_name }}.orders import create_orders

from conftest import wait_for


@pytest.fixture(scope="module")
def app(engine):
    return create_app()


@pytest.fixture(scope="module")
def worker(app):
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["outbox", "maintenance"]) as worker:
        yield worker


@pytest.mark.parametrize(
    "name", ["process-outbox-events", "reconcile-data-consistency", "cleanup-processed-outbox-events"]
)
def test_every_periodic_task_runs_on_a_worker(app, worker, new_session, name):
    result = app.send_task(app.conf.beat_schedule[name]["task"])
    assert isinstance(result.get(timeout=30), dict)


def test_the_outbox_sweep_processes_emitted_events(app, worker, new_session):
    with new_session() as session:
        create_orders(session, 3)
        session.commit()
    result = app.send_task(app.conf.beat_schedule["process-outbox-events"]["task"])
    assert result.get(timeout=30) == {"processed": 3, "retried": 0, "dead_lettered": 0, "more_left": False}


def test_an_emitters_nudge_has_its_events_processed_without_beat(app, worker, new_session):
    relay.starting_sweep()
    with new_session() as session:
        create_orders(session, 5)
        session.commit()
    assert relay.nudge()

    def processed():
        with new_session() as session:
            return outbox.count_by_status(session)["processed"] == 5

    wait_for(processed, timeout=30, message="the nudged sweep")


def test_the_outbox_sweep_is_routed_to_the_outbox_queue(app):
    route = app.amqp.router.route({}, "{{ cookiecutter.package_name }}.tasks.process_outbox_events")
    assert route["queue"].name == "outbox"
    route = app.amqp.router.route({}, "{{ cookiecutter.package_name }}.tasks.cleanup_processed_outbox_events")
    assert route["queue"].name == "maintenance"


def test_a_consuming_worker_keeps_its_liveness_record_fresh(worker):
    """What the worker's health check reads; the consumer bootstep writes it."""
    assert probes.worker_problem(probes.read_record(probes.WORKER_RECORD), time.time()) is None
