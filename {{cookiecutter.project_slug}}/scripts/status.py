#!/usr/bin/env python3
"""`make status`: the whole stack on one screen, from the host.

Services and their health come from Docker; beat's send record, the outbox
and the workers from `python -m <package> report` in the containers. Exits 1,
naming each problem, when a service is unhealthy, beat's sends fail, the
backlog grows or new dead letters appeared.
"""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from summary import code_mode
from wait_healthy import active_services, compose_command, container_states, verdict

PACKAGE = "{{ cookiecutter.package_name }}"
LOCK = Path(__file__).resolve().parents[1] / "backend" / "requirements.lock"


def ago(timestamp: float | None) -> str:
    """`12s ago`, `in 3h05m`: how far a moment is from now."""
    if timestamp is None:
        return "-"
    seconds = round(time.time() - timestamp)
    minutes, secs = divmod(abs(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    span = f"{hours}h{minutes:02}m" if hours else f"{minutes}m{secs:02}s" if minutes else f"{secs}s"
    return f"{span} ago" if seconds >= 0 else f"in {span}"


def report(container: str, part: str) -> dict:
    done = subprocess.run(
        ["docker", "exec", container, "python", "-m", PACKAGE, "report", part],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{part} report failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def health(state: dict) -> tuple[str, str]:
    """The container's state in a word, and the reason its health check gave."""
    if state["Status"] != "running":
        return f"{state['Status']} ({state['ExitCode']})", ""
    checked = state.get("Health")
    if checked is None or checked["Status"] == "healthy":
        return (checked["Status"] if checked else "running"), ""
    log = checked.get("Log") or [{}]
    return checked["Status"], log[-1].get("Output", "").strip()


def services_table(project: str, services: list[str], problems: list[str]) -> tuple[Table, dict]:
    table = Table("service", "container", "state", title="Services")
    # The whole reason is under Problems; here, one line of it.
    table.add_column("why", max_width=60, no_wrap=True, overflow="ellipsis")
    running = {}
    for service in services:
        states = container_states(project, service)
        if not states:
            table.add_row(service, "-", "[red]not created[/]", "")
            problems.append(f"{service}: no container")
        for state in states:
            word, why = health(state)
            ok = verdict(state) == "ok"
            table.add_row(service, state["id"][:12], word if ok else f"[red]{word}[/]", escape(why))
            if not ok:
                # A health check's output names its component already.
                problems.append(why or f"{service}: {word}")
            # An unhealthy container still reports: that is when it matters.
            if state["Status"] == "running":
                running.setdefault(service, []).append(state["id"])
    return table, running


def beat_table(beats: list[str], problems: list[str]) -> Table:
    table = Table("beat", "entry", "last send", title="Beat")
    table.add_column("sent", max_width=60, no_wrap=True, overflow="ellipsis")
    table.add_column("next due")
    for container in beats:
        beat = report(container, "beat")
        record = beat["record"] or {"entries": {}}
        who = f"{container[:12]} {record.get('scheduler', '?')} ({record.get('role', '?')})"
        for name, entry in sorted(record["entries"].items()):
            failed = f"[red]failed: {escape(entry['error'] or '')}[/]"
            sent = {True: "[green]ok[/]", False: failed, None: "-"}[entry["ok"]]
            # Past the grace its health check fails, and Services says so;
            # before that, this is the early warning.
            if entry["ok"] is False and beat["problem"] is None:
                problems.append(f"beat: sends of {name} are failing: {entry['error']}")
            table.add_row(who, name, ago(entry["sent_at"]), sent, ago(entry["next_due_at"]))
    return table


def outbox_tables(stack: dict, problems: list[str]) -> list[Table]:
    outbox, dead = stack["outbox"], stack["dead_letters"]
    counts = Table(*outbox["counts"], "oldest pending", "processed last minute", title="Outbox")
    age = outbox["oldest_pending_age"]
    counts.add_row(
        *map(str, outbox["counts"].values()),
        "-" if age is None else f"{age:.0f}s",
        str(outbox["processed_last_minute"]),
    )
    if age is not None and age > outbox["backlog_age_limit"]:
        limit = outbox["backlog_age_limit"]
        problems.append(f"outbox: backlog growing: the oldest pending event waited {age:.0f}s (limit {limit:.0f}s)")
    letters = Table("event", "type", "attempts", "failed", "last error", title="Dead letters, newest 5")
    for event in dead:
        error = escape(event["error"] or "")
        letters.add_row(event["id"], event["event_type"], str(event["attempts"]), ago(event["failed_at"]), error)
    if new := [event for event in dead if event["new"]]:
        problems.append(f"outbox: {len(new)} new dead letter(s) in the last hour: make dead-letters, then make replay")
    workers = Table("worker", "active tasks", title="Workers")
    for node, tasks in stack["workers"].items():
        workers.add_row(node, ", ".join(task["name"].rsplit(".", 1)[-1] for task in tasks) or "-")
    if not stack["workers"]:
        problems.append("workers: none answered")
    return [counts, letters, workers]


def image_problem(worker: str) -> str | None:
    """A reload never installs dependencies: say when the image predates the lock."""
    built_from = subprocess.run(
        ["docker", "exec", worker, "cat", "/app/requirements.lock"], capture_output=True, text=True, check=False
    )
    if built_from.returncode == 0 and built_from.stdout != LOCK.read_text():
        return "image: built from an older backend/requirements.lock; run make dev (or make up) to rebuild"
    return None


def main() -> int:
    project = os.environ.get("COMPOSE_PROJECT_NAME")
    if not project:
        print("status: set COMPOSE_PROJECT_NAME", file=sys.stderr)
        return 2
    # Captured (CI, a pipe): wide enough that nothing is cut.
    console = Console(width=None if sys.stdout.isatty() else 200)
    problems: list[str] = []
    services = active_services(compose_command())
    table, running = services_table(project, services, problems)
    tables = [table]
    try:
        tables.append(beat_table(running.get("beat", []), problems))
    except RuntimeError as error:
        problems.append(f"beat: cannot report: {error}")
    if "worker" not in running:
        problems.append("outbox: no running worker to report from")
    else:
        if problem := image_problem(running["worker"][0]):
            problems.append(problem)
        try:
            tables += outbox_tables(report(running["worker"][0], "stack"), problems)
        except RuntimeError as error:
            problems.append(f"outbox: cannot report: {error}")
    for table in tables:
        console.print(table)
    mode = code_mode(project)
    console.print(f"Mode: {mode} ({'live code from backend/src' if mode == 'dev' else 'the code in the image'})")
    console.print(f"[dim]{project} at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC[/]")
    if problems:
        console.print("[bold red]Problems:[/]")
        for problem in problems:
            console.print(f"  - {problem}", markup=False, soft_wrap=True)
        return 1
    console.print("[bold green]No problems.[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
