"""Settings fail fast, naming the variable and the rule."""

import pytest

from {{ cookiecutter.package_name }}.settings import FlowerSettings, Settings, SettingsError, load

GOOD = {
    "DATABASE_URL": "postgresql://app:s3cret-pass@db:5432/app",
    "CELERY_BROKER_URL": "redis://:r3dis-pass@redis:6379/0",
    "CELERY_RESULT_BACKEND": "redis://:r3dis-pass@redis:6379/1",
}


@pytest.fixture
def env(monkeypatch):
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_good_environment_loads_with_defaults(env):
    settings = load(Settings)
    assert settings.outbox_interval_seconds == {{ cookiecutter.outbox_interval_seconds }}
    assert settings.outbox_retention_days == {{ cookiecutter.outbox_retention_days }}
    assert settings.cleanup_hour_utc == {{ cookiecutter.cleanup_hour_utc }}
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OUTBOX_INTERVAL_SECONDS", "0", "OUTBOX_INTERVAL_SECONDS='0': Input should be greater than 0"),
        ("OUTBOX_INTERVAL_SECONDS", "soon", "OUTBOX_INTERVAL_SECONDS='soon'"),
        ("OUTBOX_MAX_ATTEMPTS", "-1", "OUTBOX_MAX_ATTEMPTS='-1'"),
        ("OUTBOX_RETENTION_DAYS", "0", "OUTBOX_RETENTION_DAYS='0'"),
        ("CLEANUP_HOUR_UTC", "24", "CLEANUP_HOUR_UTC='24': Input should be less than or equal to 23"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD'"),
        ("TASK_SOFT_TIME_LIMIT", "120", "TASK_SOFT_TIME_LIMIT must be below TASK_TIME_LIMIT"),
        ("BROKER_VISIBILITY_TIMEOUT", "60", "BROKER_VISIBILITY_TIMEOUT must exceed TASK_TIME_LIMIT"),
        ("OUTBOX_LEASE_SECONDS", "30", "OUTBOX_LEASE_SECONDS must be at least TASK_TIME_LIMIT"),
        ("RECONCILE_CRONTAB", "every hour", "RECONCILE_CRONTAB='every hour': Value error, must be five crontab fields"),
        ("RECONCILE_CRONTAB", "0 25 * * *", "RECONCILE_CRONTAB='0 25 * * *': Value error, must be five crontab fields"),
        ("WORKER_SOFT_SHUTDOWN_TIMEOUT", "0", "WORKER_SOFT_SHUTDOWN_TIMEOUT='0'"),
    ],
)
def test_bad_values_are_rejected_with_the_variable_named(env, name, value, message):
    env.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load(Settings)
    assert str(raised.value).startswith("Invalid configuration: ")
    assert message in str(raised.value)


def test_the_lease_defaults_to_the_task_time_limit(env):
    env.setenv("TASK_TIME_LIMIT", "120")
    assert load(Settings).lease_seconds == 120
    env.setenv("OUTBOX_LEASE_SECONDS", "300")
    assert load(Settings).lease_seconds == 300


def test_an_empty_variable_means_the_default(env):
    """Compose passes every tunable as ${VAR:-}: empty when it is not set."""
    env.setenv("OUTBOX_BATCH_SIZE", "")
    env.setenv("OUTBOX_LEASE_SECONDS", "")
    settings = load(Settings)
    assert settings.outbox_batch_size == 100
    assert settings.lease_seconds == settings.task_time_limit


@pytest.mark.parametrize("name", ["CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"])
def test_a_redis_url_without_a_password_is_refused(env, name):
    env.setenv(name, "redis://redis:6379/0")
    with pytest.raises(SettingsError, match=f"{name}: Value error, must carry the Redis password"):
        load(Settings)


def test_no_settings_error_echoes_a_password(env):
    env.setenv("CELERY_BROKER_URL", "http://:s3cret-redis@redis:6379/0")
    env.setenv("DATABASE_URL", "mysql://app:s3cret-pass@db/app")
    env.setenv("FLOWER_BASIC_AUTH", "admin:")
    for kind in (Settings, FlowerSettings):
        with pytest.raises(SettingsError) as raised:
            load(kind)
        assert "s3cret" not in str(raised.value)


def test_missing_database_url_is_named(env):
    env.delenv("DATABASE_URL")
    with pytest.raises(SettingsError, match="DATABASE_URL: Field required"):
        load(Settings)


def test_a_bad_url_is_named_but_its_password_never_printed(env):
    env.setenv("DATABASE_URL", "mysql://app:s3cret-pass@db/app")
    with pytest.raises(SettingsError) as raised:
        load(Settings)
    assert "DATABASE_URL" in str(raised.value)
    assert "s3cret-pass" not in str(raised.value)


@pytest.mark.parametrize("auth", ["admin:", "admin:short", ":longenoughpassword", "no-colon-at-all"])
def test_flower_refuses_to_start_without_a_real_password(env, auth):
    env.setenv("FLOWER_BASIC_AUTH", auth)
    with pytest.raises(SettingsError, match="FLOWER_BASIC_AUTH: Value error, must be USER:PASSWORD"):
        load(FlowerSettings)


def test_flower_needs_no_database(env):
    env.delenv("DATABASE_URL")
    env.setenv("FLOWER_BASIC_AUTH", "admin:a-long-password")
    assert load(FlowerSettings).flower_basic_auth == "admin:a-long-password"
