"""Dev mode against the running stack: `make dev` switches it to live code,
edits reach the worker and beat without a rebuild, a broken file and its fix
round-trip with no command typed, a reload under load loses and doubles
nothing, and `make up` switches it back with the data kept.

The tests run in file order and edit files under backend/src, each restored
at once. The module leaves the stack as `make up` left it.
"""

import uuid
from pathlib import Path

import pytest

from support import PACKAGE, ROOT, {% if cookiecutter.beat_scheduler == 'file' %}SCHEDULE_FILE, {% endif %}container_logs, docker, wait_for

SOURCE = ROOT / "backend" / "src" / PACKAGE
APP_UID = "10001"
# The services that run the code from backend/src, and the line each logs once started.
STARTED = {"worker": " ready.", "beat": "beat: Starting..."{% if cookiecutter.web == 'fastapi' %}, "api": "Application startup complete."{% endif %}}
# Written on the host: the host's own bytecode and pytest's cache are not the stack's.
HOST_WRITES = {".pytest_cache", "__pycache__", ".venv"}


def mounts(stack, service: str) -> dict[str, dict]:
    return {mount["Destination"]: mount for mount in stack.inspect(service)["Mounts"]}


def image_id(stack, service: str) -> str:
    return stack.inspect(service)["Image"]


def project_files() -> dict[Path, tuple[int, int]]:
    """Every file of the project but what the host writes itself: (owner, size)."""
    return {
        path.relative_to(ROOT): (path.lstat().st_uid, path.lstat().st_size)
        for path in ROOT.rglob("*")
        if not HOST_WRITES & set(path.relative_to(ROOT).parts)
    }


def logs(stack, service: str) -> str:
    """What the service's first container wrote (redbeat runs two beats)."""
    return container_logs(stack.container(service))


def restarts(stack, service: str) -> int:
    return logs(stack, service).count("reloader: restarting: ")


def ready_after(stack, service: str, count: int) -> bool:
    """The reloader restarted `service` `count` times, and its last start is up."""
    written = logs(stack, service)
    started = STARTED[service]
    last_start = written.rsplit("reloader: restarting: ", 1)[-1]
    return written.count("reloader: restarting: ") >= count and started in last_start


class Edit:
    """A change to a source file, undone by `restore`."""

    def __init__(self, path: Path):
        self.path, self.original = path, path.read_text()

    def append(self, text: str) -> None:
        self.path.write_text(f"{self.original}\n{text}\n")

    def restore(self) -> None:
        self.path.write_text(self.original)


@pytest.fixture(scope="module")
def dev(stack):
    """The session's stack, switched to dev mode by `make dev`."""
    before = {"image": image_id(stack, "worker"), "files": project_files()}
    done = stack.make("dev")
    yield {**before, "output": done.stdout}
    if "/app/src" in mounts(stack, "worker"):
        stack.make("up")


def test_make_dev_runs_live_code_read_only_with_the_same_image_user_and_limits(stack, dev):
    assert "Mode:    dev: backend/src is live" in dev["output"], dev["output"]
    for service in STARTED:
        code = mounts(stack, service)["/app/src"]
        assert code["Type"] == "bind" and code["RW"] is False, code
        assert Path(code["Source"]) == ROOT / "backend" / "src"
        assert image_id(stack, service) == dev["image"], f"{service} runs another image"
        config = stack.inspect(service)["HostConfig"]
        assert config["CapDrop"] == ["ALL"] and stack.inspect(service)["Config"]["User"] == f"{APP_UID}:{APP_UID}"
    assert stack.inspect("beat")["HostConfig"]["ReadonlyRootfs"] is True
    assert "Mode: dev" in stack.make("status").stdout
{%- if cookiecutter.beat_scheduler == 'file' %}


def test_ac1_in_dev_mode_the_schedule_stays_on_its_volume_apart_from_the_code(stack, dev):
    volume = mounts(stack, "beat")["/app/celery-data"]
    assert volume["Type"] == "volume" and volume["RW"] is True, volume
    stack.exec("beat", "test", "-w", SCHEDULE_FILE)
    assert {"process-outbox-events", "reconcile-data-consistency", "cleanup-processed-outbox-events"} <= set(
        stack.schedule()
    )
{%- endif %}


