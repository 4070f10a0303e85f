"""Rendering: every bake is complete, lint-clean and accepted by Compose."""

import re

import pytest
import yaml
from conftest import COMPOSE_V1, COMPOSE_V2, VARIANTS, VENV_BIN, run

# `.cookiecutter.json` is a real file name; `cookiecutter.<answer>` is a
# leftover. Go templates (`{{.Task.Slot}}`, which Swarm expands) are not.
UNRENDERED = re.compile(r"\{\{(?!\.)|\{%|\{#|cookiecutter\.(?!json\b)")


def text_files(project):
    for path in project.rglob("*"):
        if path.is_file():
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_nothing_is_left_unrendered(bake, answers):
    project = bake(**answers)
    leftovers = [
        f"{path.relative_to(project)}: {match.group()}"
        for path, text in text_files(project)
        for match in UNRENDERED.finditer(text)
    ]
    assert not leftovers


@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_generated_python_is_ruff_clean(bake, answers):
    project = bake(**answers)
    run([str(VENV_BIN / "ruff"), "check", "."], cwd=project)
    run([str(VENV_BIN / "ruff"), "format", "--check", "."], cwd=project)


@pytest.mark.parametrize("compose", [COMPOSE_V2, COMPOSE_V1], ids=["compose-v2", "compose-v1"])
@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_compose_accepts_the_compose_file(bake, answers, compose):
    project = bake(**answers)
    run([*compose, "config", "-q"], cwd=project)
    services = run([*compose, "config", "--services"], cwd=project).stdout.split()
    web = ["api"] if answers.get("web", "fastapi") == "fastapi" else []
    # docker-compose 1.29 lists the monitoring profile's service too; neither starts it without the profile.
    profiled = ["prometheus"] if compose == COMPOSE_V1 else []
    assert sorted(services) == sorted(["beat", "db", "flower", "migrate", "redis", "worker", *web, *profiled])


@pytest.mark.parametrize("compose", [COMPOSE_V2, COMPOSE_V1], ids=["compose-v2", "compose-v1"])
@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_dev_mode_adds_only_the_code_mount_the_reloader_and_a_faster_poll(bake, answers, compose):
    project = bake(**answers)
    files = ["-f", "compose.yaml", "-f", "compose.dev.yaml"]
    up, dev = (yaml.safe_load(run([*compose, *f, "config"], cwd=project).stdout)["services"] for f in ([], files))
    # docker-compose 1.29 drops pull_policy when it merges two files.
    ignored = {"pull_policy"} if compose == COMPOSE_V1 else set()
    # The services that run the code: they get the mount, the reloader and the poll.
    for name in [name for name in ("worker", "beat", "api") if name in dev]:
        assert "/app/src" in str(dev[name].pop("volumes")) and "reloader" in str(dev[name].pop("entrypoint"))
        assert dev[name]["environment"].pop("BROKER_POLLING_INTERVAL") in ("1", 1)
        up[name].pop("volumes", None)
    assert dev["beat"]["read_only"] is True
    for name, service in up.items():
        # ... and may list a service's volumes in another order.
        for merged in (dev[name], service):
            merged["volumes"] = sorted(map(str, merged.get("volumes", [])))
        assert {key: value for key, value in dev[name].items() if key not in ignored} == {
            key: value for key, value in service.items() if key not in ignored
        }, name


@pytest.mark.parametrize("answers", VARIANTS.values(), ids=VARIANTS.keys())
def test_docker_stack_accepts_the_swarm_stack_file_and_it_holds_no_secret(bake, answers):
    """What `make deploy` hands to `docker stack deploy` (`swarm.py render`)."""
    project = bake(**answers)
    (project / ".env").write_text((project / ".env.example").read_text())
    stack_file = project / "stack.yaml"
    stack_file.write_text(run(["python3", "scripts/swarm.py", "render", "bake"], cwd=project).stdout)
    stack = run(["docker", "stack", "config", "-c", str(stack_file)], cwd=project).stdout
    assert "endpoint_mode: dnsrr" in stack
    assert "depends_on" not in stack
    assert "change-me" not in stack


def test_docker_stop_outlasts_the_workers_soft_shutdown(bake):
    """Compose's stop_grace_period must leave the soft shutdown time to
    requeue, or Docker SIGKILLs a worker that is still shutting down."""
    project = bake()
    worker = yaml.safe_load((project / "compose.yaml").read_text())["services"]["worker"]
    grace = float(worker["stop_grace_period"].removesuffix("s"))
    settings = next((project / "backend" / "src").glob("*/settings.py")).read_text()
    soft = float(re.search(r"worker_soft_shutdown_timeout: PositiveSeconds = (\d+)", settings).group(1))
    assert grace >= soft + 5
    assert worker["environment"]["REMAP_SIGTERM"] == "SIGQUIT"


def test_no_bake_holds_a_secret_and_make_env_makes_fresh_ones_once(bake):
    first, second = bake(), bake(project_name="Other Stack")
    assert not (first / ".env").exists()
    for project in (first, second):
        run(["make", "env"], cwd=project)
    env = first / ".env"
    secrets = dict(re.findall(r"^(\w+_(?:PASSWORD|TOKEN))=(.+)$", env.read_text(), re.MULTILINE))
    assert sorted(secrets) == ["API_TOKEN", "FLOWER_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD"]
    assert all(len(secret) >= 24 and secret not in (second / ".env").read_text() for secret in secrets.values())
    assert env.stat().st_mode & 0o777 == 0o600

    written = env.read_bytes()
    run(["make", "env"], cwd=first)
    assert env.read_bytes() == written
    # A password a template update adds is appended; nothing else changes.
    example = first / ".env.example"
    example.write_text(example.read_text() + "NEW_PASSWORD=change-me\n")
    run(["make", "env"], cwd=first)
    assert env.read_bytes().startswith(written)
    assert re.search(r"^NEW_PASSWORD=[\w-]{24,}$", env.read_text(), re.MULTILINE)
