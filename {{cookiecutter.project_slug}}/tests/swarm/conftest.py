"""The Swarm layer: `make deploy` onto a single-node swarm that the fixtures
create (`docker swarm init --advertise-addr 127.0.0.1`) and leave at the end,
even when a test fails; an engine already in a swarm is used, and left in it.
The stack is `{{ cookiecutter.package_name }}_swarm` unless SWARM_STACK says otherwise.
"""

import json
import os
import subprocess
import time

import pytest

from support import ROOT, at_replicas, docker, wait_for

STACK = os.environ.get("SWARM_STACK", "{{ cookiecutter.package_name }}_swarm")
NAMESPACE = f"label=com.docker.stack.namespace={STACK}"


class SwarmStack:
    """Commands against one stack's services and task containers."""

    name = STACK

    def services(self) -> dict[str, dict]:
        """Each service's mode and replicas, as `docker stack services` says them."""
        lines = docker("stack", "services", STACK, "--format", "json").stdout.splitlines()
        return {service["Name"].removeprefix(f"{STACK}_"): service for service in map(json.loads, lines)}

    def containers(self, service: str | None = None) -> list[str]:
        label = f"label=com.docker.swarm.service.name={STACK}_{service}" if service else NAMESPACE
        return docker("ps", "-q", "--filter", label).stdout.split()

    def health(self, container: str) -> str:
        state = json.loads(docker("inspect", container).stdout)[0]["State"]
        return state.get("Health", {}).get("Status", state["Status"])

    def exec(self, service: str, *command: str) -> str:
        return docker("exec", self.containers(service)[0], *command).stdout

    def converged(self) -> bool:
        """Every service at its replicas (the migrate job completed), every task healthy."""
        services = self.services().values()
        containers = self.containers()
        return (
            len(services) == {% if cookiecutter.web == 'fastapi' %}7{% else %}6{% endif %}
            and all(at_replicas(service) for service in services)
            and bool(containers)
            and all(self.health(container) == "healthy" for container in containers)
        )

    def undeploy(self) -> None:
        """`make undeploy`; then wait until nothing of the stack is left."""
        subprocess.run(["make", "undeploy", f"STACK={STACK}"], cwd=ROOT, capture_output=True, check=False)
        # Workers whose Redis went in the same instant stop at their grace period.
        wait_for(lambda: not any(self.leftovers().values()), timeout=120, message=f"{STACK} gone: {self.leftovers()}")

    def leftovers(self) -> dict[str, list[str]]:
        """Whatever of the stack Docker still has, but its volumes (data outlives a stack)."""
        return {
            "services": docker("service", "ls", "-q", "--filter", NAMESPACE).stdout.split(),
            "containers": docker("ps", "-aq", "--filter", NAMESPACE).stdout.split(),
            "networks": docker("network", "ls", "-q", "--filter", NAMESPACE).stdout.split(),
            "secrets": docker("secret", "ls", "-q", "--filter", NAMESPACE).stdout.split(),
        }


@pytest.fixture(scope="session")
def swarm():
    created = json.loads(docker("info", "--format", "json").stdout)["Swarm"]["LocalNodeState"] != "active"
    if created:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        yield
    finally:
        if created:
            docker("swarm", "leave", "--force", check=False)
            # `swarm init` made this bridge; leaving does not remove it.
            docker("network", "rm", "docker_gwbridge", check=False)
    overlays = docker("network", "ls", "-q", "--filter", "driver=overlay").stdout.split()
    assert not created or not overlays, f"overlay networks left behind: {overlays}"


@pytest.fixture(scope="session")
def deployed(request, swarm, figures) -> SwarmStack:
    stack = SwarmStack()
    started = time.monotonic()
    done = subprocess.run(["make", "deploy", f"STACK={STACK}"], cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(stack.converged, timeout=240, interval=2, message=f"{STACK} to converge: {stack.services()}")
        figures.append(("Swarm convergence, make deploy to every task healthy", f"{time.monotonic() - started:.1f} s"))
        yield stack
    finally:
        if request.session.testsfailed or done.returncode != 0:
            with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
                for service in stack.services():
                    logs = docker("service", "logs", "--timestamps", f"{STACK}_{service}", check=False)
                    print(f"\n===== {STACK}_{service} =====\n{logs.stdout}{logs.stderr}")
        remove(stack)


def remove(stack: SwarmStack) -> None:
    """Everything, the volumes and the image too."""
    stack.undeploy()
    volumes = docker("volume", "ls", "-q", "--filter", NAMESPACE).stdout.split()
    if volumes:
        wait_for(lambda: docker("volume", "rm", *volumes, check=False).returncode == 0, timeout=60)
    docker("image", "rm", f"{STACK}-backend", check=False)
