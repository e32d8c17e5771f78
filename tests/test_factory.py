"""The app factory and its configuration."""

import pytest

from app import create_app
from app.config import DEFAULT_SECRET_KEY


def test_config_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("OUTBOX_RETRY_BASE_SECONDS", "0.5")
    monkeypatch.setenv("COUPON_REALIZER_URL", "http://realizer.example:9000")
    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/x.db"
    assert app.config["OUTBOX_RETRY_BASE_SECONDS"] == 0.5
    assert app.config["COUPON_REALIZER_URL"] == "http://realizer.example:9000"
    assert app.config["RATELIMIT_ENABLED"] is False


def test_explicit_config_overrides_environment(monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:", "LOG_LEVEL": "ERROR"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///:memory:"


def test_default_database_is_sqlite_under_instance(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    with app.app_context():
        from app.extensions import db

        assert db.engine.url.drivername == "sqlite"
        assert db.engine.url.database.startswith(app.instance_path)
        db.engine.dispose()


@pytest.mark.parametrize("secret", [None, "", DEFAULT_SECRET_KEY])
def test_production_refuses_missing_or_default_secret(monkeypatch, secret):
    monkeypatch.setenv("APP_ENV", "production")
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(SystemExit) as excinfo:
        create_app()
    message = str(excinfo.value)
    assert "SECRET_KEY" in message and "\n" not in message


def test_production_starts_with_a_real_secret(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-long-random-production-secret-0123456789")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://coupons.example.com")
    # PostgreSQL (never connected to here): production refuses SQLite.
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/x"})
    assert app.config["APP_ENV"] == "production"
    assert app.config["RATELIMIT_ENABLED"] is True
    # /metrics is off the public listener in production unless asked for.
    assert app.config["METRICS_ENABLED"] is False
    assert app.test_client().get("/metrics").status_code == 404


def test_production_refuses_to_start_without_a_public_base_url(monkeypatch):
    """Links would otherwise be built from the request's Host header."""
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-long-random-production-secret-0123456789")
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    with pytest.raises(SystemExit) as excinfo:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"})
    assert "PUBLIC_BASE_URL" in str(excinfo.value)


def test_the_clock_moves_only_outside_production(monkeypatch):
    from app.database import utcnow, wall_clock

    monkeypatch.setenv("CLOCK_OFFSET_SECONDS", "3600")
    try:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"})
        moved = (utcnow() - wall_clock()).total_seconds()
        assert 3599 < moved < 3601
    finally:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:", "CLOCK_OFFSET_SECONDS": 0})
    assert abs((utcnow() - wall_clock()).total_seconds()) < 1
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-long-random-production-secret-0123456789")
    with pytest.raises(SystemExit) as excinfo:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"})
    assert "CLOCK_OFFSET_SECONDS" in str(excinfo.value)


@pytest.mark.parametrize(
    "secret",
    ["plain-secret", "whsec_not base64!", "whsec_" + "QUJD"],  # short: 3 bytes
)
def test_events_secret_must_be_a_standard_webhooks_secret(monkeypatch, secret):
    monkeypatch.setenv("EVENTS_SECRET", secret)
    with pytest.raises(SystemExit) as excinfo:
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"})
    assert "EVENTS_SECRET" in str(excinfo.value) and "new-secret" in str(excinfo.value)


def test_events_new_secret_prints_a_usable_secret(monkeypatch):
    from app.engine.signatures import secret_key

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"})
    printed = app.test_cli_runner().invoke(args=["events", "new-secret"]).output.strip()
    assert printed.startswith("whsec_") and len(secret_key(printed)) == 32
    monkeypatch.setenv("EVENTS_SECRET", printed)
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///:memory:"}).config["EVENTS_SECRET"]


@pytest.mark.parametrize(
    "env, storage, workers, refused",
    [
        ("production", "memory://", 4, True),
        ("production", "memory://", 1, False),
        ("production", "redis://127.0.0.1:6379/0", 4, False),
        ("development", "memory://", 4, False),
    ],
)
def test_production_rate_limits_must_be_shared(env, storage, workers, refused):
    from app.config import rate_limit_problem

    settings = {"APP_ENV": env, "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": storage}
    assert bool(rate_limit_problem(settings, workers)) is refused
    assert rate_limit_problem({**settings, "RATELIMIT_ENABLED": False}, workers) is None


def test_postgres_engines_fail_fast_and_hide_parameters():
    from app.config import engine_options

    pg = engine_options("postgresql+psycopg://u@h/db")
    assert pg["connect_args"] == {"connect_timeout": 5} and pg["hide_parameters"] is True
    assert "connect_args" not in engine_options("sqlite:///x.db")
