"""What routes get injected: a database session per request."""

from collections.abc import Iterator

from sqlalchemy.orm import Session

from ..db import new_session


def session() -> Iterator[Session]:
    with new_session() as opened:
        yield opened
