#!/usr/bin/env python3
"""Wait until every service of the Compose project is up and healthy.

Compose v1 has no `up --wait`, so this does it for both versions: a service
with a healthcheck must be healthy, one without must be running, a one-shot
job must have exited 0. Each service is printed as it gets there. It fails
at once if a container exits with an error, and after WAIT_TIMEOUT seconds
(default 180). Standard library only.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time


def compose_command() -> list[str]:
    if "COMPOSE" in os.environ:
        return shlex.split(os.environ["COMPOSE"])
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if v2.returncode == 0 else [shutil.which("docker-compose") or "docker-compose"]


def run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


# The services of a Compose profile, which start only when it is active
# (COMPOSE_PROFILES). Compose v1's `config --services` lists them regardless.
PROFILES = {"prometheus": "monitoring"}


def active_services(compose: list[str]) -> list[str]:
    """The services `up` starts: all but those of profiles that are not active."""
    active = os.environ.get("COMPOSE_PROFILES", "").split(",")
    services = run(*compose, "config", "--services").split()
    return [service for service in services if service not in PROFILES or PROFILES[service] in active]


def container_states(project: str, service: str) -> list[dict]:
    labels = [f"label=com.docker.compose.project={project}", f"label=com.docker.compose.service={service}"]
    ids = run("docker", "ps", "-aq", "--filter", labels[0], "--filter", labels[1]).split()
    return [{"id": cid, **json.loads(run("docker", "inspect", cid))[0]["State"]} for cid in ids]


def verdict(state: dict) -> str:
    health = state.get("Health", {}).get("Status")
    if state["Status"] == "running":
        return "ok" if health in (None, "healthy") else "wait"
    if state["Status"] in ("exited", "dead"):
        return "ok" if state["ExitCode"] == 0 and health is None else "fail"
    return "wait"


def main() -> int:
    project = os.environ.get("COMPOSE_PROJECT_NAME")
    if not project:
        print("wait_healthy: set COMPOSE_PROJECT_NAME", file=sys.stderr)
        return 2
    compose = compose_command()
    timeout = float(os.environ.get("WAIT_TIMEOUT", "180"))
    started = time.monotonic()
    services = active_services(compose)
    ready: set[str] = set()
    while True:
        pending = []
        for service in services:
            states = container_states(project, service)
            for state in states:
                if verdict(state) == "fail":
                    print(
                        f"wait_healthy: {service} exited with code {state['ExitCode']}; its last lines:",
                        file=sys.stderr,
                    )
                    subprocess.run(["docker", "logs", "--tail", "30", state["id"]], check=False)
                    return 1
            if not states or any(verdict(state) == "wait" for state in states):
                pending.append(service)
        elapsed = time.monotonic() - started
        for service in sorted(set(services) - set(pending) - ready):
            print(f"  {service:<12} ready after {elapsed:.0f}s", flush=True)
            ready.add(service)
        if not pending:
            print(f"All {len(services)} services healthy after {elapsed:.0f}s.")
            return 0
        if elapsed > timeout:
            print(f"wait_healthy: not healthy after {timeout:.0f}s: {', '.join(pending)}", file=sys.stderr)
            subprocess.run([*compose, "ps"], check=False)
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
