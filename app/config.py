"""Configuration read from the environment at app-creation time."""

from __future__ import annotations

import os

from app import json_text

DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production"
DEVELOPMENT_BASE_URL = "http://localhost:5000"


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


APP_ENVS = ("development", "testing", "production")


def _list(name: str) -> list[str]:
    """A comma-separated variable as its non-empty items."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def from_environment() -> dict:
    """Build the settings dict; called by create_app so tests can set the env first."""
    app_env = os.environ.get("APP_ENV", "development")
    cors = os.environ.get("CORS_ORIGINS")
    return {
        "APP_ENV": app_env,
        "TESTING": app_env == "testing",
        "SECRET_KEY": os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY),
        # Earlier keys, still accepted when verifying tokens while clients move to the new
        # one (Flask 3.1's name); new tokens are signed with SECRET_KEY only.
        "SECRET_KEY_FALLBACKS": _list("SECRET_KEY_FALLBACKS"),
        # Origins whose pages may call the API from a browser: "*" in development, none
        # in production unless listed.
        "CORS_ORIGINS": _list("CORS_ORIGINS")
        if cors is not None
        else ([] if app_env == "production" else ["*"]),
        # Relative SQLite paths are resolved by Flask-SQLAlchemy inside instance/.
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL", "sqlite:///coupons.db"),
        # A streaming replica for reads that decide nothing written (validation, the
        # promo check, cart validation); unset, everything reads the primary.
        "DATABASE_READ_URL": os.environ.get("DATABASE_READ_URL") or None,
        "EMAIL_VERIFIER_URL": os.environ.get("EMAIL_VERIFIER_URL", "http://127.0.0.1:5001"),
        "COUPON_REALIZER_URL": os.environ.get("COUPON_REALIZER_URL", "http://127.0.0.1:5002"),
        "EVENTS_URL": os.environ.get("EVENTS_URL") or None,
        "EVENTS_SECRET": os.environ.get("EVENTS_SECRET") or None,
        # The base of every link the service mails or returns; never the request's Host.
        # Required in production; elsewhere the development server's address.
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL")
        or (None if app_env == "production" else DEVELOPMENT_BASE_URL),
        "RATELIMIT_ENABLED": _bool(os.environ.get("RATELIMIT_ENABLED"), app_env != "testing"),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Budgets (see app/ratelimits.py): code lookups by anonymous callers and customers;
        # by each server client; failed credentials; signups per client; and a per-address
        # ceiling on signups and logins.
        "RATELIMIT_GUESSING": os.environ.get("RATELIMIT_GUESSING", "60/minute"),
        "RATELIMIT_CLIENT": os.environ.get("RATELIMIT_CLIENT", "300000/minute"),
        "RATELIMIT_AUTH": os.environ.get("RATELIMIT_AUTH", "20/minute"),
        "RATELIMIT_SIGNUP": os.environ.get("RATELIMIT_SIGNUP", "60/minute"),
        "RATELIMIT_FLOOD": os.environ.get("RATELIMIT_FLOOD", "600/minute"),
        "OUTBOX_RETRY_BASE_SECONDS": _float("OUTBOX_RETRY_BASE_SECONDS", 2.0),
        # A message is retried, backing off up to OUTBOX_RETRY_MAX_DELAY_SECONDS between
        # attempts, for OUTBOX_RETRY_FOR_SECONDS (3 days, as Stripe) before it is dead:
        # time, not a count, so an hour's outage downstream loses nothing.
        # OUTBOX_MAX_ATTEMPTS (0: no limit) can end it sooner.
        "OUTBOX_RETRY_MAX_DELAY_SECONDS": _float("OUTBOX_RETRY_MAX_DELAY_SECONDS", 3600.0),
        "OUTBOX_RETRY_FOR_SECONDS": _float("OUTBOX_RETRY_FOR_SECONDS", 259_200.0),
        "OUTBOX_MAX_ATTEMPTS": _int("OUTBOX_MAX_ATTEMPTS", 0),
        "OUTBOX_POLL_SECONDS": _float("OUTBOX_POLL_SECONDS", 1.0),
        # Webhook endpoints may be private addresses (the sandbox's mocks); never in
        # production, where endpoints must also be https.
        "WEBHOOK_ALLOW_PRIVATE": _bool(os.environ.get("WEBHOOK_ALLOW_PRIVATE"), False),
        "OUTBOX_HTTP_TIMEOUT_SECONDS": _float("OUTBOX_HTTP_TIMEOUT_SECONDS", 5.0),
        "OUTBOX_LEASE_SECONDS": _float("OUTBOX_LEASE_SECONDS", 30.0),
        # Delivered and dead messages are deleted this long after they finished (pending stay).
        "OUTBOX_RETENTION_SECONDS": _int("OUTBOX_RETENTION_SECONDS", 7 * 24 * 3600),
        # The worker touches this file every turn of its loop (a container healthcheck).
        "WORKER_HEARTBEAT_FILE": os.environ.get("WORKER_HEARTBEAT_FILE") or None,
        # Campaigns: codes per generation transaction, the generating process's lease,
        # the most codes one campaign may ask for, and how much larger than the codes
        # (asked plus existing) a pattern's space must be.
        "CAMPAIGN_BATCH_SIZE": _int("CAMPAIGN_BATCH_SIZE", 50_000),
        "CAMPAIGN_LEASE_SECONDS": _float("CAMPAIGN_LEASE_SECONDS", 120.0),
        "CAMPAIGN_MAX_CODES": _int("CAMPAIGN_MAX_CODES", 5_000_000),
        "CAMPAIGN_CAPACITY_FACTOR": _int("CAMPAIGN_CAPACITY_FACTOR", 10),
        "CAMPAIGN_EXPORT_BATCH": _int("CAMPAIGN_EXPORT_BATCH", 5000),
        # Holds (reservations): kept this long after they expire or close, then purged.
        "RESERVATION_RETENTION_SECONDS": _int("RESERVATION_RETENTION_SECONDS", 24 * 3600),
        # Moves the service's clock (testing and sandboxes only; refused in production).
        "CLOCK_OFFSET_SECONDS": _float("CLOCK_OFFSET_SECONDS", 0.0),
        "ACCESS_TOKEN_TTL_SECONDS": _int("ACCESS_TOKEN_TTL_SECONDS", 3600),
        "ACTIVATION_TTL_SECONDS": _int("ACTIVATION_TTL_SECONDS", 72 * 3600),
        # A pending fan's activation link is mailed again at most this often.
        "ACTIVATION_RESEND_SECONDS": _int("ACTIVATION_RESEND_SECONDS", 600),
        "IDEMPOTENCY_WAIT_SECONDS": _float("IDEMPOTENCY_WAIT_SECONDS", 10.0),
        # How long a worker keeps tenants and decoded tokens in memory (0: not at all).
        "CACHE_TTL_SECONDS": _float("CACHE_TTL_SECONDS", 30.0),
        "JWT_ISSUER": os.environ.get("JWT_ISSUER", "coupon-service"),
        "JWT_AUDIENCE": os.environ.get("JWT_AUDIENCE", "coupon-api"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # GET /metrics on the API's own listener; off by default in production, where
        # METRICS_PORT serves it on an internal port instead (gunicorn.conf.py).
        "METRICS_ENABLED": _bool(os.environ.get("METRICS_ENABLED"), app_env != "production"),
        # The console at /admin (false: its pages answer 404).
        "ADMIN_ENABLED": _bool(os.environ.get("ADMIN_ENABLED"), True),
        # Proxies in front of the app whose X-Forwarded-* headers are trusted (0: none).
        "TRUSTED_PROXY_COUNT": _int("TRUSTED_PROXY_COUNT", 0),
    }


# Static settings for the extensions; not meant to be tuned per deployment.
STATIC = {
    "API_TITLE": "Coupon service",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Swagger UI's files are served by the service itself (the pinned swagger-ui-bundle
    # package, app/api/ops.py): no third-party origin, and /docs works offline.
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
    "MAX_CONTENT_LENGTH": 1024 * 1024,
}


def engine_options(database_url: str) -> dict:
    """SQLAlchemy engine options for this database."""
    options: dict = {
        # No pre-ping round trip per checkout: a connection the server closed is
        # dropped at checkout by a socket check (database.install_liveness_check),
        # and connections are replaced every half hour so none outlives a failover.
        "pool_recycle": 1800,
        # Statement parameters (emails, token hashes) stay out of error messages and logs.
        "hide_parameters": True,
        # Rows' JSON columns (a coupon's targets, metadata) are parsed on every state read.
        "json_deserializer": json_text.loads,
    }
    if database_url.startswith("postgresql"):
        # An unreachable server fails a request in seconds (503), it does not hang a worker.
        options["connect_args"] = {"connect_timeout": 5}
    return options


def build(overrides: dict | None) -> dict:
    """Environment settings, then static ones, then explicit overrides (tests)."""
    settings = {**from_environment(), **STATIC}
    if overrides:
        settings.update(overrides)
    settings.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS", engine_options(settings["SQLALCHEMY_DATABASE_URI"])
    )
    return settings


def refuse_unworkable(settings: dict) -> None:
    """Refuse to start with settings that cannot work (SystemExit says which)."""
    if settings.get("EVENTS_SECRET"):
        from app.engine.signatures import secret_key

        try:
            secret_key(settings["EVENTS_SECRET"])
        except ValueError as error:
            raise SystemExit(
                f"refusing to start: {error} (`flask --app app events new-secret` makes one)"
            ) from None
    if settings["APP_ENV"] not in APP_ENVS:
        raise SystemExit(
            f"refusing to start: APP_ENV={settings['APP_ENV']!r} is none of {', '.join(APP_ENVS)}"
        )
    if settings["APP_ENV"] != "production":
        return
    if "*" in settings["CORS_ORIGINS"]:
        raise SystemExit("refusing to start: CORS_ORIGINS=* in production; list the origins")
    if settings.get("CLOCK_OFFSET_SECONDS"):
        raise SystemExit("refusing to start: CLOCK_OFFSET_SECONDS is for testing, not production")
    if settings.get("WEBHOOK_ALLOW_PRIVATE"):
        raise SystemExit(
            "refusing to start: WEBHOOK_ALLOW_PRIVATE in production would let webhook "
            "endpoints reach private addresses"
        )
    if settings.get("SECRET_KEY") in (None, "", DEFAULT_SECRET_KEY):
        raise SystemExit("refusing to start: APP_ENV=production needs a non-default SECRET_KEY")
    if any(len(key) < 32 for key in [settings["SECRET_KEY"], *settings["SECRET_KEY_FALLBACKS"]]):
        raise SystemExit(
            "refusing to start: SECRET_KEY (and each of SECRET_KEY_FALLBACKS) must be at "
            "least 32 characters"
        )
    base_url = settings.get("PUBLIC_BASE_URL") or ""
    if not base_url.startswith(("https://", "http://")):
        raise SystemExit(
            "refusing to start: APP_ENV=production needs PUBLIC_BASE_URL, the https:// base "
            "of the links the service mails and returns (never taken from the Host header)"
        )

    if settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        raise SystemExit(
            "refusing to start: APP_ENV=production needs PostgreSQL (DATABASE_URL="
            "postgresql+psycopg://...), not SQLite"
        )


def rate_limit_problem(settings: dict, workers: int) -> str | None:
    """Why these rate-limit settings cannot hold in production with `workers` processes."""
    if settings["APP_ENV"] != "production" or not settings["RATELIMIT_ENABLED"]:
        return None
    if settings["RATELIMIT_STORAGE_URI"].startswith("memory://") and workers > 1:
        return (
            f"RATELIMIT_STORAGE_URI is memory:// with {workers} workers: each worker would "
            "count on its own, multiplying every limit. Set RATELIMIT_STORAGE_URI="
            "redis://HOST:6379/0, run one worker, or set RATELIMIT_ENABLED=false"
        )
    return None
