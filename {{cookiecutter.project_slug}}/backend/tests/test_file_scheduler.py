"""Beat's scheduler in Celery's own beat loop, against a real Redis that goes
away and comes back: a failed send is retried, once, and never skipped; a
corrupt or unwritable schedule file does not stop beat."""

import dbm
import logging
import os
import shelve
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from celery.beat import Service
from celery.schedules import crontab
from testcontainers.community.redis import RedisContainer

from {{ cookiecutter.package_name }} import probes
from {{ cookiecutter.package_name }}.factory import create_app
from {{ cookiecutter.package_name }}.file_scheduler import FileScheduler
from {{ cookiecutter.package_name }}.schedule import SEND_OPTIONS

from conftest import REDIS_IMAGE, REDIS_PASSWORD, wait_for

TASKS = "{{ cookiecutter.package_name }}.tasks"
# Each task goes to its own queue, so a queue's length counts its sends.
SCHEDULE = {
    "every-second": {"task": f"{TASKS}.process_outbox_events", "schedule": 1.0, "options": SEND_OPTIONS},
    "every-minute": {"task": f"{TASKS}.reconcile_data_consistency", "schedule": crontab(), "options": SEND_OPTIONS},
}
QUEUE_OF = {"every-second": "outbox", "every-minute": "maintenance"}


@pytest.fixture
def beat_app(dead_broker):
    """An app whose broker is a port where nothing listens yet."""
    app = create_app()
    app.conf.beat_schedule = SCHEDULE
    app.broker_port = dead_broker
    return app


@pytest.fixture
def schedule_file(tmp_path):
    return str(tmp_path / "celerybeat-schedule")


def scheduler_class(tmp_path):
    return type("TestScheduler", (FileScheduler,), {"record_path": tmp_path / "record.json"})


