"""Dev mode's entrypoint (compose.dev.yaml): run the service's command, and
restart it when a Python file under /app/src changes.

watchfiles watches; this only decides what a restart is. It is what
`docker stop` does to the service: SIGTERM (the worker's soft shutdown, beat's
schedule sync), a wait, then the command again. A command that exits, on an
import error say, is not restarted until the next change, so the container
stays up and its health check says the service is down.
"""

import signal
import subprocess
import sys
import threading

import click
from watchfiles import PythonFilter, watch

WATCHED = "/app/src"
# Longer than the worker's soft shutdown (50 s), shorter than the services'
# stop_grace_period (60 s).
STOP_TIMEOUT = 55


def log(message: str) -> None:
    print(f"reloader: {message}", file=sys.stderr, flush=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"still running {STOP_TIMEOUT}s after SIGTERM; killing it")
            process.kill()
            process.wait()


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--poll", type=bool, default=False, help="Poll for changes, where file events do not cross the mount.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def main(poll: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND; restart it on each change to a Python file under /app/src."""
    stopping = threading.Event()
    # `docker stop` reaches this process (tini forwards it): end the watch.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    process, exit_logged = subprocess.Popen(command), False
    # One restart per burst: watchfiles yields a burst of saves as one set.
    # An empty set is a timeout: a second to notice that the command exited.
    changes_seen = watch(
        WATCHED,
        watch_filter=PythonFilter(),
        force_polling=poll,
        stop_event=stopping,
        rust_timeout=1000,
        yield_on_timeout=True,
    )
    for changes in changes_seen:
        if changes:
            paths = sorted({path for _, path in changes})
            log(f"restarting: {len(paths)} file(s) changed: {', '.join(paths)}")
            stop(process)
            process, exit_logged = subprocess.Popen(command), False
        elif process.poll() is not None and not exit_logged:
            log(f"the command exited with {process.returncode}; it starts again on the next change")
            exit_logged = True
    stop(process)


if __name__ == "__main__":
    main()
