"""The generated README's "Your first task", followed literally on a fresh
bake: its code blocks are applied and its commands run, in order, and each
command's output must show what the README shows.

How the section's blocks are read:
- "... end of `PATH`:" and a python block: appended to PATH;
- "Create `PATH`:" and a python block: written to PATH;
- a diff block: applied with `git apply`;
- a console block: each `$ command` runs, and each line under it must
  appear in its output, `...` standing for anything. A `make logs` command
  follows the logs until every line has appeared.
"""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import COMPOSE_V2, run

BLOCK = re.compile(r"(?P<lead>[^\n]*)\n\n```(?P<kind>\w+)\n(?P<body>.*?)```", re.DOTALL)
APPEND_TO = re.compile(r"end of `([^`]+)`:$")
CREATE = re.compile(r"Create `([^`]+)`:$")
LOG_DEADLINE = 90


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def first_task_steps(readme: str) -> list[tuple[str, str, str]]:
    """(kind, lead line, body) of each code block of the section, in order."""
    section = readme.split("\n## Your first task\n", 1)[1].split("\n## ", 1)[0]
    return [(match["kind"], match["lead"], match["body"]) for match in BLOCK.finditer(section)]


def expected_lines(body: str) -> list[tuple[str, list[re.Pattern]]]:
    """Each `$ command` of a console block, with its output lines as patterns."""
    commands = []
    for line in body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif line.strip() and line.strip() != "...":
            pattern = ".*".join(re.escape(part) for part in line.split("..."))
            commands[-1][1].append(re.compile(pattern))
    return commands


def follow(command: str, patterns: list[re.Pattern], cwd: Path, env: dict) -> str:
    """Run a command that never ends (`make logs`) until every pattern has matched a line."""
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen, missing, deadline = [], list(patterns), time.monotonic() + LOG_DEADLINE
    try:
        os.set_blocking(process.stdout.fileno(), False)
        while missing and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                time.sleep(0.2)
                continue
            seen.append(line)
            missing = [pattern for pattern in missing if not pattern.search(line)]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not missing, f"{command}: never showed {[p.pattern for p in missing]}:\n{''.join(seen[-40:])}"
    return "".join(seen)


def worker_restarted(project: str, since: float) -> bool:
    """The dev reloader restarted the worker after `since`, and it is ready again."""
    logs = subprocess.run(
        ["docker", "logs", "--since", f"{since:.3f}", f"{project}-worker-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    written = logs.stdout + logs.stderr
    return "reloader: restarting" in written and " ready." in written.rsplit("reloader: restarting", 1)[-1]


@pytest.fixture
def project(bake):
    path = bake()
    name = f"first_task{os.getpid()}"
    # A free Flower port, so that a stack on the default one is no obstacle.
    env = {**os.environ, "COMPOSE": " ".join(COMPOSE_V2), "COMPOSE_PROJECT_NAME": name, "FLOWER_PORT": free_port()}
    yield path, env
    subprocess.run([*COMPOSE_V2, "down", "-v", "--remove-orphans"], cwd=path, env=env, capture_output=True, check=False)
    subprocess.run(["docker", "image", "rm", f"{name}-backend"], capture_output=True, check=False)


def test_the_readme_first_task_runs_from_beat_under_make_dev(project):
    path, env = project
    steps = first_task_steps((path / "README.md").read_text())
    assert steps, 'the README has no "Your first task" section with code blocks'
    for kind, lead, body in steps:
        if kind == "console":
            for command, patterns in expected_lines(body):
                if command.startswith("make logs"):
                    follow(command, patterns, path, env)
                    continue
                output = run(["bash", "-c", command], cwd=path, env=env).stdout
                for pattern in patterns:
                    assert pattern.search(output), f"{command}: no line like {pattern.pattern!r} in:\n{output}"
            continue
        since = time.time()
        if kind == "diff":
            run(["git", "apply", "-"], cwd=path, input=body)
        elif match := APPEND_TO.search(lead):
            with open(path / match[1], "a") as source:
                source.write(f"\n\n{body}")
        elif match := CREATE.search(lead):
            (path / match[1]).write_text(body)
        else:
            pytest.fail(f"a {kind} block the test cannot apply, after: {lead!r}")
        if "backend/src/" in lead + body:
            # As a reader would see in `make logs`: the worker restarted with it.
            deadline = time.monotonic() + 60
            while not worker_restarted(env["COMPOSE_PROJECT_NAME"], since):
                assert time.monotonic() < deadline, "the worker did not restart after the edit"
                time.sleep(0.5)
    # The new task ran on the worker from beat, not only from `make run-task`.
    worker = subprocess.run([*COMPOSE_V2, "logs", "worker"], cwd=path, env=env, capture_output=True, text=True).stdout
    assert len(re.findall(r"report_pending_events\[[^]]+\] succeeded", worker)) >= 2, worker[-3000:]
    # And the project still passes its own lint with the new code in it.
    run(["make", "lint"], cwd=path, env=env)
