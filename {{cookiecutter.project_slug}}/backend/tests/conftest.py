"""Real PostgreSQL and Redis through testcontainers; no mocks, no eager mode.

Images come from POSTGRES_IMAGE and REDIS_IMAGE, as in compose.yaml. Ryuk,
testcontainers' reaper, is turned off when its image cannot be had (offline);
the fixtures below stop their containers themselves either way.
"""

import os
import socket
import time
from pathlib import Path

import docker
import docker.errors
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker
from testcontainers.community.postgres import PostgresContainer
from testcontainers.community.redis import RedisContainer
from testcontainers.core.config import testcontainers_config

from {{ cookiecutter.package_name }} import relay, settings

BACKEND = Path(__file__).resolve().parents[1]


def ryuk_available() -> bool:
    client = docker.from_env()
    try:
        client.images.get(testcontainers_config.ryuk_image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(testcontainers_config.ryuk_image)
        except docker.errors.APIError:
            return False
    return True


if not ryuk_available():
    testcontainers_config.ryuk_disabled = True


@pytest.fixture(scope="session")
def postgres_url():
    image = os.environ.get("POSTGRES_IMAGE", "postgres:17-alpine")
    credentials = {"username": "test", "password": "test", "dbname": "test"}
    with PostgresContainer(image, driver="psycopg", **credentials) as pg:
        yield pg.get_connection_url()


REDIS_IMAGE = os.environ.get("REDIS_IMAGE", "redis:8.0-alpine")
# As in the stack, Redis requires a password.
REDIS_PASSWORD = "test-redis-password"  # noqa: S105 - a throwaway test container


@pytest.fixture(scope="session")
def redis_url():
    with RedisContainer(REDIS_IMAGE, password=REDIS_PASSWORD) as redis:
        host = redis.get_container_host_ip()
        port = redis.get_exposed_port(6379)
        yield f"redis://:{REDIS_PASSWORD}@{host}:{port}"


@pytest.fixture(scope="session")
def app_env(postgres_url, redis_url):
    """The environment the containers get, pointing at the test services."""
    env = {
        "DATABASE_URL": postgres_url,
        "CELERY_BROKER_URL": f"{redis_url}/0",
        "CELERY_RESULT_BACKEND": f"{redis_url}/1",
        # No metrics server in the test process; test_metrics.py reads the collectors.
        "METRICS_PORT": "0",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    settings.get_settings.cache_clear()
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    settings.get_settings.cache_clear()


@pytest.fixture
def dead_broker(app_env, monkeypatch):
    """CELERY_BROKER_URL at a port where nothing listens (Celery prefers the
    variable to its configuration). Cached settings and clients are dropped
    on both sides, so no other test sees it."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0")
    settings.get_settings.cache_clear()
    relay.flags.cache_clear()
    yield port
    monkeypatch.undo()
    settings.get_settings.cache_clear()
    relay.flags.cache_clear()


@pytest.fixture(scope="session")
def engine(app_env):
    """The schema comes from the real migrations, as in the stack."""
    command.upgrade(Config(str(BACKEND / "alembic.ini")), "head")
    engine = create_engine(app_env["DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture
def new_session(engine):
    """A session factory on an emptied database."""
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE order_confirmations, outbox_event_history, outbox_events, orders"))
    return sessionmaker(engine, expire_on_commit=False)


def wait_for(condition, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)
    return result
