"""The real stack through pytest-docker, for every container test layer.

Each layer's conftest sets COMPOSE_PROJECT_NAME (and any settings) in the
environment before the stack starts, so a layer never touches a running
`make up` stack or another layer's. Everything it started is removed at the
end, even when `up` itself failed; on failure every service's logs are
printed first.
"""

import os

import pytest

from support import COMPOSE, ROOT, Stack


def pytest_report_header():
    # docker-compose 1.29 exits 0 on flags it does not know: say which ran.
    version = Stack("-").compose("version", "--short", check=False).stdout.strip()
    return f"compose: {' '.join(COMPOSE)} {version}"


MEASURED = []


@pytest.fixture(scope="session")
def figures() -> list:
    """What a test measured, as (figure, value) rows; printed at the end."""
    return MEASURED


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("measured")
        for figure, value in MEASURED:
            terminalreporter.write_line(f"{figure}: {value}")


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return " ".join(COMPOSE)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "compose.yaml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return os.environ["COMPOSE_PROJECT_NAME"]


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    # Not pytest-docker's default `up --build --wait`: docker-compose v1 has no --wait.
    return ["up --build -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> bool:
    # `remove_everything` below cleans up, even when `up` itself failed.
    return False


@pytest.fixture(scope="session")
def remove_everything(request, docker_compose_project_name):
    yield
    stack = Stack(docker_compose_project_name)
    if request.session.testsfailed:
        # Every service's logs, before removal deletes them, past pytest's capture.
        logs = stack.compose("logs", "--no-color", "--timestamps", check=False)
        with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
            print(f"\n===== logs of every service ({stack.project}) =====\n{logs.stdout}{logs.stderr}")
    stack.remove()


@pytest.fixture(scope="session")
def stack(remove_everything, docker_services, docker_compose_project_name) -> Stack:
    stack = Stack(docker_compose_project_name, docker_services)
    stack.wait_healthy()
    return stack
