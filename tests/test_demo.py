"""`make demo`, then `down`, then the printed way back, `make -C ... up`: it
must start again from what the demo's .env remembers, with no image chosen
in the environment (no registry here, so only the stand-ins work)."""

import os
import subprocess

from conftest import TEMPLATE, run
from test_generated_stack import project_resources

IMAGE_VARIABLES = ("PYTHON_IMAGE", "REDIS_IMAGE", "POSTGRES_IMAGE")


def test_the_demo_starts_again_after_down_with_the_images_it_chose(tmp_path):
    project = f"celery_stack_demo{os.getpid()}"
    # Its own project name and port: a demo the user runs is left alone.
    env = {name: value for name, value in os.environ.items() if name not in IMAGE_VARIABLES}
    env |= {"COMPOSE_PROJECT_NAME": project, "FLOWER_PORT": "15599"}
    demo = tmp_path / "celery_stack"
    try:
        run(["make", "demo", f"DEMO_DIR={tmp_path}"], cwd=TEMPLATE, env=env)
        remembered = dict(line.split("=", 1) for line in (demo / ".env").read_text().splitlines() if "=" in line)
        for name in IMAGE_VARIABLES:
            assert remembered[name] == os.environ[name], name
        run(["make", "down"], cwd=demo, env=env)
        started = run(["make", "up"], cwd=demo, env=env)
        assert "services healthy" in started.stdout, started.stdout
    finally:
        subprocess.run(["make", "clean"], cwd=demo, env=env, capture_output=True, check=False)
    assert not project_resources(project), "the demo left containers, volumes or networks behind"
