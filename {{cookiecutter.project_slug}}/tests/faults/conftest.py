"""The fault layer's stack: Compose project `{{ cookiecutter.package_name }}_faults` unless
FAULTS_PROJECT_NAME says otherwise, with short intervals, limits and leases
so each fault recovers in seconds. The fixtures are in ../conftest.py.

`make faults` ends with the fault table: what was injected, what was seen,
and how long recovery took.
"""

import os

import pytest

from support import PACKAGE, free_port

os.environ.update(
    {
        "COMPOSE_PROJECT_NAME": os.environ.get("FAULTS_PROJECT_NAME", f"{PACKAGE}_faults"),
        "FLOWER_PORT": str(free_port()),
        "API_PORT": str(free_port()),
        # The monitoring profile's Prometheus, for test_alerts.py.
        "COMPOSE_PROFILES": "monitoring",
        "PROMETHEUS_PORT": str(free_port()),
        "OUTBOX_INTERVAL_SECONDS": "2",
        "OUTBOX_BATCH_SIZE": "50",
        "OUTBOX_MAX_ATTEMPTS": "3",
        # The lease is the task time limit: 12 s.
        "TASK_SOFT_TIME_LIMIT": "10",
        "TASK_TIME_LIMIT": "12",
        # Shorter than the held sweep waits, so `docker stop` cancels and requeues it.
        "WORKER_SOFT_SHUTDOWN_TIMEOUT": "1",
        # A crontab entry that falls due during a test.
        "RECONCILE_CRONTAB": "* * * * *",
        "BEAT_HEARTBEAT_MAX_AGE": "10",
    }
)
FAULT_TABLE = []


@pytest.fixture
def fault_table():
    """Each test adds its row: fault, injection, observation, recovery seconds."""
    return FAULT_TABLE


@pytest.fixture(autouse=True)
def recovered_stack(stack):
    """Every fault starts from a healthy stack and an empty outbox, even
    after a test that failed with a service stopped."""
    stack.compose("up", "-d")
    stack.wait_healthy()
    stack.empty_outbox()
    return stack


def pytest_terminal_summary(terminalreporter):
    if not FAULT_TABLE:
        return
    terminalreporter.section("fault table")
    terminalreporter.write_line("| fault | injected by | observed | recovery | events lost |")
    terminalreporter.write_line("|---|---|---|---|---|")
    for fault, injected, observed, recovery in FAULT_TABLE:
        terminalreporter.write_line(f"| {fault} | {injected} | {observed} | {recovery:.1f} s | 0 |")
