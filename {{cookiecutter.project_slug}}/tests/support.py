"""Helpers for the container test layers: commands against one Compose
project's containers, polling with a deadline, and the outbox as the database
sees it. Layers choose their project name and settings in their conftest."""

import base64
import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"
# The Makefile exports the one it uses; otherwise v2 when present, else v1.
COMPOSE = (
    shlex.split(os.environ["COMPOSE"])
    if os.environ.get("COMPOSE")
    else ["docker", "compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
    else [shutil.which("docker-compose") or "docker-compose"]
)
SCHEDULE_FILE = "/app/celery-data/celerybeat-schedule"
READ_SCHEDULE = """
import json, shelve, sys
with shelve.open(sys.argv[1], flag="r") as store:
    entries = store["entries"]
    print(json.dumps({
        name: dict(last_run_at=entry.last_run_at.isoformat(), total_run_count=entry.total_run_count)
        for name, entry in entries.items()
    }))
"""
# A beat's role (active, standby) from the record its scheduler writes each
# tick; "none" until a (re)started beat has ticked.
READ_BEAT_ROLE = """
import marshal, os
path = "/tmp/celery-beat-record"
print(marshal.load(open(path, "rb"))["role"] if os.path.exists(path) else "none")
"""
SWEEP = "process-outbox-events"
# Beat's whole record, as JSON: role, last tick, each entry's last send.
READ_BEAT_RECORD = """
import json, marshal, os
path = "/tmp/celery-beat-record"
print(json.dumps(marshal.load(open(path, "rb")) if os.path.exists(path) else {}))
"""
# COUNT orders at RATE a second, one per request or transaction, as an
# application writes them; prints COUNT when all are written. TARGET is the
# API's orders URL (a failed POST is tried again with the same
# Idempotency-Key, so the order is written once) or `database` (through the
# package; a failed write is tried again). Run inside an app container.
ORDER_LOAD = f"""
import json, sys, threading, time, urllib.request, uuid
count, rate, target = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
# Writers side by side: one alone, waiting on each answer, falls behind 200/s.
WRITERS = 8


def write_to_database(key):
    from {PACKAGE}.db import new_session
    from {PACKAGE}.orders import create_orders
    from {PACKAGE}.relay import nudge

    with new_session() as session:
        create_orders(session, 1)
        session.commit()
    try:
        nudge()
    except Exception:
        pass  # beat's next sweep finds the order


def post(key):
    headers = dict([("Content-Type", "application/json"), ("Idempotency-Key", key)])
    body = json.dumps(dict(reference="load")).encode()
    urllib.request.urlopen(urllib.request.Request(target, body, headers), timeout=5).close()


def writer(first):
    write = write_to_database if target == "database" else post
    for number in range(first, count, WRITERS):
        key = str(uuid.uuid4())
        while True:
            try:
                write(key)
                break
            except Exception:
                time.sleep(0.2)
        time.sleep(max(0.0, started + (number + 1) / rate - time.monotonic()))


started = time.monotonic()
writers = [threading.Thread(target=writer, args=(first,)) for first in range(WRITERS)]
for thread in writers:
    thread.start()
for thread in writers:
    thread.join()
print(count)
"""
LOG_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): (\w+)/[^\]]*\] (.*)")
PROJECT_LABEL = "com.docker.compose.project"


def wait_for(condition, *, timeout: float, interval: float = 0.5, message: str = "condition"):
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_env_file(root: Path = ROOT) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (root / ".env").read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.startswith("#")}


def container_logs(container: str) -> str:
    """Everything a container wrote; Celery logs to stderr."""
    done = docker("logs", container)
    return done.stdout + done.stderr


def sweep_sends(logs: str, after: datetime) -> list[datetime]:
    """When a beat sent the relay's sweep after `after`, from its log (as
    `docker logs` or `compose logs` prints it)."""
    found = []
    for when, _, message in LOG_LINE.findall(logs):
        sent = datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
        if f"Sending due task {SWEEP} " in message and sent > after:
            found.append(sent)
    return found


