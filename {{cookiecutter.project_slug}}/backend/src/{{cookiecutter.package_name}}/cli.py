"""Command line: emit sample events, run a periodic task now, check health."""

import sys

import click

from . import health, probes


@click.group()
def main() -> None:
    """Operate the {{ cookiecutter.project_name }} stack."""


@main.command()
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=1), help="Orders to write.")
def emit(count: int) -> None:
    """Write COUNT sample orders, each with its outbox event, in one transaction."""
    from .db import new_session
    from .orders import create_orders

    with new_session() as session:
        create_orders(session, count)
        session.commit()
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


@main.command(name="health")
@click.argument("component", type=click.Choice(["beat", "worker", "flower"]))
def check_health(component: str) -> None:
    """Exit 0 if COMPONENT in this container is healthy, else 1 with the reason."""
    if component == "beat":
        problem = probes.CHECKS["beat"]()
    elif component == "worker":
        from .celery_app import app

        problem = health.check_worker(app)
    else:
        problem = health.check_flower()
    if problem:
        click.echo(f"{component}: unhealthy: {problem}", err=True)
        sys.exit(1)
    click.echo(f"{component}: healthy")
