"""Shared helpers for the template's tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
# The bake matrix: every choice at least once, every number off its default.
VARIANTS = {
    "defaults": {},
    "python312-no-ci-no-web": {
        "python_version": "3.12",
        "ci": "none",
        "web": "none",
        "outbox_interval_seconds": "30",
        "cleanup_hour_utc": "0",
        "outbox_retention_days": "14",
        "flower_port": "15555",
    },
    "python314-renamed-redbeat": {
        "project_name": "Order Relay",
        "beat_scheduler": "redbeat",
        "description": 'Relays "orders" & more',
        "python_version": "3.14",
        "outbox_interval_seconds": "5",
        "cleanup_hour_utc": "23",
        "outbox_retention_days": "1",
        "flower_port": "8555",
    },
}

# Tools installed beside this interpreter, in the template's venv.
VENV_BIN = Path(sys.executable).parent
# Generated stacks are tested under both; .ci/run installs both.
COMPOSE_V2 = ["docker", "compose"]
COMPOSE_V1 = [shutil.which("docker-compose") or "docker-compose"]
COMPOSE = (
    COMPOSE_V2
    if subprocess.run([*COMPOSE_V2, "version"], capture_output=True, check=False).returncode == 0
    else COMPOSE_V1
)


def run(command: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; on failure, fail the test with its whole output."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def kube_venv(tmp_path_factory) -> Path:
    """The generated projects' Kubernetes lint tools (KUBE_VENV): one venv for
    every bake, whose locks of them are the same."""
    return tmp_path_factory.mktemp("kubernetes") / "venv"


@pytest.fixture
def bake(cookies):
    """Bake with some answers changed; fail clearly if generation fails."""

    def bake(**answers) -> Path:
        result = cookies.bake(extra_context=answers)
        assert result.exit_code == 0, result.exception
        return Path(result.project_path)

    return bake
