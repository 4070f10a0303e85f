"""The health probes: what each record means, with the standard library only."""

import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import probes

NOW = 1_000_000.0
# How a container runs the probe: a fresh interpreter with only the source on its path.
PROBE_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def beat_record(**changes) -> dict:
    record = {
        "scheduler": "file",
        "ticked_at": NOW - 1,
        "max_tick_age": 30,
        "send_failure_grace": 20,
        "storage_problem": None,
        "entries": {"process-outbox-events": {"failing_since": None, "error": None}},
    }
    return {**record, **changes}


def failing_since(seconds_ago: float) -> dict:
    return {"process-outbox-events": {"failing_since": NOW - seconds_ago, "error": "OperationalError: refused"}}


def test_a_ticking_beat_whose_sends_succeed_is_healthy():
    assert probes.beat_problem(beat_record(), NOW) is None


def test_beat_that_has_not_ticked_yet_is_unhealthy():
    assert probes.beat_problem(None, NOW) == "no record yet: the scheduler has not ticked"


def test_beat_that_stopped_ticking_is_unhealthy():
    problem = probes.beat_problem(beat_record(ticked_at=NOW - 31), NOW)
    assert problem == "last tick 31s ago (limit 30s): beat is not ticking"


def test_sends_failing_within_the_grace_are_tolerated():
    assert probes.beat_problem(beat_record(entries=failing_since(20)), NOW) is None


def test_sends_failing_past_the_grace_make_beat_unhealthy_and_say_why():
    problem = probes.beat_problem(beat_record(entries=failing_since(21)), NOW)
    assert problem == "sends of process-outbox-events have failed for 21s (limit 20s): OperationalError: refused"


def test_a_schedule_that_cannot_be_saved_makes_beat_unhealthy():
    problem = probes.beat_problem(beat_record(storage_problem="cannot save the schedule"), NOW)
    assert problem == "cannot save the schedule"


def test_a_worker_whose_consumer_keeps_its_record_fresh_is_healthy():
    assert probes.worker_problem({"alive_at": NOW - 3}, NOW) is None


def test_a_worker_without_a_record_is_not_consuming():
    assert probes.worker_problem(None, NOW) == "no liveness record: the worker is not consuming from the broker"


def test_a_worker_whose_record_went_stale_is_stuck():
    problem = probes.worker_problem({"alive_at": NOW - 11}, NOW)
    assert problem == "liveness record 11s old (limit 10s): the worker's event loop is stuck"


@pytest.fixture
def http_server():
    """A real HTTP server on a free port, answering /healthcheck as told."""
    answer = {"status": 200, "body": b"OK"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(answer["status"])
            self.end_headers()
            self.wfile.write(answer["body"])

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address, answer
    server.shutdown()
    server.server_close()


def test_flower_answering_ok_is_healthy(http_server):
    address, _ = http_server
    assert probes.flower_problem(address) is None


def test_flower_answering_anything_else_is_unhealthy(http_server):
    address, answer = http_server
    answer.update(status=500, body=b"Internal Server Error")
    assert "answered b'HTTP/1.0 500" in probes.flower_problem(address)


def test_flower_not_listening_is_unhealthy():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        free = unused.getsockname()
    assert "failed: [Errno 111] Connection refused" in probes.flower_problem(free)


def test_records_are_replaced_whole(tmp_path):
    path = tmp_path / "record.json"
    probes.write_record(path, beat_record())
    probes.write_record(path, beat_record(scheduler="redbeat"))
    assert probes.read_record(path)["scheduler"] == "redbeat"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


@pytest.mark.parametrize(("arguments", "status"), [(["beat"], 1), (["nonsense"], 2), ([], 2)])
def test_the_command_line_exits_non_zero_with_the_reason(arguments, status):
    done = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}.probes", *arguments],
        capture_output=True,
        text=True,
        check=False,
        env=PROBE_ENV,
    )
    assert done.returncode == status
    assert done.stderr.strip()


def test_the_probe_imports_nothing_outside_the_standard_library():
    # As the health checks run it: python -S.
    code = "import sys; import {{ cookiecutter.package_name }}.probes; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True, env=PROBE_ENV)
    modules = done.stdout
    for heavy in ("celery", "kombu", "pydantic", "sqlalchemy", "json", "pathlib", "socket"):
        assert f"'{heavy}'" not in modules


def test_a_standby_beat_that_ticks_is_healthy():
    """Ready to take over: it sends nothing, so no send can have failed."""
    assert probes.beat_problem(beat_record(role="standby"), NOW) is None
