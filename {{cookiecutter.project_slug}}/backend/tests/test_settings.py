"""Settings fail fast, naming the variable and the rule."""

import pytest

from {{ cookiecutter.package_name }}.settings import FlowerSettings, Settings, SettingsError, load

GOOD = {
    "DATABASE_URL": "postgresql://app:s3cret-pass@db:5432/app",
    "CELERY_BROKER_URL": "redis://redis:6379/0",
    "CELERY_RESULT_BACKEND": "redis://redis:6379/1",
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
    ],
)
def test_bad_values_are_rejected_with_the_variable_named(env, name, value, message):
    env.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load(Settings)
    assert str(raised.value).startswith("Invalid configuration: ")
    assert message in str(raised.value)


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
