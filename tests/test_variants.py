"""Each variant of the matrix: the answers take effect where they should, and
the generated project's own lint and unit/integration tests pass on it."""

import re

import pytest
from conftest import VARIANTS, run

DEFAULTS = {
    "python_version": "3.13",
    "outbox_interval_seconds": "10",
    "cleanup_hour_utc": "3",
    "outbox_retention_days": "7",
    "flower_port": "5555",
    "ci": "github",
    "beat_scheduler": "file",
    "web": "fastapi",
}


@pytest.fixture(scope="module")
def shared_venv(tmp_path_factory):
    """One virtualenv per `web` answer: the bakes that share it have identical
    dev locks, and a web=none bake must pass without FastAPI installed."""
    root = tmp_path_factory.mktemp("variants")
    return lambda answers: root / f"venv-{answers.get('web', 'fastapi')}"


@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_answers_take_effect_where_they_should(bake, answers):
    chosen = {**DEFAULTS, **answers}
    project = bake(**answers)
    package = re.search(r'"package_name": "(\w+)"', (project / ".cookiecutter.json").read_text()).group(1)
    settings = (project / "backend" / "src" / package / "settings.py").read_text()
    assert f"outbox_interval_seconds: PositiveSeconds = {chosen['outbox_interval_seconds']}\n" in settings
    assert f"outbox_retention_days: PositiveInt = {chosen['outbox_retention_days']}\n" in settings
    assert f"cleanup_hour_utc: int = Field({chosen['cleanup_hour_utc']}, ge=0, le=23)" in settings
    compose = (project / "compose.yaml").read_text()
    assert f'"127.0.0.1:${{FLOWER_PORT:-{chosen["flower_port"]}}}:5555"' in compose
    assert f"${{PYTHON_IMAGE:-python:{chosen['python_version']}-slim-trixie}}" in compose
    dockerfile = (project / "backend" / "Dockerfile").read_text()
    assert f"ARG PYTHON_IMAGE=python:{chosen['python_version']}-slim-trixie\n" in dockerfile
    assert (project / ".github" / "workflows" / "ci.yml").exists() == (chosen["ci"] == "github")
    redbeat = chosen["beat_scheduler"] == "redbeat"
    assert f'beat_scheduler: Literal["file", "redbeat"] = "{chosen["beat_scheduler"]}"' in settings
    # redbeat: two beats and no schedule volume; file: one beat on its volume.
    assert ("scale: 2" in compose) == redbeat
    assert ("celery-beat-data:" in compose) == (not redbeat)
    assert (project / "tests" / "stack" / "test_failover.py").exists() == redbeat
    assert (project / "tests" / "faults" / "full-volume.yaml").exists() == (not redbeat)
    web = chosen["web"] == "fastapi"
    assert (project / "backend" / "src" / package / "api").exists() == web
    assert ("\n  api:\n" in compose) == web
    assert ("fastapi==" in (project / "backend" / "requirements.lock").read_text()) == web


@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_generated_lint_and_unit_tests_pass(bake, shared_venv, kube_venv, answers):
    project = bake(**answers)
    venv = shared_venv(answers)
    linted = run(["make", "lint", f"VENV={venv}", f"KUBE_VENV={kube_venv}"], cwd=project)
    # The alert rules' unit tests ran (promtool is part of the setup) and passed.
    assert "Unit Testing:  monitoring/alerts.test.yml\n  SUCCESS" in linted.stdout, linted.stdout
    # checkov scanned both Kubernetes overlays and found nothing unjustified.
    assert re.findall(r"Passed checks: \d+, Failed checks: (\d+)", linted.stdout) == ["0", "0"], linted.stdout
    tested = run(["make", "test", f"VENV={venv}"], cwd=project)
    if answers.get("web") == "none":
        assert not list(venv.glob("lib/python*/site-packages/fastapi")), "FastAPI is installed for a web=none bake"
        assert "test_api.py" not in tested.stdout
