"""The containers' health checks: ``python -m {{ cookiecutter.package_name }}.probes beat|worker|flower``.

Beat and the worker write liveness records (scheduler.py, liveness.py) that
these read; Flower is asked over HTTP. Every health check is a `docker exec`
of this, and checks are most of what an idle stack spends, so it imports as
little as it can (run it with `python -S`): no Celery, no app, not even json
or pathlib. Records are marshal data: built in, and written and read by the
same Python in the same container.
"""

import marshal
import os
import sys
import time

# In each container's /tmp (beat's is a tmpfs): rewritten every few seconds.
BEAT_RECORD = "/tmp/celery-beat-record"
WORKER_RECORD = "/tmp/celery-worker-alive"
# Five of the worker's refreshes.
WORKER_MAX_AGE = 10.0
FLOWER = ("127.0.0.1", 5555)
{%- if cookiecutter.web == 'fastapi' %}
API = ("127.0.0.1", 8000)
{%- endif %}


def write_record(path: str | os.PathLike, record: dict) -> None:
    """Replace the record atomically: a reader never sees half of it."""
    directory, name = os.path.split(os.fspath(path))
    partial = os.path.join(directory, f".{name}.{os.getpid()}")
    with open(partial, "wb") as file:
        marshal.dump(record, file)
    os.replace(partial, path)


def read_record(path: str | os.PathLike) -> dict | None:
    try:
        with open(path, "rb") as file:
            return marshal.load(file)  # noqa: S302 - written by this container's own process
    except FileNotFoundError:
        return None


def beat_problem(record: dict | None, now: float) -> str | None:
    """What is wrong with beat, from the record its scheduler writes, or None.

    Beat is unhealthy when its scheduler stops ticking, when any entry's
    sends have kept failing for longer than the grace, or when it cannot
    save its schedule.
    """
    if record is None:
        return "no record yet: the scheduler has not ticked"
    age = now - record["ticked_at"]
    if age > record["max_tick_age"]:
        return f"last tick {age:.0f}s ago (limit {record['max_tick_age']:.0f}s): beat is not ticking"
    for name, entry in sorted(record["entries"].items()):
        since = entry.get("failing_since")
        if since is not None and now - since > record["send_failure_grace"]:
            return (
                f"sends of {name} have failed for {now - since:.0f}s "
                f"(limit {record['send_failure_grace']:.0f}s): {entry['error']}"
            )
    if record.get("storage_problem"):
        return record["storage_problem"]
    return None


def worker_problem(record: dict | None, now: float) -> str | None:
    """The worker is unhealthy unless its consumer, connected to the broker,
    keeps its liveness record fresh."""
    if record is None:
        return "no liveness record: the worker is not consuming from the broker"
    age = now - record["alive_at"]
    if age > WORKER_MAX_AGE:
        return f"liveness record {age:.0f}s old (limit {WORKER_MAX_AGE:.0f}s): the worker's event loop is stuck"
    return None


def http_problem(address: tuple[str, int], path: str, expected: bytes) -> str | None:
    """A GET of `path` answers 200 with `expected`. A raw socket, as importing
    urllib would cost the check five times its own time."""
    import socket  # only here: the other checks need not pay for it

    url = f"http://{address[0]}:{address[1]}{path}"
    try:
        with socket.create_connection(address, timeout=3) as connection:
            connection.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            response = b"".join(iter(lambda: connection.recv(4096), b""))
    except OSError as exc:
        return f"{url} failed: {exc}"
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if status_line.split()[1:2] == [b"200"] and body == expected:
        return None
    return f"{url} answered {status_line!r} {body[:40]!r}"


def flower_problem(address: tuple[str, int] = FLOWER) -> str | None:
    return http_problem(address, "/healthcheck", b"OK")


CHECKS = {
    "beat": lambda: beat_problem(read_record(BEAT_RECORD), time.time()),
    "worker": lambda: worker_problem(read_record(WORKER_RECORD), time.time()),
    "flower": flower_problem,
{%- if cookiecutter.web == 'fastapi' %}
    # Liveness only: the API answers. /readyz would fail it for an outage of
    # PostgreSQL or Redis, and a restart cures neither.
    "api": lambda: http_problem(API, "/healthz", b'{"status":"ok"}'),
{%- endif %}
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: python -m {__package__}.probes {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    component = argv[0]
    problem = CHECKS[component]()
    if problem:
        print(f"{component}: unhealthy: {problem}", file=sys.stderr)
        return 1
    print(f"{component}: healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
