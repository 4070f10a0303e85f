"""The database engine and sessions for this process."""

import time
from functools import cache

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .settings import get_settings


@cache
def session_factory() -> sessionmaker[Session]:
    # Created lazily, so each forked worker child opens its own connections.
    # connect_timeout: a database that is down is an error within 2 s, not a hang.
    engine = create_engine(get_settings().sqlalchemy_url, pool_pre_ping=True, connect_args={"connect_timeout": 2})
    return sessionmaker(engine, expire_on_commit=False)


def new_session() -> Session:
    return session_factory()()


def connect_when_ready(engine: Engine, *, timeout: float = 120) -> Connection:
    """Connect, retrying while PostgreSQL starts (or initialises its volume),
    so the migrations need not wait for its health check."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return engine.connect()
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
