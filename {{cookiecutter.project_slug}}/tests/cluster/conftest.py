"""The cluster layer: `make cluster` (three Docker engines in containers,
all Swarm managers, and a registry), `make deploy` of compose.swarm.yaml
with only cluster/placement.yaml added, then faults on whole nodes.

Node 1 holds PostgreSQL and Redis and is never harmed; the faults hit nodes
2 and 3. Everything is removed at the end, even when a test fails: the
stack, the nodes with all they ran, the registry, the network, the volumes
and the images. This machine's engine never joins the swarm. The stack is
`{{ cookiecutter.package_name }}_cluster` unless CLUSTER_STACK says otherwise.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from support import PACKAGE, ROOT, Stack, at_replicas, docker, psql_command, wait_for

STACK = os.environ.get("CLUSTER_STACK", f"{PACKAGE}_cluster")
os.environ.update(
    {
        # Names the cluster too: {{ cookiecutter.package_name }}_cluster-cluster-node1, ...
        "COMPOSE_PROJECT_NAME": STACK,
        # Short sweeps and leases, but a soft time limit longer than
        # PostgreSQL takes to drop a dead node's connections (about 25 s,
        # compose.yaml), whose row locks a sweep may wait for meanwhile.
        "OUTBOX_INTERVAL_SECONDS": "2",
        "OUTBOX_BATCH_SIZE": "50",
        "TASK_SOFT_TIME_LIMIT": "40",
        "TASK_TIME_LIMIT": "45",
        "WORKER_SOFT_SHUTDOWN_TIMEOUT": "1",
    }
)
sys.path.insert(0, str(ROOT / "scripts"))
import cluster  # noqa: E402 - scripts/cluster.py, named by the environment above

RECOVERIES = {}


class ClusterStack(Stack):
    """The stack on the cluster: services and tasks as node 1 (a manager
    that is never harmed) sees them, commands in task containers on their
    node, and the outbox through PostgreSQL's container."""

    def __init__(self):
        super().__init__(STACK)

    node_host = staticmethod(cluster.node_host)
    node_name = staticmethod(cluster.node_name)

    def node_docker(self, number: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return docker("--host", cluster.node_host(number), *args, check=check)

    def swarm_services(self) -> dict[str, dict]:
        """The stack's services as `docker stack services` shows them; none
        while the managers elect a leader."""
        lines = self.node_docker(1, "stack", "services", STACK, "--format", "json", check=False).stdout.splitlines()
        return {service["Name"].removeprefix(f"{STACK}_"): service for service in map(json.loads, lines)}

    def tasks(self, service: str) -> list[tuple[int, str]]:
        """(node number, container id) of each running task of `service`."""
        found = []
        for number in self.live_nodes():
            label = f"label=com.docker.swarm.service.name={STACK}_{service}"
            found += [(number, c) for c in self.node_docker(number, "ps", "-q", "--filter", label).stdout.split()]
        return found

    def live_nodes(self) -> list[int]:
        names = docker("ps", "--filter", f"label={cluster.LABEL}", "--format", "{% raw %}{{.Names}}{% endraw %}").stdout.split()
        return [number for number in range(1, cluster.NODES + 1) if cluster.node_name(number) in names]

    def node_states(self) -> dict[str, str]:
        """Each node's status (ready, down) as the managers see it; none
        while they elect a leader (a healed node's higher Raft term makes
        the leader step down)."""
        done = self.node_docker(1, "node", "ls", "--format", "json", check=False)
        return {node["Hostname"]: node["Status"].lower() for node in map(json.loads, done.stdout.splitlines())}

    def exec_in(self, service: str, *command: str, node: int | None = None) -> subprocess.CompletedProcess:
        """Run `command` in a task of `service` (on `node`, if given)."""
        number, container = next((n, c) for n, c in self.tasks(service) if node in (None, n))
        return self.node_docker(number, "exec", container, *command)

    def psql(self, query: str) -> str:
        return self.exec_in("db", *psql_command(self.env), "-tAc", query).stdout.strip()

    def converged(self) -> bool:
        """Every service at its replicas (the migrate job done), every task healthy."""
        services = self.swarm_services().values()
        tasks = [task for service in services for task in self.tasks(service["Name"].removeprefix(f"{STACK}_"))]
        return (
            len(services) == {% if cookiecutter.web == 'fastapi' %}7{% else %}6{% endif %}
            and all(at_replicas(service) for service in services)
            and all(self.task_health(number, container) == "healthy" for number, container in tasks)
        )

    def task_health(self, number: int, container: str) -> str:
        state = json.loads(self.node_docker(number, "inspect", container).stdout)[0]["State"]
        return state.get("Health", {}).get("Status", state["Status"])

    def kill_node(self, number: int) -> float:
        """SIGKILL the node's container: its engine and every task on it die at once."""
        docker("kill", cluster.node_name(number))
        return time.monotonic()

    def restart_node(self, number: int) -> None:
        """Start a killed node again; it rejoins the swarm with its own address."""
        docker("start", cluster.node_name(number))
        cluster.wait_for_engine(number)
        name = cluster.node_name(number)
        wait_for(lambda: self.node_states().get(name) == "ready", timeout=90, message=f"{name} ready again")


@pytest.fixture(scope="session")
def cluster_nodes():
    """`make cluster`, and `make cluster-down` at the end whatever happened."""
    try:
        up = subprocess.run([sys.executable, "scripts/cluster.py", "up"], cwd=ROOT, capture_output=True, text=True)
        assert up.returncode == 0, up.stdout + up.stderr
        yield cluster.read_settings()
    finally:
        subprocess.run([sys.executable, "scripts/cluster.py", "down"], cwd=ROOT, capture_output=True, check=False)
    left = docker("ps", "-aq", "--filter", f"label={cluster.LABEL}").stdout.split()
    left += docker("volume", "ls", "-q", "--filter", f"label={cluster.LABEL}").stdout.split()
    left += docker("network", "ls", "-q", "--filter", f"name={cluster.NAME}").stdout.split()
    assert not left, f"the cluster left these behind: {left}"


@pytest.fixture(scope="session")
def deployed(request, cluster_nodes, figures) -> ClusterStack:
    stack = ClusterStack()
    started = time.monotonic()
    env = {**os.environ, **cluster_nodes, **cluster.PLACEMENT}
    done = subprocess.run(
        ["make", "deploy", f"STACK={STACK}"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(stack.converged, timeout=300, interval=2, message=f"{STACK} to converge: {stack.swarm_services()}")
        figures.append(("Cluster: make deploy to every task healthy on 3 nodes", f"{time.monotonic() - started:.1f} s"))
        yield stack
    finally:
        if request.session.testsfailed or done.returncode != 0:
            capture = request.config.pluginmanager.get_plugin("capturemanager")
            with capture.global_and_fixture_disabled():
                for service in stack.swarm_services():
                    print(f"\n===== {STACK}_{service} =====\n{service_logs(f'{STACK}_{service}')}")
        # The nodes go with everything on them; the secret files are ours.
        subprocess.run(["make", "undeploy", f"STACK={STACK}"], cwd=ROOT, env=env, capture_output=True, check=False)
        docker("image", "rm", f"{STACK}-backend", check=False)


def service_logs(service: str) -> str:
    """The end of a service's logs; `docker service logs` waits for ever on a
    task whose node is gone, so it gets 30 s."""
    command = ["docker", "--host", cluster.node_host(1), "service", "logs", "--timestamps", service]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired as timeout:
        return f"{(timeout.stdout or b'').decode(errors='replace')[-20000:]}\n(cut off after 30 s)"
    return (done.stdout + done.stderr)[-20000:]


@pytest.fixture(autouse=True)
def converged(deployed) -> None:
    """Each fault starts from a stack at its replicas, every task healthy."""
    wait_for(deployed.converged, timeout=180, interval=2, message=f"{STACK} converged: {deployed.swarm_services()}")


@pytest.fixture
def recoveries() -> dict:
    """Each test's recovery time in seconds, by fault: printed, and written
    to bench.json's `cluster` section."""
    return RECOVERIES


def pytest_terminal_summary(terminalreporter):
    if not RECOVERIES:
        return
    terminalreporter.section("cluster recoveries")
    for fault, seconds in RECOVERIES.items():
        terminalreporter.write_line(f"{fault}: {seconds:.1f} s")
    bench = ROOT / "bench.json"
    figures = json.loads(bench.read_text()) if bench.exists() else {}
    figures["cluster"] = {fault: round(seconds, 1) for fault, seconds in RECOVERIES.items()}
    bench.write_text(json.dumps(figures, indent=2) + "\n")
