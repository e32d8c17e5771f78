"""Faults injected for real: PostgreSQL restarted under load, gunicorn stopped mid-burst,
a worker killed mid-request or mid-batch, a downstream that hangs, racing clients."""

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.api.conftest import coupon_body, order
from tests.support import BIN, free_port, spawn, start_gunicorn, stop, wait_http
from tests.system.conftest import (
    SECRET,
    app_env,
    brand,
    enqueue,
    mock,
    received,
    redis_store,
    run_flask,
    sql,
    start_worker,
    wait_for,
    worker_env,
)
from tests.system.test_concurrency import fire, token

DISCOUNT = {"name": "d", "discount_type": "PERCENT", "discount_amount": 5}


def acme(db_url):
    return json.loads(run_flask(db_url, "tenant", "create", "acme", "--currency", "USD"))


def api_with(processes, env, workers=4):
    process, url = start_gunicorn(env, workers=workers)
    processes.append(process)
    return process, url


def create_coupon(api, tenant, **overrides):
    manage = token(api, tenant, "hybris.coupon_manage")
    response = requests.post(
        f"{api}/coupon/v1/acme/coupons", json=coupon_body(**overrides), headers=manage, timeout=10
    )
    assert response.status_code == 201, response.text
    return manage


def counters_match(db_url, code):
    """The coupon's counter, and whether it equals its redemption rows."""
    [(count, rows)] = sql(
        db_url,
        "SELECT c.redemption_count, (SELECT count(*) FROM redemptions r WHERE r.coupon_id = c.id)"
        " FROM coupons c WHERE c.code = :code",
        code=code,
    )
    return count, count == rows


def pending_messages(db_url):
    [(pending,)] = sql(db_url, "SELECT count(*) FROM outbox_messages WHERE status <> 'delivered'")
    return pending


# --- the database goes away -------------------------------------------------------------


def test_postgres_restart_under_load(fresh_pg, processes, restart_postgres):
    """Only 503s while it restarts, none after; counters exact; the worker delivers all."""
    events = mock(processes)
    env = worker_env(fresh_pg, EVENTS_URL=events)
    tenant = acme(fresh_pg)
    _, api = api_with(processes, env)
    create_coupon(api, tenant, code="HOT")
    start_worker(processes, env)
    on_behalf = token(api, tenant, "hybris.coupon_redeem_on_behalf")

    results: list[tuple[float, float, int]] = []
    stop_load = threading.Event()

    def load(worker: int) -> None:
        session, n = requests.Session(), 0
        while not stop_load.is_set():
            n += 1
            started = time.monotonic()
            try:
                status = session.post(
                    f"{api}/coupon/v1/acme/coupons/HOT/redemptions",
                    json=order(customerNumber=f"C{worker}-{n}"),
                    headers=on_behalf,
                    timeout=30,
                ).status_code
            except requests.RequestException:
                status = 0
            results.append((started, time.monotonic(), status))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(results) >= 40)  # the load is flowing
    restart_postgres()
    back = time.monotonic()
    # Enough requests started after the restart to say how the service answers now.
    wait_for(lambda: sum(1 for started, _, _ in results if started > back) >= 40, timeout=60)
    stop_load.set()
    for thread in threads:
        thread.join()

    statuses = Counter(status for _, _, status in results)
    after = Counter(status for started, _, status in results if started > back)
    assert set(statuses) <= {201, 503}, statuses
    assert statuses[503] > 0, "the restart was not noticed: no request fell in it"
    assert after and set(after) == {201}, after
    count, exact = counters_match(fresh_pg, "HOT")
    assert exact and count >= statuses[201]
    print(f"restart under load: {dict(statuses)}, after: {dict(after)}, counter {count}")
    t0 = time.monotonic()
    wait_for(lambda: pending_messages(fresh_pg) == 0, timeout=60)
    print(f"all delivered after {time.monotonic() - t0:.1f}s")
    assert len({r["headers"]["webhook-id"] for r in received(events)}) == count


def test_ready_says_503_while_postgres_is_down(fresh_pg, processes, restart_postgres):
    _, api = api_with(processes, app_env(fresh_pg), workers=1)
    assert requests.get(f"{api}/ready", timeout=5).status_code == 200
    seen = set()
    stop_polling = threading.Event()

    def poll():
        while not stop_polling.is_set():
            seen.add(requests.get(f"{api}/ready", timeout=10).status_code)

    poller = threading.Thread(target=poll)
    poller.start()
    restart_postgres()
    stop_polling.set()
    poller.join()
    assert 503 in seen and seen <= {200, 503}
    assert requests.get(f"{api}/ready", timeout=5).status_code == 200


# --- processes die --------------------------------------------------------------------


