"""The database engine and sessions for this process."""

from functools import cache

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .settings import get_settings


@cache
def get_engine() -> Engine:
    # Created lazily, so each forked worker child opens its own connections.
    return create_engine(get_settings().sqlalchemy_url, pool_pre_ping=True)


def new_session() -> Session:
    return sessionmaker(get_engine(), expire_on_commit=False)()
