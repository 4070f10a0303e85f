"""All configuration, read from the environment in one place.

Nothing else in the package reads ``os.environ``. Bad values stop the process
at start with one line per problem, naming the variable.
"""

import os
from functools import cache
from typing import Annotated, Literal, TypeVar
from urllib.parse import urlsplit

from celery.schedules import crontab
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PositiveSeconds = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
SECRET_BEARING = ("url", "backend", "auth", "password", "token")
SECRETS_DIR = "/run/secrets"


class SettingsError(SystemExit):
    """Raised with a readable message when the environment is invalid."""


class BrokerSettings(BaseSettings):
    """What every process needs: the broker. Flower needs nothing more."""

    # Empty means unset: compose passes every tunable as ${VAR:-}, so the
    # defaults live here and nowhere else. Under Swarm the secrets are files
    # in /run/secrets, named like the fields, and their variables are empty.
    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        env_ignore_empty=True,
        secrets_dir=SECRETS_DIR if os.path.isdir(SECRETS_DIR) else None,
    )

    celery_broker_url: str = Field(pattern=r"^rediss?://")
    celery_result_backend: str = Field(pattern=r"^rediss?://")
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    # Seconds an idle consumer waits on Redis before it polls again. A worker's
    # stop also waits for that poll to end, so dev mode sets 1 (compose.dev.yaml).
    broker_polling_interval: PositiveSeconds = 10

    @field_validator("celery_broker_url", "celery_result_backend")
    @classmethod
    def require_redis_password(cls, value: str) -> str:
        # Redis is reachable by every container on the network: never unauthenticated.
        if not urlsplit(value).password:
            raise ValueError("must carry the Redis password: redis://:PASSWORD@host:port/db")
        return value


class FlowerSettings(BrokerSettings):
    """Flower reads FLOWER_BASIC_AUTH itself; this refuses to start it open."""

    flower_basic_auth: str

    @field_validator("flower_basic_auth")
    @classmethod
    def require_password(cls, value: str) -> str:
        user, _, password = value.partition(":")
        if not user or len(password) < 8:
            raise ValueError("must be USER:PASSWORD with a password of at least 8 characters")
        return value


class Settings(BrokerSettings):
    """Settings for the worker, beat, migrations and the CLI."""

    database_url: str = Field(pattern=r"^postgresql(\+psycopg)?://")

    outbox_interval_seconds: PositiveSeconds = {{ cookiecutter.outbox_interval_seconds }}
    outbox_batch_size: PositiveInt = 100
    outbox_max_attempts: PositiveInt = 5
    # Unset: TASK_TIME_LIMIT. See `lease_seconds`.
    outbox_lease_seconds: PositiveInt | None = None
    outbox_retention_days: PositiveInt = {{ cookiecutter.outbox_retention_days }}
    cleanup_hour_utc: int = Field({{ cookiecutter.cleanup_hour_utc }}, ge=0, le=23)
    reconcile_crontab: str = "0 * * * *"

    task_soft_time_limit: PositiveInt = 60
    task_time_limit: PositiveInt = 90
    broker_visibility_timeout: PositiveInt = 3600
    # On `docker stop`, running tasks get this long to finish before they are
    # cancelled and requeued; compose's stop_grace_period must be longer.
    worker_soft_shutdown_timeout: PositiveSeconds = 50

    # The API's bearer token for POST /tasks/{key}/run; unset refuses every call.
    api_token: str | None = None

    # Prometheus metrics of beat and the worker (metrics.py); 0 turns them off.
    metrics_port: int = Field(9808, ge=0, le=65535)

    # file: a schedule file on beat's volume, one beat. redbeat: the schedule
    # in Redis, two beats, one standing by (redbeat_scheduler.py).
    beat_scheduler: Literal["file", "redbeat"] = "{{ cookiecutter.beat_scheduler }}"
    beat_lock_timeout: PositiveInt = 15
    beat_heartbeat_max_age: PositiveSeconds = 30
    # Unset: twice the shortest interval in the schedule, at most 60 s.
    beat_send_failure_grace: PositiveSeconds | None = None

    @field_validator("reconcile_crontab")
    @classmethod
    def check_crontab(cls, value: str) -> str:
        try:
            crontab.from_string(value)
        except Exception as exc:  # noqa: BLE001 - celery raises ValueError or its own ParseException
            raise ValueError(f"must be five crontab fields, minute to day of week: {exc}") from None
        return value

    @model_validator(mode="after")
    def check_time_limits(self) -> "Settings":
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError("TASK_SOFT_TIME_LIMIT must be below TASK_TIME_LIMIT")
        if self.broker_visibility_timeout <= self.task_time_limit:
            raise ValueError(
                "BROKER_VISIBILITY_TIMEOUT must exceed TASK_TIME_LIMIT, "
                "or Redis redelivers tasks that are still running"
            )
        if self.outbox_lease_seconds is not None and self.outbox_lease_seconds < self.task_time_limit:
            raise ValueError(
                "OUTBOX_LEASE_SECONDS must be at least TASK_TIME_LIMIT, "
                "or a sweep that is still running loses its events to another"
            )
        return self

    @property
    def drain_budget_seconds(self) -> float:
        """How long one sweep claims batch after batch: half the soft time
        limit, so the batch in hand always finishes before it."""
        return self.task_soft_time_limit / 2

    @property
    def lease_seconds(self) -> int:
        """How long a claimed event stays leased. A sweep is killed at
        TASK_TIME_LIMIT, so a lease that long never expires under a sweep that
        is still running, and a crashed sweep's events come back right after."""
        return self.outbox_lease_seconds or self.task_time_limit

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named."""
        return self.database_url.replace("postgresql://", "postgresql+psycopg://", 1)


AnySettings = TypeVar("AnySettings", bound=BrokerSettings)


def load(kind: type[AnySettings], **overrides: object) -> AnySettings:
    """Build settings from the environment, or exit with a clear message."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        problems = "; ".join(describe(error) for error in exc.errors())
        raise SettingsError(f"Invalid configuration: {problems}") from None


def describe(error: dict) -> str:
    name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
    given = error.get("input")
    # URLs carry passwords: name the variable, never echo its value.
    hidden = isinstance(given, dict) or name.lower().endswith(SECRET_BEARING)
    shown = "" if hidden else f"={given!r}"
    return f"{name}{shown}: {error['msg']}"


@cache
def get_settings() -> Settings:
    return load(Settings)