def test_gunicorn_sigterm_mid_burst_keeps_every_answered_redemption(fresh_pg, processes):
    tenant = acme(fresh_pg)
    gunicorn, api = api_with(processes, app_env(fresh_pg))
    create_coupon(api, tenant, code="BURST")
    on_behalf = token(api, tenant, "hybris.coupon_redeem_on_behalf")

    def redeem(i):
        try:
            response = requests.post(
                f"{api}/coupon/v1/acme/coupons/BURST/redemptions",
                json=order(customerNumber=f"C{i}"),
                headers=on_behalf,
                timeout=30,
            )
        except requests.RequestException:
            return None, None  # refused: the server had stopped accepting
        return response.status_code, response.json().get("id") if response.content else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(redeem, i) for i in range(400)]
        wait_for(lambda: sum(future.done() for future in futures) >= 20)  # mid-burst
        os.kill(gunicorn.pid, signal.SIGTERM)  # the master: a graceful stop
        answers = [future.result() for future in futures]
    gunicorn.wait(timeout=30)

    statuses = Counter(status for status, _ in answers)
    assert statuses[201] > 0 and statuses[None] > 0, statuses
    assert set(statuses) <= {201, None}, statuses
    ids = {rid for status, rid in answers if status == 201}
    stored = {row[0] for row in sql(fresh_pg, "SELECT id FROM redemptions")}
    assert stored == ids
    count, exact = counters_match(fresh_pg, "BURST")
    assert exact and count == len(ids)


def test_worker_killed_mid_request_leaves_no_wedged_key(fresh_pg, processes):
    """The keyed request dies holding its key; the retry runs the work instead of a 409."""
    tenant = acme(fresh_pg)
    gunicorn, api = api_with(processes, app_env(fresh_pg, IDEMPOTENCY_WAIT_SECONDS="3"), workers=1)
    create_coupon(api, tenant, code="KEYED")
    headers = {**token(api, tenant, "hybris.coupon_redeem_on_behalf"), "Idempotency-Key": "k-1"}
    url = f"{api}/coupon/v1/acme/coupons/KEYED/redemptions"
    body = order(customerNumber="C1")

    holder = psycopg.connect(fresh_pg.replace("postgresql+psycopg", "postgresql"))
    holder.execute("SELECT 1 FROM coupons WHERE code = 'KEYED' FOR UPDATE")  # block the work
    first = ThreadPoolExecutor(max_workers=1).submit(
        lambda: requests.post(url, json=body, headers=headers, timeout=30)
    )
    wait_for(
        lambda: (
            sql(
                fresh_pg,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()",
            )[0][0]
            == 1
        )
    )
    [worker_pid] = [int(pid) for pid in _children(gunicorn.pid)]
    os.kill(worker_pid, signal.SIGKILL)  # dies with the key claimed and the work half done
    with pytest.raises(requests.RequestException):
        first.result()
    holder.rollback()
    holder.close()
    wait_for(lambda: _children(gunicorn.pid) and _children(gunicorn.pid) != [str(worker_pid)])
    wait_http(f"{api}/health")

    retry = requests.post(url, json=body, headers=headers, timeout=30)
    assert retry.status_code == 201, retry.text
    replay = requests.post(url, json=body, headers=headers, timeout=30)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == retry.json()
    assert counters_match(fresh_pg, "KEYED") == (1, True)


def _children(pid: int) -> list[str]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return result.stdout.split()


# --- downstream faults ----------------------------------------------------------------


def test_hanging_downstream_times_out_and_is_delivered_later(fresh_pg, processes):
    realizer = mock(processes, hang=1, hang_seconds=60)
    env = worker_env(fresh_pg, COUPON_REALIZER_URL=realizer, OUTBOX_HTTP_TIMEOUT_SECONDS="1")
    enqueue(env, 3)
    start_worker(processes, env)
    wait_for(lambda: pending_messages(fresh_pg) == 0, timeout=30)
    got = received(realizer)
    assert sorted({r["body"]["n"] for r in got}) == [0, 1, 2]
    by_id = Counter(r["headers"]["webhook-id"] for r in got)
    assert sorted(by_id.values()) == [1, 1, 2]  # the hung one came again, same id


def test_worker_killed_mid_batch_its_leases_go_to_another(fresh_pg, processes):
    realizer = mock(processes, hang=1, hang_seconds=60)
    env = worker_env(
        fresh_pg,
        COUPON_REALIZER_URL=realizer,
        OUTBOX_LEASE_SECONDS="2",
        OUTBOX_HTTP_TIMEOUT_SECONDS="30",
    )
    enqueue(env, 10)
    first = start_worker(processes, env)
    wait_for(lambda: len(received(realizer)) == 1)  # stuck on its batch's first message
    [(leased,)] = sql(fresh_pg, "SELECT count(*) FROM outbox_messages WHERE attempts = 1")
    assert leased == 10  # the whole batch is leased to the stuck worker
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    start_worker(processes, env)
    wait_for(lambda: pending_messages(fresh_pg) == 0, timeout=30)
    delivered = {r["body"]["n"] for r in received(realizer) if r["answered"] == 200}
    assert delivered == set(range(10))


