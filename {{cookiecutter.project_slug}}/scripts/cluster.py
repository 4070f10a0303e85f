#!/usr/bin/env python3
"""A three-node Docker Swarm on this machine, for `make cluster`: each node
its own Docker engine in a container (cluster/Dockerfile), all three
managers (one can be lost and the Raft quorum holds), and a registry beside
them that every node pulls from. No outside registry is needed.

up: builds the node image on PYTHON_IMAGE, starts the registry and the
nodes on a private network with fixed addresses (a restarted node keeps
its own), forms the swarm, labels node 1 `data=true` (PostgreSQL and Redis
go there: their volumes are node-local), and copies REDIS_IMAGE and
POSTGRES_IMAGE into the registry, as a cluster without Docker Hub needs.
It prints, and writes to <state>/env, what `make deploy` needs:

    REGISTRY=127.0.0.1:<port>            the image's registry
    SWARM_HOST=unix://<state>/node1/...  a manager's Docker socket
    REDIS_IMAGE=..., POSTGRES_IMAGE=...  their copies in the registry

down: removes the nodes (and all they ran), their volumes, the registry,
the network, the images and the state folder. The engine of this machine
never joins the swarm.

Nodes run --privileged where the engine allows it; where that fails
("unable to apply caps", CAP_SYS_RESOURCE outside the bounding set), with
every capability but that one and no seccomp, AppArmor or masked paths.
Standard library only.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = f"{os.environ.get('COMPOSE_PROJECT_NAME', '{{ cookiecutter.package_name }}')}-cluster"
# Short: a Unix socket's path is at most 107 bytes.
STATE = Path(os.environ.get("CLUSTER_STATE", f"/tmp/{NAME}"))
LABEL = f"{NAME}.member"
NODES = 3
IMAGE = f"{NAME}-node"
# What `make deploy` adds for this cluster: PostgreSQL and Redis on node 1
# (labelled data=true), where their volumes are, and a worker per node.
PLACEMENT = {"EXTRA_COMPOSE_FILE": "cluster/placement.yaml", "WORKERS": "3"}
# Tried in turn until Docker accepts one (it refuses a subnet in use).
SUBNETS = [f"10.{second}.{third}.0/24" for second in (213, 214) for third in range(16)]
PRIVILEGED = ["--privileged"]
CAPABILITIES = [
    *("--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE"),
    *("--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"),
    *("--security-opt", "systempaths=unconfined"),
    *("--device", "/dev/fuse", "--device", "/dev/net/tun"),
]


def docker(*args: str, host: str | None = None, check: bool = True) -> str:
    command = ["docker", *(("--host", host) if host else ()), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        sys.exit(f"cluster: {' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def node_name(number: int) -> str:
    return f"{NAME}-node{number}"


def node_address(prefix: str, number: int) -> str:
    """A node's fixed address: a restarted node keeps it, and its swarm membership."""
    return f"{prefix}.{10 + number}"


def node_host(number: int) -> str:
    """The node's Docker socket, as this machine reaches it."""
    return f"unix://{STATE / f'node{number}' / 'docker.sock'}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def create_network() -> str:
    """The nodes' network; returns its subnet's prefix, e.g. 10.213.0."""
    for subnet in SUBNETS:
        create = ["network", "create", "--subnet", subnet, "--label", LABEL, NAME]
        if subprocess.run(["docker", *create], capture_output=True, check=False).returncode == 0:
            return subnet.rsplit(".", 1)[0]
    sys.exit(f"cluster: no free subnet among {SUBNETS[0]} .. {SUBNETS[-1]}")


def start_registry(prefix: str, port: int) -> None:
    docker(
        *("run", "-d", "--name", f"{NAME}-registry", "--label", LABEL, "--network", NAME),
        *("--ip", f"{prefix}.10", "--network-alias", "registry", "--publish", f"127.0.0.1:{port}:5000"),
        *("--entrypoint", "docker-registry", IMAGE, "serve", "/etc/docker/registry/cluster.yml"),
    )