def scrape(container: str, url: str) -> dict:
    """Prometheus metrics at `url`, fetched from inside `container` (as its
    neighbours on the network see them), as {(name, sorted labels): value}."""
    script = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
    text = docker("exec", container, "python", "-c", script, url).stdout
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def psql_command(env: dict[str, str]) -> list[str]:
    """psql in the db container, as the app's database user."""
    return ["psql", "-U", env["POSTGRES_USER"], "-d", env["POSTGRES_DB"], "-v", "ON_ERROR_STOP=1"]


def at_replicas(service: dict) -> bool:
    """A Swarm service at its replicas (`docker stack services`): `2/2`,
    `2/2 (max 1 per node)`, or a job's `0/1 (1/1 completed)`."""
    if service["Mode"].endswith("job"):
        return "(1/1 completed)" in service["Replicas"]
    running, desired = re.match(r"(\d+)/(\d+)", service["Replicas"]).groups()
    return running == desired != "0"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


class Stack:
    """Commands against one Compose project's containers."""

    def __init__(self, project: str, services=None, root: Path = ROOT):
        self.project = project
        self.services = services
        self.root = root
        self.env = read_env_file(root)

    def compose(self, *args: str, files: tuple[str, ...] = (), check: bool = True) -> subprocess.CompletedProcess:
        file_options = [option for file in files for option in ("-f", file)]
        command = [*COMPOSE, *file_options, *args]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def exec(self, service: str, *command: str, env: dict | None = None, check: bool = True):
        options = [item for name, value in (env or {}).items() for item in ("-e", f"{name}={value}")]
        return self.compose("exec", "-T", *options, service, *command, check=check)

    def make(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """A Makefile target, as a user runs it, against this project; `input` is typed into it."""
        # Not the outer make's variables (ARGS of `make smoke ARGS=...` would reach `up`).
        outer = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ARGS"}
        env = {name: value for name, value in os.environ.items() if name not in outer}
        env.update(COMPOSE=" ".join(COMPOSE), COMPOSE_PROJECT_NAME=self.project)
        command = ["make", "--no-print-directory", *args]
        done = subprocess.run(command, cwd=self.root, env=env, capture_output=True, text=True, input=input, check=False)
        if check:
            assert done.returncode == 0, f"make {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done

    def container(self, service: str, number: int = 1) -> str:
        """The id of the service's container `number`: the one `exec` uses,
        not a one-off `compose run` container of the service (number 1 too)."""
        labels = [
            f"{PROJECT_LABEL}={self.project}",
            f"com.docker.compose.service={service}",
            f"com.docker.compose.container-number={number}",
            "com.docker.compose.oneoff=False",
        ]
        filters = [option for label in labels for option in ("--filter", f"label={label}")]
        return docker("ps", "-aq", *filters).stdout.strip()

    def inspect(self, service: str) -> dict:
        return json.loads(docker("inspect", self.container(service)).stdout)[0]

    def health(self, service: str) -> str:
        return self.inspect(service)["State"]["Health"]["Status"]

    def health_output(self, service: str) -> str:
        """What the service's last health check printed."""
        log = self.inspect(service)["State"]["Health"]["Log"]
        return log[-1]["Output"].strip() if log else ""

    def logs(self, service: str) -> list[tuple[datetime, str, str]]:
        """(time, level, message) of each Celery log line of `service`."""
        return [
            (datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC), level, message)
            for when, level, message in LOG_LINE.findall(self.raw_logs(service))
        ]

    def raw_logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service).stdout

    def wait_healthy(self) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "wait_healthy.py")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COMPOSE": " ".join(COMPOSE)},
        )
        assert done.returncode == 0, f"stack did not turn healthy:\n{done.stdout}{done.stderr}"
        return done.stdout

    def flower(self, path: str, auth: bool = True) -> tuple[int, bytes]:
        """GET `path` from Flower's published port: (status, body)."""
        port = self.services.port_for("flower", 5555)
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if auth:
            token = base64.b64encode(f"{self.env['FLOWER_USER']}:{self.env['FLOWER_PASSWORD']}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a fixed local URL
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    @functools.cached_property
    def api_port(self) -> str:
        return self.compose("port", "api", "8000").stdout.strip().rsplit(":", 1)[-1]

    def api(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """A request to the API's published port: (status, parsed JSON body, headers)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", data=body, method=method)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a fixed local URL
                return response.status, json.loads(response.read() or b"null"), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), error.headers

    def psql(self, query: str) -> str:
        return self.exec("db", *psql_command(self.env), "-tAc", query).stdout.strip()

    @contextlib.contextmanager
    def locked(self, table: str):
        """Hold an EXCLUSIVE lock on `table` until the block ends: reads go
        on, writes wait. The lock lives in a psql session of its own, which
        ends with the block (or with the database, if a test stops it)."""
        session = subprocess.Popen(
            [*COMPOSE, "exec", "-T", "db", *psql_command(self.env)],
            cwd=self.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            session.stdin.write(f"BEGIN; LOCK TABLE {table} IN EXCLUSIVE MODE;\n")
            session.stdin.flush()
            granted = (
                f"SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass"  # noqa: S608
                " AND mode = 'ExclusiveLock' AND granted"
            )
            wait_for(lambda: self.psql(granted) == "1", timeout=30, message=f"the lock on {table}")
            yield
        finally:
            with contextlib.suppress(BrokenPipeError):
                session.stdin.write("COMMIT;\n")
                session.stdin.close()
            session.wait(timeout=30)

    def empty_outbox(self) -> None:
        """No orders, events, effects or event history: a test starts from zero."""
        self.psql("TRUNCATE order_confirmations, outbox_event_history, outbox_events, orders")

    def emit(self, count: int) -> None:
        self.exec("worker", "python", "-m", PACKAGE, "emit", "--count", str(count))

    def outbox(self) -> dict[str, int]:
        """Events per status, and how many processed events lack their one effect."""
        rows = self.psql("SELECT status, count(*) FROM outbox_events GROUP BY status").splitlines()
        counts = {"pending": 0, "processing": 0, "processed": 0, "failed": 0}
        counts.update({status: int(count) for status, count in (row.split("|") for row in rows)})
        counts["processed_without_effect"] = int(
            self.psql(
                "SELECT count(*) FROM outbox_events e LEFT JOIN order_confirmations c ON c.outbox_event_id = e.id "
                "WHERE e.status = 'processed' AND c.outbox_event_id IS NULL"
            )
        )
        counts["effects"] = int(self.psql("SELECT count(*) FROM order_confirmations"))
        return counts

    def settle(self, *, emitted: int, failed: int = 0, timeout: float, since: float | None = None) -> float:
        """Wait until no event is pending or in processing, then check the
        invariant: every event processed (but `failed` dead letters), each
        with exactly one effect. Returns the seconds since `since` (a
        time.monotonic() reading, by default now)."""
        started = time.monotonic() if since is None else since

        def settled():
            outbox = self.outbox()
            return outbox["pending"] == outbox["processing"] == 0 and outbox

        outbox = wait_for(settled, timeout=timeout, message=f"the outbox to settle: {self.outbox()}")
        assert outbox["processed"] + outbox["failed"] == emitted, outbox
        assert outbox["failed"] == failed, outbox
        assert outbox["processed_without_effect"] == 0, outbox
        assert outbox["effects"] == outbox["processed"], outbox
        return time.monotonic() - started

    def schedule(self) -> dict:
        """Beat's schedule file as stored: each entry's last run and run count."""
        return json.loads(self.exec("beat", "python", "-c", READ_SCHEDULE, SCHEDULE_FILE).stdout)

    def schedule_inode(self) -> str:
        return self.exec("beat", "stat", "-c", "%i", SCHEDULE_FILE).stdout.strip()

    def remove(self) -> None:
        """Everything of this project, including what a test started beside
        Compose (labelled with the project), and the app image."""
        self.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)
        label = f"label={PROJECT_LABEL}={self.project}"
        for listing, removal in (
            (["ps", "-aq"], ["rm", "-f"]),
            (["volume", "ls", "-q"], ["volume", "rm", "-f"]),
            (["network", "ls", "-q"], ["network", "rm"]),
        ):
            ids = docker(*listing, "--filter", label, check=False).stdout.split()
            if ids:
                docker(*removal, *ids, check=False)
        docker("image", "rm", f"{self.project}-backend", check=False)
