"""Health checks that need Celery; each returns a problem, or None. Beat's
needs nothing but its record, and lives in `probes`."""

import socket
import urllib.error
import urllib.request

from celery import Celery


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
