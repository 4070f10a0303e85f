"""Command line: emit sample events, run a periodic task now, replay dead letters, start the worker, check health."""

import os
import sys
import time

import click

from . import probes


@click.group()
def main() -> None:
    """Operate the {{ cookiecutter.project_name }} stack."""


# A large emit commits in chunks this big, so that its progress can show.
EMIT_CHUNK = 5000


@main.command()
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=1), help="Orders to write.")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Orders per second, one transaction each, as an application writes them. Default: {EMIT_CHUNK} a commit.",
)
def emit(count: int, rate: float | None) -> None:
    """Write COUNT sample orders, each with its outbox event, then nudge the relay."""
    from .db import new_session
    from .orders import create_orders
    from .relay import nudge

    chunk = 1 if rate is not None else EMIT_CHUNK
    sizes = [min(chunk, count - start) for start in range(0, count, chunk)]
    started = time.monotonic()
    written = 0
    for size in sizes:
        with new_session() as session:
            create_orders(session, size)
            session.commit()
        nudge()
        written += size
        # Progress on stderr, a line per EMIT_CHUNK: it shows through `docker exec` without a terminal too.
        if count > EMIT_CHUNK and (written % EMIT_CHUNK == 0 or written == count):
            click.echo(f"Emitting: {written}/{count} ({written / count:.0%})", err=True)
        if rate is not None:
            time.sleep(max(0.0, started + written / rate - time.monotonic()))
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


@main.command(name="dead-letters")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Show at most this many.")
def list_dead_letters(limit: int) -> None:
    """List dead-lettered events, the most recently failed first, with their last error."""
    from . import dead_letters
    from .db import new_session

    with new_session() as session:
        events = dead_letters.newest(session, limit)
    for event in events:
        failed_at = f"{event.failed_at:%Y-%m-%d %H:%M:%S}" if event.failed_at else "-"
        click.echo(f"{event.id}  {event.event_type}  {event.attempts} attempts  failed {failed_at}  {event.last_error}")
    click.echo(f"{len(events)} dead letter(s) shown.")


@main.command()
@click.argument("event_ids", nargs=-1, type=click.UUID)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def replay(event_ids: tuple, replay_all: bool) -> None:
    """Put dead letters EVENT_IDS (or --all) back to pending, attempts reset; their errors are kept."""
    from . import dead_letters
    from .db import new_session
    from .relay import nudge

    if bool(event_ids) == replay_all:
        raise click.UsageError("give the event ids to replay, or --all")
    with new_session() as session:
        try:
            replayed = dead_letters.replay(session, None if replay_all else list(event_ids))
        except LookupError as error:
            raise click.ClickException(str(error)) from None
        session.commit()
    if replayed:
        nudge()
    click.echo(f"Replayed {len(replayed)} dead letter(s).")


@main.command()
def shell() -> None:
    """A Python shell with the app, the models and a database session ready (`make shell`)."""
    import code

    import sqlalchemy

    from . import models
    from .celery_app import app
    from .db import new_session

    with new_session() as session:
        ready = {"app": app, "session": session, "models": models, "sa": sqlalchemy}
        banner = f"{{ cookiecutter.project_name }} shell: {', '.join(ready)} are ready; session is not committed for you."
        code.interact(banner=banner, local=ready, exitmsg="")


@main.command(hidden=True)
@click.argument("part", type=click.Choice(["beat", "stack"]))
def report(part: str) -> None:
    """JSON for `make status`: this beat's send record, or the outbox and workers."""
    import json

    from . import report as reports

    click.echo(json.dumps(getattr(reports, part)()))


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