def start_node(number: int, prefix: str, port: int) -> None:
    (STATE / f"node{number}").mkdir(parents=True, exist_ok=True)
    name = node_name(number)
    common = [
        *("run", "-d", "--name", name, "--hostname", name, "--label", LABEL),
        *("--network", NAME, "--ip", node_address(prefix, number), "--env", f"REGISTRY_PORT={port}"),
        *("--volume", f"{STATE / f'node{number}'}:/cluster"),
        # Its images and swarm state outlive a kill (`docker start` brings the node back).
        *("--mount", f"type=volume,target=/var/lib/docker,volume-label={LABEL}"),
        *("--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run"),
    ]
    errors = []
    for flags in (PRIVILEGED, CAPABILITIES):
        done = subprocess.run(["docker", *common, *flags, IMAGE], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return
        errors.append(f"{' '.join(flags[:4])}: {done.stderr.strip()}")
        docker("rm", "-f", "-v", name, check=False)
    sys.exit(f"cluster: node {name} would not start:\n" + "\n".join(errors))


def wait_for_engine(number: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(["docker", "--host", node_host(number), "info"], capture_output=True).returncode:
        if time.monotonic() > deadline:
            logs = docker("logs", "--tail", "20", node_name(number), check=False)
            sys.exit(f"cluster: the engine of {node_name(number)} did not answer in {timeout:.0f} s:\n{logs}")
        time.sleep(0.5)


def form_swarm(prefix: str) -> None:
    leader = node_address(prefix, 1)
    docker("swarm", "init", "--advertise-addr", leader, host=node_host(1))
    token = docker("swarm", "join-token", "-q", "manager", host=node_host(1))
    for number in range(2, NODES + 1):
        docker("swarm", "join", "--token", token, f"{leader}:2377", host=node_host(number))
    docker("node", "update", "--label-add", "data=true", node_name(1), host=node_host(1))


def mirror(image: str, registry: str) -> str:
    """Copy `image` from this engine into the registry; returns its name there."""
    copy = f"{registry}/{image.rsplit('/', 1)[-1]}"
    docker("tag", image, copy)
    docker("push", "--quiet", copy)
    return copy


def read_settings() -> dict[str, str]:
    """What `up` wrote to <state>/env."""
    path = STATE / "env"
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


def up() -> None:
    """Start the cluster; on any failure, remove what was started."""
    if STATE.exists() or docker("ps", "-aq", "--filter", f"label={LABEL}"):
        sys.exit(f"cluster: {NAME} exists already; `make cluster-down` removes it")
    try:
        start()
    except BaseException:
        down()
        raise


def start() -> None:
    started = time.monotonic()
    base = os.environ.get("PYTHON_IMAGE", "python:{{ cookiecutter.python_version }}-slim-trixie")
    docker("build", "--quiet", "--build-arg", f"PYTHON_IMAGE={base}", "-t", IMAGE, str(ROOT / "cluster"))
    prefix = create_network()
    port = free_port()
    start_registry(prefix, port)
    for number in range(1, NODES + 1):
        start_node(number, prefix, port)
    for number in range(1, NODES + 1):
        wait_for_engine(number)
    form_swarm(prefix)
    registry = f"127.0.0.1:{port}"
    settings = {
        "REGISTRY": registry,
        "SWARM_HOST": node_host(1),
        "REDIS_IMAGE": mirror(os.environ.get("REDIS_IMAGE", "redis:8.0-alpine"), registry),
        "POSTGRES_IMAGE": mirror(os.environ.get("POSTGRES_IMAGE", "postgres:17-alpine"), registry),
    }
    (STATE / "env").write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    print(f"cluster: {NAME} is up, 3 managers, in {time.monotonic() - started:.0f} s:")
    print(docker("node", "ls", host=node_host(1)))
    deploy = " ".join(f"{name}={value}" for name, value in {**settings, **PLACEMENT}.items())
    print(f"\nTo deploy to it:  make deploy {deploy}")
    print(f"A node's engine:  docker --host {node_host(2)} ps")
    print("Remove it:        make cluster-down")


def down() -> None:
    members = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
    if members:
        docker("rm", "--force", "--volumes", *members)
    volumes = docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split()
    if volumes:
        docker("volume", "rm", *volumes)
    docker("network", "rm", NAME, check=False)
    # A killed node's containers leave empty cgroups behind, under the node's parent.
    for number in range(1, NODES + 1):
        cgroups = Path("/sys/fs/cgroup")
        for parent in [*cgroups.glob(node_name(number)), *cgroups.glob(f"*/{node_name(number)}")]:
            for folder in sorted(parent.glob("**/"), key=lambda path: len(path.parts), reverse=True):
                with contextlib.suppress(OSError):
                    folder.rmdir()
    # The images pushed to the registry keep their tags here.
    registry = read_settings().get("REGISTRY")
    copies = docker("images", "--format", "{{ '{{.Repository}}:{{.Tag}}' }}").split() if registry else []
    docker("image", "rm", *[image for image in copies if image.startswith(f"{registry}/")], IMAGE, check=False)
    shutil.rmtree(STATE, ignore_errors=True)
    print(f"cluster: {NAME} removed")


def main(argv: list[str]) -> int:
    actions = {"up": up, "down": down}
    if len(argv) != 2 or argv[1] not in actions:
        print("usage: cluster.py up|down", file=sys.stderr)
        return 2
    actions[argv[1]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