def test_worker_survives_a_postgres_restart(fresh_pg, processes, restart_postgres):
    realizer = mock(processes)
    env = worker_env(fresh_pg, COUPON_REALIZER_URL=realizer)
    worker = start_worker(processes, env)
    enqueue(env, 2)
    wait_for(lambda: len(received(realizer)) == 2)
    restart_postgres()
    time.sleep(1)
    assert worker.poll() is None, "the worker died with the database"
    enqueue(env, 3)
    wait_for(lambda: len(received(realizer)) == 5, timeout=60)
    assert worker.poll() is None


def test_delivered_events_verify_with_standardwebhooks(fresh_pg, processes):
    events = mock(processes)
    secret = run_flask(fresh_pg, "events", "new-secret").strip()
    env = worker_env(fresh_pg, EVENTS_URL=events, EVENTS_SECRET=secret)
    tenant = acme(fresh_pg)
    _, api = api_with(processes, env, workers=1)
    create_coupon(api, tenant, code="SIGNED")
    response = requests.post(
        f"{api}/coupon/v1/acme/coupons/SIGNED/redemptions",
        json=order(customerNumber="C1", orderId="O-9"),
        headers=token(api, tenant, "hybris.coupon_redeem_on_behalf"),
        timeout=10,
    )
    assert response.status_code == 201
    start_worker(processes, env)
    [event] = wait_for(lambda: received(events))
    verified = Webhook(secret).verify(event["raw"], event["headers"])
    assert verified["type"] == "hybris.coupon.redemption"
    assert verified["data"]["redemptionId"] == response.json()["id"]
    assert verified["data"]["orderId"] == "O-9"


# --- racing clients -------------------------------------------------------------------


def test_racing_fan_registrations_get_one_code(fresh_pg, processes):
    """Twelve simultaneous registrations of one email, eight times over (one round
    alone does not reliably hit the window the unique violation used to fire in)."""
    headers = brand(fresh_pg)
    _, api = api_with(processes, app_env(fresh_pg))
    requests.post(
        f"{api}/brands/test_brand/discounts", json=DISCOUNT, headers=headers, timeout=10
    ).raise_for_status()
    rounds = 8
    for round_ in range(rounds):
        fan = {"name": "Racer", "email": f"racer{round_}@example.com"}
        responses = fire(
            12,
            lambda _, fan=fan: requests.post(
                f"{api}/brands/test_brand/fans", json=fan, headers=headers, timeout=60
            ),
        )
        assert [(r.status_code, r.text) for r in responses] == [(200, "OK")] * 12
    assert sql(fresh_pg, "SELECT count(*), count(DISTINCT email) FROM fans") == [(rounds, rounds)]
    assert sql(fresh_pg, "SELECT count(*) FROM coupons") == [(rounds,)]
    assert sql(fresh_pg, "SELECT count(*) FROM outbox_messages") == [(rounds,)]


# --- production settings ---------------------------------------------------------------


def production_env(**extra):
    return {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "DATABASE_URL": "sqlite:///unused.db",
        "RATELIMIT_STORAGE_URI": "memory://",
        "PUBLIC_BASE_URL": "https://coupons.example.com",
        **extra,
    }


def test_gunicorn_refuses_per_process_limits_with_several_workers():
    process = spawn(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{free_port()}",
            "--workers",
            "2",
            "app:create_app()",
        ],
        env=production_env(),
        stderr=subprocess.PIPE,
    )
    try:
        assert process.wait(timeout=60) != 0
        assert "RATELIMIT_STORAGE_URI is memory://" in process.stderr.read().decode()
    finally:
        stop(process)


def test_redis_storage_shares_limits_between_workers(fresh_pg, processes):
    store = redis_store(15)
    env = app_env(
        fresh_pg,
        **production_env(
            DATABASE_URL=fresh_pg,
            RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15",
            RATELIMIT_ENABLED="true",
            RATELIMIT_GUESSING="6/minute",
        ),
    )
    _, api = api_with(processes, env, workers=3)
    statuses = Counter(
        requests.get(f"{api}/fans/unknown-{i}", timeout=10).status_code for i in range(15)
    )
    assert statuses == {404: 6, 429: 9}, statuses
    store.flushdb()
