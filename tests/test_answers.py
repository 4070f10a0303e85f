"""Answers: defaults work unattended, saved answers replay, bad ones are refused."""

import json
import subprocess

import pytest
from conftest import TEMPLATE, VENV_BIN

BAD_ANSWERS = [
    ("project_slug", "My Project", "must match ^[a-z][a-z0-9_-]*$"),
    ("package_name", "order-relay", "must match ^[a-z][a-z0-9_]*$"),
    ("package_name", "9lives", "must match ^[a-z][a-z0-9_]*$"),
    ("python_version", "3.9", "one of 3.12, 3.13, 3.14"),
    ("outbox_interval_seconds", "0", "a whole number of seconds, at least 1"),
    ("outbox_interval_seconds", "ten", "a whole number of seconds, at least 1"),
    ("cleanup_hour_utc", "24", "an hour from 0 to 23"),
    ("cleanup_hour_utc", "-1", "an hour from 0 to 23"),
    ("outbox_retention_days", "0", "a whole number of days, at least 1"),
    ("flower_port", "80", "a port from 1024 to 65535"),
    ("flower_port", "65536", "a port from 1024 to 65535"),
]


def cookiecutter(output_dir, *arguments) -> subprocess.CompletedProcess:
    command = [str(VENV_BIN / "cookiecutter"), "--output-dir", str(output_dir), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("answer", "value", "rule"), BAD_ANSWERS, ids=[f"{a}={v}" for a, v, _ in BAD_ANSWERS])
def test_a_bad_answer_stops_the_bake_with_one_clear_line_and_no_folder(tmp_path, answer, value, rule):
    done = cookiecutter(tmp_path, "--no-input", str(TEMPLATE), f"{answer}={value}")
    assert done.returncode == 1
    assert f"ERROR: {answer}={value!r} is invalid: {rule}." in done.stderr.splitlines()
    assert list(tmp_path.iterdir()) == []


def test_a_choice_outside_its_list_is_refused_by_cookiecutter_and_leaves_no_folder(tmp_path):
    done = cookiecutter(tmp_path, "--no-input", str(TEMPLATE), "ci=gitlab")
    assert done.returncode == 1
    assert "gitlab provided for choice variable ci, but the choices are ['github', 'none']" in done.stderr


def test_a_web_answer_outside_its_list_is_refused_and_leaves_no_folder(tmp_path):
    done = cookiecutter(tmp_path, "--no-input", str(TEMPLATE), "web=django")
    assert done.returncode == 1
    assert "django provided for choice variable web, but the choices are ['fastapi', 'none']" in done.stderr
    assert list(tmp_path.iterdir()) == []
    assert list(tmp_path.iterdir()) == []


def test_no_input_bakes_the_defaults(tmp_path):
    done = cookiecutter(tmp_path, "--no-input", str(TEMPLATE))
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "celery_stack" / ".cookiecutter.json").read_text())["cookiecutter"]
    assert saved["package_name"] == "celery_stack"
    assert saved["outbox_interval_seconds"] == "10"


def test_a_saved_cookiecutter_json_replays_the_same_project(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    done = cookiecutter(first, "--no-input", str(TEMPLATE), "project_name=Order Relay", "flower_port=6000", "ci=none")
    assert done.returncode == 0, done.stderr
    saved = first / "order_relay" / ".cookiecutter.json"

    done = cookiecutter(second, "--replay-file", str(saved), str(TEMPLATE))
    assert done.returncode == 0, done.stderr

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert files(first) == files(second)
    assert "127.0.0.1:${FLOWER_PORT:-6000}:5555" in (second / "order_relay" / "compose.yaml").read_text()