@contextmanager
def running_beat(app, schedule_file, tmp_path):
    """Celery's own beat loop in a thread, as `celery beat` runs it."""
    service = Service(app, scheduler_cls=scheduler_class(tmp_path), schedule_filename=schedule_file, max_interval=1)
    thread = threading.Thread(target=service.start, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop()
        thread.join(timeout=15)


def make_overdue(app, schedule_file, tmp_path, name):
    """Store `name` as last run two minutes ago: due now, for any crontab."""
    overdue = app.now() - timedelta(minutes=2)
    scheduler = scheduler_class(tmp_path)(app=app, schedule_filename=schedule_file, max_interval=1)
    scheduler.schedule[name].last_run_at = overdue
    scheduler.close()
    return overdue


def record(tmp_path) -> dict:
    return probes.read_record(tmp_path / "record.json") or {"entries": {}}


def test_a_send_that_fails_is_retried_once_the_broker_is_back_never_skipped(beat_app, schedule_file, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    make_overdue(beat_app, schedule_file, tmp_path, "every-minute")
    broker = RedisContainer(REDIS_IMAGE, password=REDIS_PASSWORD).with_bind_ports(6379, beat_app.broker_port)
    try:
        with running_beat(beat_app, schedule_file, tmp_path) as service:
            failing = wait_for(
                lambda: (
                    all(record(tmp_path)["entries"].get(name, {}).get("ok") is False for name in SCHEDULE)
                    and record(tmp_path)
                ),
                timeout=20,
                message="both entries to fail",
            )
            # The overdue crontab run is kept: its last run is not advanced.
            assert service.scheduler.schedule["every-minute"].last_run_at < beat_app.now() - timedelta(minutes=1)
            problem = probes.beat_problem(failing, now=time.time() + failing["send_failure_grace"] + 1)
            assert problem.startswith("sends of every-")
            assert "Error 111 connecting to 127.0.0.1" in problem

            broker.start()
            back_at = time.time()
            wait_for(
                lambda: all(record(tmp_path)["entries"][name]["ok"] for name in SCHEDULE),
                timeout=20,
                message="both entries to be sent",
            )
            wait_for(lambda: time.time() > back_at + 3, timeout=5)
            assert probes.beat_problem(record(tmp_path), time.time()) is None
        stopped_at = time.time()

        client = redis.Redis(port=beat_app.broker_port, password=REDIS_PASSWORD)
        sent = {name: client.llen(queue) for name, queue in QUEUE_OF.items()}
    finally:
        broker.stop()
    # The missed crontab run goes out once, not once per failed tick; a
    # minute boundary crossed since may (not must) have sent the next run.
    assert 1 <= sent["every-minute"] <= 1 + int(stopped_at // 60) - int(back_at // 60)
    # ...nor does the interval entry catch up on the seconds it missed.
    assert 1 <= sent["every-second"] <= stopped_at - back_at + 1
    # One ERROR line per failed send, naming the entry and the cause.
    lines = [record.getMessage() for record in caplog.records]
    for name in SCHEDULE:
        errors = [line for line in lines if line.startswith(f"Send failed: {name} (")]
        attempts = [line for line in lines if line.startswith(f"Scheduler: Sending due task {name} (")]
        assert len(errors) == len(attempts) - sent[name] > 0
        assert all("was not sent: OperationalError: Error 111 connecting to 127.0.0.1" in line for line in errors)


def test_a_valid_schedule_file_is_kept_across_restarts(beat_app, schedule_file, tmp_path):
    overdue = make_overdue(beat_app, schedule_file, tmp_path, "every-minute")
    scheduler = scheduler_class(tmp_path)(app=beat_app, schedule_filename=schedule_file, max_interval=1)
    assert scheduler.schedule["every-minute"].last_run_at == overdue
    scheduler.close()


def schedule_files(path):
    """The files of whichever dbm the Python running the tests uses."""
    return [path + suffix for suffix in FileScheduler.known_suffixes if os.path.exists(path + suffix)]


def random_bytes(path):
    for file in schedule_files(path):
        size = os.path.getsize(file)
        with open(file, "wb") as overwritten:
            overwritten.write(os.urandom(size))


def truncated(fraction):
    def truncate(path):
        for file in schedule_files(path):
            os.truncate(file, int(os.path.getsize(file) * fraction))

    return truncate


def entries_pickle_truncated(path):
    with dbm.open(path, "w") as store:
        store[b"entries"] = store[b"entries"][:40]


def entries_of_the_wrong_type(path):
    with shelve.open(path, writeback=False) as store:  # noqa: S301 - the test's own file
        store["entries"] = {"every-second": "not an entry"}


CORRUPTIONS = {
    "random bytes": random_bytes,
    "truncated to nothing": truncated(0),
    "truncated to half": truncated(0.5),
    "entries pickle truncated": entries_pickle_truncated,
    "entries of the wrong type": entries_of_the_wrong_type,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_schedule_file_is_replaced_with_one_error_line(beat_app, schedule_file, tmp_path, caplog, corrupt):
    scheduler_class(tmp_path)(app=beat_app, schedule_filename=schedule_file, max_interval=1).close()
    corrupt(schedule_file)
    caplog.clear()

    scheduler = scheduler_class(tmp_path)(app=beat_app, schedule_filename=schedule_file, max_interval=1)
    assert sorted(scheduler.schedule) == sorted(SCHEDULE)
    scheduler.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"The schedule file {schedule_file} is corrupt (")
    with shelve.open(schedule_file, flag="r") as store:  # noqa: S301 - the test's own file
        assert sorted(store["entries"]) == sorted(SCHEDULE)


def test_beat_without_a_writable_schedule_file_keeps_scheduling_and_says_why(beat_app, tmp_path):
    # /sys refuses new files even to root: a real unwritable place.
    unwritable = "/sys/celerybeat-schedule"
    scheduler = scheduler_class(tmp_path)(app=beat_app, schedule_filename=unwritable, max_interval=1)
    assert sorted(scheduler.schedule) == sorted(SCHEDULE)
    scheduler.tick()
    problem = probes.beat_problem(record(tmp_path), time.time())
    assert problem.startswith(f"cannot save the schedule to {unwritable} (PermissionError: ")
    assert problem.endswith("it is kept in memory only")
    scheduler.close()
