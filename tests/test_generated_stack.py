"""The CI smoke test of a generated project: bake the defaults, then run the
project's own unit and integration tests and its container acceptance tests
against the real stack, with the images `make test` chose."""

import os
import subprocess

import pytest
from conftest import COMPOSE, run

SMOKE_PROJECT = f"celery_stack_template{os.getpid()}"


@pytest.fixture(scope="module")
def project(cookies_session):
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    project = result.project_path
    yield project
    # The project's own teardown does this too; this also covers a crash in it.
    env = {**os.environ, "COMPOSE_PROJECT_NAME": SMOKE_PROJECT}
    subprocess.run([*COMPOSE, "down", "-v", "--remove-orphans"], cwd=project, env=env, capture_output=True, check=False)
    subprocess.run(["docker", "image", "rm", f"{SMOKE_PROJECT}-backend"], capture_output=True, check=False)


def test_generated_unit_and_integration_tests_pass(project):
    run(["make", "test"], cwd=project)


def test_generated_container_acceptance_tests_pass(project):
    done = run(["make", "smoke", "ARGS=-v"], cwd=project, env={**os.environ, "SMOKE_PROJECT_NAME": SMOKE_PROJECT})
    assert " passed" in done.stdout and " failed" not in done.stdout
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={SMOKE_PROJECT}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not leftovers, "the smoke tests left containers behind"
