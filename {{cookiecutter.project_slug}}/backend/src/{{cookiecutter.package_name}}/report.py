"""What `make status` shows, collected inside the containers as JSON: beat's
send record in each beat, the outbox and the workers from a worker."""

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from . import dead_letters, outbox, probes
from .models import PENDING, PROCESSED, OutboxEvent

# A dead letter is new for this long: `make status` fails until then.
NEW_DEAD_LETTER_AGE = timedelta(hours=1)
# The backlog is growing when its oldest event waited this many sweeps.
BACKLOG_SWEEPS = 3


def beat() -> dict:
    """This beat's record (scheduler.py writes it) and its health verdict."""
    record = probes.read_record(probes.BEAT_RECORD)
    return {"record": record, "problem": probes.beat_problem(record, time.time())}


def stack() -> dict:
    from .celery_app import app
    from .db import new_session
    from .settings import get_settings

    now = datetime.now(UTC)
    with new_session() as session:
        oldest_pending = session.scalar(select(func.min(OutboxEvent.created_at)).where(OutboxEvent.status == PENDING))
        processed_last_minute = session.scalar(
            select(func.count()).where(
                OutboxEvent.status == PROCESSED, OutboxEvent.processed_at > func.now() - timedelta(minutes=1)
            )
        )
        newest_dead = dead_letters.newest(session, 5)
        counts = outbox.count_by_status(session)
    replies = app.control.inspect(timeout=2).active() or {}
    return {
        "outbox": {
            "counts": counts,
            "oldest_pending_age": (now - oldest_pending).total_seconds() if oldest_pending else None,
            "backlog_age_limit": BACKLOG_SWEEPS * get_settings().outbox_interval_seconds,
            "processed_last_minute": processed_last_minute,
        },
        "dead_letters": [
            {
                "id": str(event.id),
                "event_type": event.event_type,
                "attempts": event.attempts,
                "failed_at": event.failed_at.timestamp() if event.failed_at else None,
                "new": event.failed_at is not None and now - event.failed_at < NEW_DEAD_LETTER_AGE,
                "error": event.last_error,
            }
            for event in newest_dead
        ],
        "workers": {
            node: [{"name": task["name"], "id": task["id"], "started": task.get("time_start")} for task in tasks]
            for node, tasks in sorted(replies.items())
        },
    }
