"""Scaled workers (`make up WORKERS=3`, or `--scale worker=3`): each is
healthy under its own node name, Flower lists all of them online, and a
backlog is drained by all of them, with exactly one effect per event."""

import json
import os
import re

import pytest

from support import container_logs, docker, wait_for

PROJECT = os.environ["COMPOSE_PROJECT_NAME"]
WORKERS = 3
# The container's name, as Compose v2 (-) or v1 (_) spells it.
NODE_NAME = re.compile(rf"celery@{re.escape(PROJECT)}[-_]worker[-_](\d+)")


@pytest.fixture(scope="module")
def scaled(stack):
    stack.compose("up", "-d", "--no-recreate", "--scale", f"worker={WORKERS}")
    stack.wait_healthy()
    yield stack
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=1")
    stack.wait_healthy()


def worker_containers(stack) -> list[str]:
    return stack.compose("ps", "-q", "worker").stdout.split()


def node_name(container: str) -> str:
    """What the worker calls itself, from its banner."""
    logs = container_logs(container)
    return re.search(r"-------------- (celery@\S+) v", logs).group(1)


def test_each_worker_is_healthy_under_its_own_meaningful_node_name(scaled):
    containers = worker_containers(scaled)
    assert len(containers) == WORKERS
    for container in containers:
        state = json.loads(docker("inspect", container).stdout)[0]["State"]
        assert state["Health"]["Status"] == "healthy", container
    names = sorted(node_name(container) for container in containers)
    assert [NODE_NAME.fullmatch(name).group(1) for name in names] == ["1", "2", "3"], names


def test_flower_lists_all_the_workers_online(scaled):
    def online():
        status, body = scaled.flower("/api/workers?status=true")
        assert status == 200
        return sorted(name for name, up in json.loads(body).items() if up and NODE_NAME.fullmatch(name))

    names = wait_for(lambda: len(found := online()) == WORKERS and found, timeout=30, message="three workers online")
    assert names == sorted(node_name(container) for container in worker_containers(scaled))


def test_a_backlog_is_drained_by_every_worker_exactly_once_per_event(scaled):
    scaled.empty_outbox()
    containers = worker_containers(scaled)
    before = {container: sweeps_that_processed(container) for container in containers}
    scaled.exec("worker", "python", "-m", "{{ cookiecutter.package_name }}", "emit", "--count", "60000")
    scaled.settle(emitted=60000, timeout=120)
    drained = {container: sweeps_that_processed(container) - before[container] for container in containers}
    assert all(drained.values()), f"a worker processed nothing: {drained}"


def sweeps_that_processed(container: str) -> int:
    """Sweeps in this worker's log that handled at least one event."""
    logs = container_logs(container)
    return len(re.findall(r"process_outbox_events\[[^\]]+\] succeeded in [\d.]+s: \{'processed': [1-9]", logs))
