"""Liveness records that long-running processes write, and the checks that
read them: ``python -m {{ cookiecutter.package_name }}.probes beat``.

Standard library only, so a container health check starts in milliseconds
and never imports Celery or the app.
"""

import json
import os
import sys
import time
from pathlib import Path

# On beat's tmpfs: written every tick, so it must not wear the volume.
BEAT_RECORD = Path("/tmp/celery-beat-record.json")


def write_record(path: Path, record: dict) -> None:
    """Replace the record atomically: a reader never sees half of it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record))
    partial.replace(path)


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
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


CHECKS = {"beat": lambda: beat_problem(read_record(BEAT_RECORD), time.time())}


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
