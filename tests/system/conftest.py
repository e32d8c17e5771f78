"""Real processes on PostgreSQL: fresh migrated databases, gunicorn, outbox workers,
mock downstreams, and the helpers the system tests share."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import PG_URL
from tests.support import (
    BIN,
    ROOT,
    ensure_postgres_up,
    new_postgres_database,
    postgres_cluster,
    restart_local_postgres,
    spawn,
    start_gunicorn,
    start_mock,
    stop,
)

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


@pytest.fixture
def fresh_pg():
    """A new migrated database per test, so no message leaks between tests."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set: outbox fault tests need PostgreSQL")
    with new_postgres_database(PG_URL, "coupon_outbox") as url:
        run_flask(url, "db", "upgrade")
        yield url


@pytest.fixture
def processes():
    started = []
    yield started
    for process in reversed(started):
        stop(process)


def mock(processes, **faults):
    """A mock downstream process (faults as for `start_mock`); returns its URL."""
    process, url = start_mock(**faults)
    processes.append(process)
    return url


def worker_env(db_url, **extra):
    """The app's environment with a brisk outbox worker; `extra` overrides."""
    brisk = {
        "OUTBOX_POLL_SECONDS": "0.1",
        "OUTBOX_RETRY_BASE_SECONDS": "0.2",
        "OUTBOX_LEASE_SECONDS": "1",
    }
    return app_env(db_url, **{**brisk, **extra})


def start_worker(processes, env):
    process = spawn([str(BIN / "flask"), "--app", "app", "outbox", "dispatch"], env=env)
    processes.append(process)
    return process


def received(url):
    return requests.get(url + "/_received", timeout=5).json()


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def brand(db_url):
    created = json.loads(run_flask(db_url, "tenant", "create", "test_brand", "--currency", "USD"))
    return {"X-API-Token": created["api_token"]}


def redis_store(number: int):
    """An emptied Redis database (`number`) on the local server, or the test is skipped."""
    try:
        import redis

        store = redis.Redis.from_url(f"redis://127.0.0.1:6379/{number}")
        store.flushdb()
    except Exception as error:  # noqa: BLE001 - any failure means no Redis here
        pytest.skip(f"no Redis on 127.0.0.1:6379: {error}")
    return store


def sql(url: str, query: str, **params):
    """The rows of one statement, through a short-lived connection of the test's own."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            return connection.execute(text(query), params).all()
    finally:
        engine.dispose()


@pytest.fixture
def restart_postgres():
    """Restart the local PostgreSQL server (fast mode: sessions are cut); back up afterwards."""
    cluster = postgres_cluster(PG_URL or "")
    if cluster is None:
        pytest.skip("restarting PostgreSQL needs the local cluster and pg_ctlcluster")
    yield lambda: restart_local_postgres(PG_URL)
    ensure_postgres_up(PG_URL)


def enqueue(env: dict, count: int) -> None:
    """Queue `count` realizer messages directly, in one transaction of another process."""
    script = (
        "from app import create_app\n"
        "from app.extensions import db\n"
        "from app.engine import outbox\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        f"    for i in range({count}):\n"
        "        outbox.enqueue(tenant_id=None, destination=outbox.COUPON_REALIZER,"
        " path='/coupon', payload={'n': i})\n"
        "    db.session.commit()\n"
    )
    subprocess.run(
        [str(BIN / "python"), "-c", script],
        env={**os.environ, **env},
        check=True,
        cwd=ROOT,
        timeout=60,
    )


def replay_brands_session(api: str, token: dict, email_url: str, realizer_url: str) -> None:
    """A brand's session as its client makes it, step by step, with what the mocks receive."""
    unauthorized = requests.post(
        f"{api}/brands/test_brand/discounts", json={"name": "new discount"}
    )
    assert unauthorized.status_code == 401
    invalid = requests.post(
        f"{api}/brands/test_brand/discounts", json={"name": "new discount"}, headers=token
    )
    assert invalid.status_code == 400
    valid = requests.post(
        f"{api}/brands/test_brand/discounts",
        json={
            "name": "new discount",
            "date_expires": "2099-12-31",
            "discount_type": "PERCENT",
            "discount_amount": 10,
        },
        headers=token,
    )
    assert valid.status_code == 200 and valid.json()["name"] == "new discount"
    listed = requests.get(f"{api}/brands/", headers=token).json()
    assert listed[0]["name"] == "new discount" and listed[0]["usage_limit"] == 1

    fan = {"name": "Uni User", "email": "uni.user@example.com"}
    registered = requests.post(f"{api}/brands/test_brand/fans", json=fan, headers=token)
    assert registered.status_code == 200 and registered.text == "OK"
    [post] = wait_for(lambda: received(realizer_url))
    assert post["method"] == "POST" and post["path"] == "/coupon"
    assert post["body"] == {
        "fan_name": "Uni User",
        "email": "uni.user@example.com",
        "facebook_handle": None,
        "discount_name": "new discount",
        "coupon_code": post["body"]["coupon_code"],
        "discount_type": "PERCENT",
        "discount_amount": 10,
        "description": None,
        "usage_limit": 1,
        "free_shipping": False,
    }
    assert post["headers"]["webhook-id"]

    verified = requests.post(
        f"{api}/brands/test_brand/discounts",
        json={
            "name": "verified discount",
            "date_expires": "2099-12-31",
            "discount_type": "PERCENT",
            "discount_amount": 12,
            "verify_email": True,
        },
        headers=token,
    )
    assert verified.status_code == 200
    assert requests.post(f"{api}/brands/test_brand/fans", json=fan, headers=token).text == "OK"
    [email] = wait_for(lambda: received(email_url))
    assert email["path"] == "/email"
    assert email["body"]["email"] == "uni.user@example.com"
    assert email["body"]["brand"] == "test_brand"
    activation = requests.get(f"{api}/fans/{email['body']['token']}")
    assert activation.status_code == 200 and activation.text == "OK"
    posts = wait_for(lambda: len(received(realizer_url)) == 2 and received(realizer_url))
    assert posts[1]["body"]["discount_name"] == "verified discount"
    assert posts[1]["body"]["discount_amount"] == 12
    assert posts[1]["body"]["coupon_code"] != posts[0]["body"]["coupon_code"]
    assert requests.get(f"{api}/fans/{email['body']['token']}").status_code == 404
