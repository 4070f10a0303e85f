"""The CI smoke test of generated projects, against real stacks, with the
images `make test` chose. The defaults: their own unit and integration
tests, container acceptance tests (scaled workers included) under Compose v2
and v1, the fault suite under v2, and a deployment to a single-node Swarm. A
redbeat bake: its acceptance tests, beat failover included, and whole nodes
lost on a three-node Swarm of Docker engines in containers. And a 3-minute
soak of the defaults: steady load, random faults, nothing lost."""

import json
import os
import re
import statistics
import subprocess

import pytest
from conftest import COMPOSE_V1, COMPOSE_V2, run

PROJECT_PREFIX = f"celery_stack_template{os.getpid()}"


def project_resources(project: str) -> str:
    """Containers, volumes and networks of a Compose project or a Swarm stack."""
    listings = (["ps", "-aq"], ["volume", "ls", "-q"], ["network", "ls", "-q"])
    labels = (f"label=com.docker.compose.project={project}", f"label=com.docker.stack.namespace={project}")
    return "".join(
        subprocess.run(["docker", *listing, "--filter", label], capture_output=True, text=True, check=True).stdout
        for listing in listings
        for label in labels
    )


def pytest_outcomes(output: str) -> dict[str, int]:
    """The counts on pytest's last line: `===== 14 passed, 1 skipped in 9.1s =====`."""
    summary = [line for line in output.splitlines() if re.match(r"=+ .* in [\d.]+s", line)][-1]
    return {outcome: int(count) for count, outcome in re.findall(r"(\d+) (\w+)", summary)}


def require(compose: list[str]) -> str:
    """The tool's version; fail clearly when it is missing."""
    done = subprocess.run([*compose, "version", "--short"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(compose)} is missing: .ci/run installs it (scripts/install-compose-v2.sh)"
    return done.stdout.strip()


def baked(cookies_session, **answers):
    result = cookies_session.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    return result.project_path


@pytest.fixture(scope="module")
def project(cookies_session):
    return baked(cookies_session)


@pytest.fixture(scope="module")
def redbeat_project(cookies_session):
    return baked(cookies_session, beat_scheduler="redbeat")


def run_layer(project, target: str, compose: list[str], name: str) -> subprocess.CompletedProcess:
    """A container test layer (`make smoke`, `faults`, ...) under one Compose version and its own project name."""
    version = require(compose)
    names = ("SMOKE_PROJECT_NAME", "FAULTS_PROJECT_NAME", "SWARM_STACK", "CLUSTER_STACK")
    env = {**os.environ, **dict.fromkeys(names, name)}
    try:
        done = run(["make", target, "ARGS=-v", f"COMPOSE={' '.join(compose)}"], cwd=project, env=env)
    finally:
        # The layer removes everything itself; this also covers a crash in it.
        down = [*compose, "down", "-v", "--remove-orphans"]
        subprocess.run(down, cwd=project, env={**env, "COMPOSE_PROJECT_NAME": name}, capture_output=True, check=False)
        subprocess.run(["docker", "image", "rm", f"{name}-backend"], capture_output=True, check=False)
    assert f"compose: {' '.join(compose)} {version}" in done.stdout, "another Compose ran"
    outcomes = pytest_outcomes(done.stdout)
    assert outcomes.get("passed", 0) > 0 and not outcomes.keys() & {"failed", "error", "errors", "skipped"}, outcomes
    assert not project_resources(name), f"{target} left containers, volumes or networks behind"
    return done


def test_generated_unit_and_integration_tests_pass(project):
    run(["make", "test"], cwd=project)


@pytest.mark.parametrize("compose", [COMPOSE_V2, COMPOSE_V1], ids=["compose-v2", "compose-v1"])
def test_generated_container_acceptance_tests_pass(project, compose):
    version = "v2" if compose == COMPOSE_V2 else "v1"
    run_layer(project, "smoke", compose, f"{PROJECT_PREFIX}_smoke_{version}")


def test_generated_fault_suite_passes_under_compose_v2(project):
    done = run_layer(project, "faults", COMPOSE_V2, f"{PROJECT_PREFIX}_faults")
    # Every fault of the issue ran, and `make faults` printed its table.
    assert pytest_outcomes(done.stdout)["passed"] >= 14
    assert "fault table" in done.stdout


def test_generated_soak_of_three_minutes_loses_nothing(project):
    name = f"{PROJECT_PREFIX}_soak"
    env = {**os.environ, "SOAK_PROJECT_NAME": name}
    try:
        # SEED=1 plans a worker SIGKILL and a beat SIGSTOP within the three minutes.
        run(["make", "soak", "DURATION=3m", "SEED=1"], cwd=project, env=env)
    finally:
        subprocess.run(["docker", "image", "rm", f"{name}-backend"], capture_output=True, check=False)
    report = json.loads((project / "soak.json").read_text())
    assert report["problems"] == [], report["problems"]
    assert [fault["fault"] for fault in report["faults"]] == ["worker_sigkill", "beat_sigstop"]
    assert len(report["samples"]) >= 15
    # Each service's RSS was read from its cgroup (a worker's is about 170 MB), and its growth fitted.
    assert {"worker", "beat", "db", "redis", "flower"} <= report["memory_growth_mb_per_hour"].keys()
    samples = report["samples"]
    worker_rss = [f["rss_mb"] for point in samples for name, f in point["containers"].items() if "-worker-" in name]
    assert statistics.median(worker_rss) > 50, worker_rss
    assert report["totals"]["orders"] >= report["totals"]["orders_acknowledged"] == 200 * 180
    assert report["totals"]["not_confirmed_once"] == 0
    # Beat's sends were read (the skipped-run check had something to check).
    assert report["totals"]["sweeps_sent"] >= 60
    assert (project / "soak.png").stat().st_size > 0
    assert not project_resources(name), "make soak left containers, volumes or networks behind"


def test_generated_swarm_deployment_works(project):
    done = run_layer(project, "swarm", COMPOSE_V2, f"{PROJECT_PREFIX}_swarm")
    assert pytest_outcomes(done.stdout)["passed"] >= 6


def test_generated_redbeat_stack_fails_over_and_passes_its_acceptance_tests(redbeat_project):
    done = run_layer(redbeat_project, "smoke", COMPOSE_V2, f"{PROJECT_PREFIX}_redbeat")
    assert "test_failover.py::test_sigkill_of_the_active_beat" in done.stdout
    assert "failover after SIGKILL of the active beat" in done.stdout


def test_generated_redbeat_stack_loses_nothing_when_swarm_nodes_die(redbeat_project):
    name = f"{PROJECT_PREFIX}_cluster"
    done = run_layer(redbeat_project, "cluster-test", COMPOSE_V2, name)
    assert pytest_outcomes(done.stdout)["passed"] == 4
    assert "cluster recoveries" in done.stdout
    # Nothing of the cluster is left, and this engine never joined its swarm.
    member = f"label={name}-cluster.member"
    for listing in (["ps", "-aq"], ["volume", "ls", "-q"], ["network", "ls", "-q"]):
        left = subprocess.run(["docker", *listing, "--filter", member], capture_output=True, text=True, check=True)
        assert not left.stdout.strip(), f"the cluster left {listing[0]}s behind: {left.stdout}"
    swarm = subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True, text=True)
    assert swarm.stdout.strip() == "inactive"
