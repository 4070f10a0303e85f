"""Health checks for the containers; each returns a problem, or None."""

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from celery import Celery

from .settings import Settings


def check_beat(settings: Settings) -> str | None:
    """Beat is healthy while its scheduler keeps touching the heartbeat."""
    heartbeat = Path(settings.beat_heartbeat_file)
    try:
        age = time.time() - heartbeat.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat at {heartbeat}: the scheduler has not ticked yet"
    if age > settings.beat_heartbeat_max_age:
        return f"last heartbeat {age:.0f}s ago (limit {settings.beat_heartbeat_max_age:.0f}s): beat is not ticking"
    return None


def check_worker(app: Celery, timeout: float = 5.0) -> str | None:
    """Ping only this container's own worker node, not any worker."""
    node = f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=timeout)
    if not any(node in reply for reply in replies):
        return f"{node} did not answer a ping within {timeout:.0f}s"
    return None


def check_flower(url: str = "http://127.0.0.1:5555/healthcheck") -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - fixed local URL
            body = response.read()
    except (OSError, urllib.error.URLError) as exc:
        return f"{url} failed: {exc}"
    return None if body == b"OK" else f"{url} answered {body!r}"