@pytest.mark.parametrize("service", list(STARTED))
def test_ac5_in_dev_mode_processes_are_the_app_user_and_cannot_write_the_code(stack, dev, service):
    top = docker("top", stack.container(service), "-o", "uid,pid,args").stdout.splitlines()[1:]
    assert top and all(line.split()[0] == APP_UID for line in top), top
    refused = stack.exec(service, "touch", f"/app/src/{PACKAGE}/probe.py", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused


def test_an_edit_reaches_every_service_without_a_rebuild_in_one_restart(stack, dev):
    marker = f"dev-marker-{uuid.uuid4().hex[:8]}"
    counts = {service: restarts(stack, service) for service in STARTED}
    # A burst of saves, as an editor or `git checkout` makes: one restart.
    edits = [Edit(SOURCE / "schedule.py"), Edit(SOURCE / "tasks.py"), Edit(SOURCE / "outbox.py")]
    try:
        for edit in edits:
            edit.append(f"print({marker!r}, flush=True)")
        for service in STARTED:
            wait_for(lambda s=service: marker in logs(stack, s), timeout=30, message=f"{service} to run the edit")
            wait_for(lambda s=service: ready_after(stack, s, counts[s] + 1), timeout=30, message=f"{service} up")
    finally:
        for edit in edits:
            edit.restore()
    for service in STARTED:
        # Settled: the restore restarts each once more, and nothing else does.
        wait_for(lambda s=service: ready_after(stack, s, counts[s] + 2), timeout=60, message=f"{service} restored")
        assert restarts(stack, service) == counts[service] + 2, logs(stack, service)
        assert image_id(stack, service) == dev["image"]
    stack.wait_healthy()


def test_a_syntax_error_is_logged_with_file_and_line_and_the_fix_brings_the_worker_back(stack, dev):
    tasks = Edit(SOURCE / "tasks.py")
    line = len(tasks.original.splitlines()) + 2
    try:
        tasks.append("def broken(:")
        wait_for(
            lambda: f'File "/app/src/{PACKAGE}/tasks.py", line {line}' in logs(stack, "worker"),
            timeout=30,
            message="the traceback naming the file and line",
        )
        assert "SyntaxError" in logs(stack, "worker")
        wait_for(lambda: stack.health("worker") == "unhealthy", timeout=60, message="the worker to turn unhealthy")
        assert stack.inspect("worker")["State"]["Status"] == "running"
        status = stack.make("status", check=False)
        assert status.returncode != 0 and "- worker: unhealthy" in status.stdout, status.stdout
    finally:
        tasks.restore()
    wait_for(lambda: stack.health("worker") == "healthy", timeout=60, message="the fixed worker to turn healthy")
    stack.wait_healthy()


def test_a_reload_mid_task_loses_and_doubles_no_event(stack, dev):
    stack.empty_outbox()
    before = restarts(stack, "worker")
    relay = SOURCE / "relay.py"
    # Writes of effects wait on the lock, so the reload lands mid-task.
    with stack.locked("order_confirmations"):
        stack.emit(2000)
        wait_for(lambda: stack.outbox()["processing"] > 0, timeout=30, message="events held mid-task")
        relay.write_text(relay.read_text())  # a save, with nothing changed
        wait_for(lambda: restarts(stack, "worker") > before, timeout=30, message="the reload")
    stack.settle(emitted=2000, timeout=120)
    wait_for(lambda: ready_after(stack, "worker", before + 1), timeout=60, message="the worker back")
    # The running tasks were given the soft shutdown, as on `docker stop`.
    assert "Initiating Soft Shutdown" in logs(stack, "worker").rsplit("reloader: restarting: ", 1)[-1]


def test_a_changed_lock_is_named_with_what_to_run(stack, dev):
    lock = Edit(ROOT / "backend" / "requirements.lock")
    try:
        lock.append("# a dependency changed")
        status = stack.make("status", check=False)
    finally:
        lock.restore()
    assert status.returncode != 0
    assert "image: built from an older backend/requirements.lock; run make dev (or make up) to rebuild" in status.stdout


def test_make_up_after_dev_runs_the_image_code_with_the_data_kept(stack, dev):
    orders = stack.psql("SELECT count(*) FROM orders")
    done = stack.make("up")
    assert "Mode:    up" in done.stdout, done.stdout
    for service in STARTED:
        assert "/app/src" not in mounts(stack, service)
    assert stack.psql("SELECT count(*) FROM orders") == orders
    assert "Mode: up" in stack.make("status").stdout


def test_nothing_the_dev_stack_did_landed_on_the_host(stack, dev):
    now = project_files()
    assert set(now) == set(dev["files"]), sorted(set(now) ^ set(dev["files"]))
    assert not [path for path, (owner, _) in now.items() if str(owner) == APP_UID]
    changed = [path for path, facts in now.items() if facts != dev["files"][path]]
    assert not changed, changed
