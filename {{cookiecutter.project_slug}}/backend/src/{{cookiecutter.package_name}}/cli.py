"""Command line: emit sample events, run a periodic task now, start the worker, check health."""

import os
import sys
import time

import click

from . import probes


@click.group()
def main() -> None:
    """Operate the {{ cookiecutter.project_name }} stack."""


@main.command()
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=1), help="Orders to write.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Orders per second, one transaction each, as an application writes them. Default: all in one.",
)
def emit(count: int, rate: float | None) -> None:
    """Write COUNT sample orders, each with its outbox event, then nudge the relay."""
    from .db import new_session
    from .orders import create_orders
    from .relay import nudge

    started = time.monotonic()
    for done, size in enumerate([count] if rate is None else [1] * count, start=1):
        with new_session() as session:
            create_orders(session, size)
            session.commit()
        nudge()
        if rate is not None:
            time.sleep(max(0.0, started + done / rate - time.monotonic()))
    click.echo(f"Emitted {count} order(s) with outbox events.")


@main.command()
@click.argument("name")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the result.")
def run(name: str, timeout: float) -> None:
    """Send periodic task NAME (a beat schedule key) to the worker now and wait for it."""
    from .celery_app import app

    schedule = app.conf.beat_schedule
    if name not in schedule:
        raise click.BadParameter(f"{name!r} is not a periodic task; choose from {', '.join(sorted(schedule))}")
    result = app.send_task(schedule[name]["task"])
    click.echo(f"{name}: {result.get(timeout=timeout)}")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(context: click.Context) -> None:
    """Become `celery worker`, named after this container (nodename.py); other options go to it."""
    from .nodename import worker_nodename

    command = ["celery", "--app={{ cookiecutter.package_name }}.celery_app:app", "worker"]
    os.execvp(command[0], [*command, f"--hostname={worker_nodename()}", *context.args])  # noqa: S606 - exec, on purpose


@main.command(name="health")
@click.argument("component", type=click.Choice(sorted(probes.CHECKS)))
def check_health(component: str) -> None:
    """Exit 0 if COMPONENT in this container is healthy, else 1 with the reason."""
    sys.exit(probes.main([component]))
