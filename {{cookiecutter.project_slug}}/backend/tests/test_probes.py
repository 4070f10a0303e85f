"""The health probes: what each record means, with the standard library only."""

import os
import subprocess
import sys
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
    code = "import sys; import {{ cookiecutter.package_name }}.probes; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=PROBE_ENV)
    modules = done.stdout
    for heavy in ("celery", "kombu", "pydantic", "sqlalchemy"):
        assert f"'{heavy}'" not in modules
