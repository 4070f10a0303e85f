"""The real stack through pytest-docker, under its own Compose project.

The project name (and so the containers, network, volumes and app image) is
`{{ cookiecutter.package_name }}_smoke` unless SMOKE_PROJECT_NAME says otherwise, so a
running `make up` stack is never touched. Flower gets a free host port.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"
PROJECT = os.environ.get("SMOKE_PROJECT_NAME", f"{PACKAGE}_smoke")
COMPOSE = (
    ["docker", "compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    else [shutil.which("docker-compose") or "docker-compose"]
)
LOG_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): (\w+)/[^\]]*\] (.*)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Compose reads these for interpolation, ahead of .env: the project name also
# names the beat volume and the app image.
os.environ["COMPOSE_PROJECT_NAME"] = PROJECT
os.environ["FLOWER_PORT"] = str(free_port())


def read_env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env").read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.startswith("#")}


class Stack:
    """Commands against the smoke project's containers."""

    def __init__(self, services):
        self.services = services
        self.env = read_env_file()

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*COMPOSE, *args], cwd=ROOT, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def exec(self, service: str, *command: str, env: dict | None = None, check: bool = True):
        options = [item for name, value in (env or {}).items() for item in ("-e", f"{name}={value}")]
        return self.compose("exec", "-T", *options, service, *command, check=check)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def health(self, service: str) -> str:
        inspect = subprocess.run(["docker", "inspect", self.container(service)], capture_output=True, check=True)
        return json.loads(inspect.stdout)[0]["State"]["Health"]["Status"]

    def logs(self, service: str) -> list[tuple[datetime, str, str]]:
        """(time, level, message) of each Celery log line of `service`."""
        output = self.compose("logs", "--no-color", service).stdout
        return [
            (datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC), level, message)
            for when, level, message in LOG_LINE.findall(output)
        ]

    def raw_logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service).stdout

    def wait_healthy(self) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "wait_healthy.py")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COMPOSE": " ".join(COMPOSE)},
        )
        assert done.returncode == 0, f"stack did not turn healthy:\n{done.stdout}{done.stderr}"
        return done.stdout


def wait_for(condition, *, timeout: float, interval: float = 0.5, message: str = "condition"):
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return " ".join(COMPOSE)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "compose.yaml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    # Not pytest-docker's default `up --build --wait`: docker-compose v1 has no --wait.
    return ["up --build -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> bool:
    # `remove_everything` below cleans up, even when `up` itself failed.
    return False


@pytest.fixture(scope="session")
def remove_everything(request):
    yield
    if request.session.testsfailed:
        # Every service's logs, before `down` deletes them, past pytest's capture.
        logs = subprocess.run(
            [*COMPOSE, "logs", "--no-color", "--timestamps"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
            print(f"\n===== logs of every service ({PROJECT}) =====\n{logs.stdout}{logs.stderr}")
    subprocess.run([*COMPOSE, "down", "-v", "--remove-orphans"], cwd=ROOT, capture_output=True, check=False)
    subprocess.run(["docker", "image", "rm", f"{PROJECT}-backend"], capture_output=True, check=False)


@pytest.fixture(scope="session")
def stack(remove_everything, docker_services) -> Stack:
    stack = Stack(docker_services)
    stack.wait_healthy()
    return stack
