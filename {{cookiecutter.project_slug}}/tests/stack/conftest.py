"""The acceptance layer's stack: Compose project `{{ cookiecutter.package_name }}_smoke`
unless SMOKE_PROJECT_NAME says otherwise, so a running `make up` stack is
never touched. The fixtures are in ../conftest.py."""

import os

from support import PACKAGE, free_port

# Compose reads these for interpolation, ahead of .env: the project name also
# names the beat volume and the app image. Flower and the API get free host ports.
os.environ["COMPOSE_PROJECT_NAME"] = os.environ.get("SMOKE_PROJECT_NAME", f"{PACKAGE}_smoke")
os.environ["FLOWER_PORT"] = str(free_port())
os.environ["API_PORT"] = str(free_port())
# So the stopped-beat test waits 10 s for the verdict, not the default 30 s.
os.environ["BEAT_HEARTBEAT_MAX_AGE"] = "10"
# So the replay test's poison event is dead-lettered on its first failure.
os.environ["OUTBOX_MAX_ATTEMPTS"] = "1"
