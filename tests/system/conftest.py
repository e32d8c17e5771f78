"""A fresh migrated PostgreSQL database and a gunicorn-served API over it."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PG_URL
from tests.support import ROOT, new_postgres_database, start_gunicorn, stop

SECRET = "system-test-secret-key-0123456789abcdef"


@pytest.fixture(scope="module")
def pg_database():
    """A new PostgreSQL database, migrated with `flask db upgrade`."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set: concurrency tests need PostgreSQL")
    with new_postgres_database(PG_URL, "coupon_sys") as url:
        run_flask(url, "db", "upgrade")
        yield url


def app_env(url: str, **extra) -> dict:
    return {
        "DATABASE_URL": url,
        "APP_ENV": "development",
        "SECRET_KEY": SECRET,
        "RATELIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def run_flask(url: str, *args: str, **extra_env) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **app_env(url, **extra_env)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def pg_tenant(pg_database):
    return json.loads(run_flask(pg_database, "tenant", "create", "acme", "--currency", "USD"))


@pytest.fixture(scope="module")
def api(pg_database, pg_tenant):
    """Base URL of gunicorn with 4 workers on the PostgreSQL database."""
    process, url = start_gunicorn(app_env(pg_database), workers=4)
    try:
        yield url
    finally:
        stop(process)
