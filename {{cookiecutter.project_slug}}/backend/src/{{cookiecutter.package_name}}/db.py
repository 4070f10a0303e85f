"""The database engine and sessions for this process."""

from functools import cache

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from .settings import get_settings


@cache
def session_factory() -> sessionmaker[Session]:
    # Created lazily, so each forked worker child opens its own connections.
    engine = create_engine(get_settings().sqlalchemy_url, pool_pre_ping=True)
    return sessionmaker(engine, expire_on_commit=False)


def new_session() -> Session:
    return session_factory()()
