#!/usr/bin/env python3
"""The stack on Docker Swarm: `make deploy STACK=name` and `make undeploy`.

deploy:

1. Builds the app image (one build), and pushes it when REGISTRY is set
   (REGISTRY=registry.example.com/team: every node must be able to pull it).
2. Writes the secrets into .secrets/<stack>/ (git-ignored, private), taking
   the values Compose resolves from .env, so the URLs are made in one place.
3. Renders compose.yaml and compose.swarm.yaml (and EXTRA_COMPOSE_FILE, if
   set: placement, say) into one stack file with `docker compose config`
   (Compose v2) and runs `docker stack deploy`.

The image is built and pushed on this machine's engine; the stack goes to
SWARM_HOST (a manager's Docker host, e.g. ssh://admin@manager1), or to this
engine when it is unset.

render: prints the stack file deploy would use, to review it.

remove: `docker stack rm`, then what it leaves: the containers of finished
jobs (Docker 20.10 keeps the migrate job's) and the secret files. The volumes,
with the data, stay.

Standard library only.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ["docker", "compose"]
# Secret file -> (service, variable) whose resolved value it holds.
SECRETS = {
    "database_url": ("worker", "DATABASE_URL"),
    "celery_broker_url": ("worker", "CELERY_BROKER_URL"),
    "celery_result_backend": ("worker", "CELERY_RESULT_BACKEND"),
    "flower_basic_auth": ("flower", "FLOWER_BASIC_AUTH"),
    "postgres_password": ("db", "POSTGRES_PASSWORD"),
    "redis_password": ("redis", "REDISCLI_AUTH"),
{%- if cookiecutter.web == 'fastapi' %}
    "api_token": ("api", "API_TOKEN"),
{%- endif %}
}


def run(command: list[str], env: dict, capture: bool = False) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=capture, check=False)
    if done.returncode != 0:
        detail = f": {done.stderr.strip()}" if capture else ""
        sys.exit(f"swarm: {' '.join(command)} failed ({done.returncode}){detail}")
    return done.stdout


def build_image(stack: str, env: dict) -> str:
    run([*COMPOSE, "build", "migrate"], env)
    image = f"{stack}-backend"
    registry = os.environ.get("REGISTRY", "").rstrip("/")
    if not registry:
        return image
    remote = f"{registry}/{image}:{os.environ.get('TAG', 'latest')}"
    run(["docker", "tag", image, remote], env)
    run(["docker", "push", remote], env)
    return remote


def write_secrets(secrets_dir: Path, env: dict) -> None:
    resolved = json.loads(run([*COMPOSE, "config", "--format", "json"], env, capture=True))["services"]
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, (service, variable) in SECRETS.items():
        secret = secrets_dir / name
        secret.touch(mode=0o600)
        secret.write_text(resolved[service]["environment"][variable])


def render(stack: str, env: dict) -> str:
    """The stack file: the compose files, as Compose v2 resolves them, less
    what `docker stack` rejects (the top-level `name:`) and the `x-` blocks,
    which hold the resolved values of the secrets."""
    files = ["compose.yaml", "compose.swarm.yaml", *filter(None, [os.environ.get("EXTRA_COMPOSE_FILE")])]
    rendered = run([*COMPOSE, *(option for file in files for option in ("-f", file)), "config"], env, capture=True)
    kept, in_extension = [], False
    for line in rendered.splitlines(True):
        if not line[:1].isspace():
            in_extension = line.startswith("x-")
        if not in_extension and not line.startswith("name:"):
            kept.append(line)
    return "".join(kept)


def stack_env(stack: str, image: str) -> dict:
    return {
        **os.environ,
        "COMPOSE_PROJECT_NAME": stack,
        "APP_IMAGE": image,
        "SWARM_SECRETS": str(ROOT / ".secrets" / stack),
    }


def manager_env() -> dict:
    """The environment of the commands that talk to the swarm."""
    swarm_host = os.environ.get("SWARM_HOST")
    return {**os.environ, "DOCKER_HOST": swarm_host} if swarm_host else dict(os.environ)


def deploy(stack: str) -> None:
    env = stack_env(stack, image="")
    env["APP_IMAGE"] = build_image(stack, env)
    secrets_dir = Path(env["SWARM_SECRETS"])
    write_secrets(secrets_dir, env)
    stack_file = secrets_dir / "stack.yaml"
    stack_file.write_text(render(stack, env))
    deploy_command = ["docker", "stack", "deploy", "--prune", "--detach=true", "-c", str(stack_file), stack]
    run(deploy_command, {**env, **manager_env()})
    print(f"swarm: deployed {stack}; `docker stack services {stack}` shows it converge")


def show(stack: str) -> None:
    """Print the stack file deploy would use, without building or deploying."""
    print(render(stack, stack_env(stack, image=f"{stack}-backend")), end="")


def remove(stack: str) -> None:
    env = manager_env()
    run(["docker", "stack", "rm", stack], env)
    namespace = f"label=com.docker.stack.namespace={stack}"
    finished = run(["docker", "ps", "-aq", "--filter", namespace, "--filter", "status=exited"], env, True)
    if finished.split():
        run(["docker", "rm", *finished.split()], env, capture=True)
    shutil.rmtree(ROOT / ".secrets" / stack, ignore_errors=True)
    print(f"swarm: removed {stack}; its volumes (the data) stay: docker volume ls --filter {namespace}")


def main(argv: list[str]) -> int:
    actions = {"deploy": deploy, "render": show, "remove": remove}
    if len(argv) != 3 or argv[1] not in actions:
        print("usage: swarm.py deploy|render|remove STACK", file=sys.stderr)
        return 2
    if argv[1] != "remove" and subprocess.run([*COMPOSE, "version"], capture_output=True, check=False).returncode:
        print("swarm: needs Compose v2 (`docker compose`) to render the stack file", file=sys.stderr)
        return 1
    actions[argv[1]](argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
