"""The brands session as documented and outbox faults, with real processes on PostgreSQL:
gunicorn, `flask outbox dispatch` workers and `python -m mock_services` downstreams."""

import json
import os
import signal
import time

import requests

from tests.support import free_port, start_gunicorn
from tests.system.conftest import (
    brand,
    enqueue,
    mock,
    received,
    replay_brands_session,
    run_flask,
    start_worker,
    wait_for,
    worker_env,
)
from tests.system.test_faults import pending_messages


def test_brand_session_as_documented(fresh_pg, processes):
    email_url, realizer_url = mock(processes), mock(processes)
    env = worker_env(fresh_pg, EMAIL_VERIFIER_URL=email_url, COUPON_REALIZER_URL=realizer_url)
    token = brand(fresh_pg)
    api_process, api = start_gunicorn(env, workers=2)
    processes.append(api_process)
    start_worker(processes, env)
    replay_brands_session(api, token, email_url, realizer_url)


def test_retries_keep_the_message_id(fresh_pg, processes):
    realizer_url = mock(processes, fail=3)
    env = worker_env(fresh_pg, COUPON_REALIZER_URL=realizer_url)
    token = brand(fresh_pg)
    api_process, api = start_gunicorn(env, workers=2)
    processes.append(api_process)
    requests.post(
        f"{api}/brands/test_brand/discounts",
        json={"name": "d", "discount_type": "PERCENT", "discount_amount": 5},
        headers=token,
    ).raise_for_status()
    requests.post(
        f"{api}/brands/test_brand/fans", json={"name": "A", "email": "a@example.com"}, headers=token
    ).raise_for_status()
    start_worker(processes, env)
    attempts = wait_for(lambda: len(received(realizer_url)) >= 4 and received(realizer_url))
    assert [a["answered"] for a in attempts] == [503, 503, 503, 200]
    assert len({a["headers"]["webhook-id"] for a in attempts}) == 1
    assert len({json.dumps(a["body"], sort_keys=True) for a in attempts}) == 1


def test_worker_killed_mid_run_loses_nothing(fresh_pg, processes):
    realizer_url = mock(processes)
    env = worker_env(fresh_pg, COUPON_REALIZER_URL=realizer_url)
    token = brand(fresh_pg)
    api_process, api = start_gunicorn(env, workers=2)
    processes.append(api_process)
    requests.post(
        f"{api}/brands/test_brand/discounts",
        json={"name": "d", "discount_type": "PERCENT", "discount_amount": 5},
        headers=token,
    ).raise_for_status()
    worker = start_worker(processes, env)
    emails = [f"fan{i}@example.com" for i in range(20)]
    for i, email in enumerate(emails):
        if i == 8:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        response = requests.post(
            f"{api}/brands/test_brand/fans", json={"name": "F", "email": email}, headers=token
        )
        assert response.status_code == 200
    start_worker(processes, env)
    delivered = wait_for(
        lambda: (
            {r["body"]["email"] for r in received(realizer_url)} >= set(emails)
            and received(realizer_url)
        )
    )
    assert {r["body"]["email"] for r in delivered} == set(emails)


def test_api_answers_fast_while_downstream_is_down(fresh_pg, processes):
    down = f"http://127.0.0.1:{free_port()}"
    env = worker_env(fresh_pg, COUPON_REALIZER_URL=down)
    token = brand(fresh_pg)
    api_process, api = start_gunicorn(env, workers=2)
    processes.append(api_process)
    start_worker(processes, env)
    requests.post(
        f"{api}/brands/test_brand/discounts",
        json={"name": "d", "discount_type": "PERCENT", "discount_amount": 5},
        headers=token,
    ).raise_for_status()
    slowest = 0.0
    for i in range(20):
        started = time.perf_counter()
        response = requests.post(
            f"{api}/brands/test_brand/fans",
            json={"name": "F", "email": f"f{i}@x.io"},
            headers=token,
        )
        slowest = max(slowest, time.perf_counter() - started)
        assert response.status_code == 200
    assert slowest < 1.0, slowest
    pending = wait_for(
        lambda: [
            json.loads(line)
            for line in run_flask(fresh_pg, "outbox", "list").splitlines()
            if json.loads(line)["last_error"]
        ]
    )
    assert pending and "ConnectionError" in pending[0]["last_error"]


def test_two_workers_do_not_double_deliver(fresh_pg, processes):
    realizer_url = mock(processes)
    env = worker_env(fresh_pg, COUPON_REALIZER_URL=realizer_url)
    enqueue(env, 200)
    start_worker(processes, env)
    start_worker(processes, env)
    # Once every message is recorded delivered, none can be claimed again: whatever was
    # delivered twice (a lease run out mid-delivery) has arrived by then.
    wait_for(lambda: pending_messages(env["DATABASE_URL"]) == 0, timeout=60)
    got = received(realizer_url)
    assert len(got) == 200
    assert len({r["headers"]["webhook-id"] for r in got}) == 200
    assert sorted(r["body"]["n"] for r in got) == list(range(200))
