#!/usr/bin/env python3
"""What `make up` and `make dev` print once the stack is healthy: where
Flower is, where its password is, which mode runs, and how to follow the
logs and stop. It prints no secret. Standard library only."""

import json
import os
import subprocess
import sys

from wait_healthy import compose_command, run


def code_mode(project: str) -> str:
    """`dev` when the worker runs backend/src from the host (compose.dev.yaml), else `up`."""
    labels = [f"label=com.docker.compose.project={project}", "label=com.docker.compose.service=worker"]
    workers = run("docker", "ps", "-q", "--filter", labels[0], "--filter", labels[1]).split()
    mounts = json.loads(run("docker", "inspect", *workers))[0]["Mounts"] if workers else []
    return "dev" if any(mount["Destination"] == "/app/src" for mount in mounts) else "up"


def main() -> int:
    project = os.environ["COMPOSE_PROJECT_NAME"]
    flower = subprocess.run([*compose_command(), "port", "flower", "5555"], capture_output=True, text=True, check=False)
    mode = code_mode(project)
    api = subprocess.run([*compose_command(), "port", "api", "8000"], capture_output=True, text=True, check=False)
    lines = [
        ("Flower", f"http://{flower.stdout.strip() or '127.0.0.1:?'}  (FLOWER_USER and FLOWER_PASSWORD in .env)"),
        *([("API", f"http://{api.stdout.strip()}/docs  (API_TOKEN in .env)")] if api.returncode == 0 else []),
        (
            "Mode",
            "dev: backend/src is live; the worker and beat restart when a .py file changes"
            if mode == "dev"
            else "up: the code baked into the image (make dev for live code)",
        ),
        ("Status", "make status"),
        ("Logs", 'make logs  (ARGS="worker beat" for some services)'),
        ("Shells", "make shell, make psql, make redis-cli"),
        ("Stop", "make down  (keeps the data; make clean removes it)"),
    ]
    print()
    for name, text in lines:
        print(f"{name + ':':<8} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
