"""Campaign generation by the real worker process on PostgreSQL: created through the
API (gunicorn), generated in batches by `outbox dispatch`, resumed by another worker
when the first is killed mid-way, and redeemed exactly once per code under load."""

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import client_token, start_gunicorn, stop
from tests.system.conftest import run_flask, sql, start_worker, wait_for, worker_env

COUNT = 200_000


def _campaign(api, headers, campaign_id):
    return requests.get(
        f"{api}/coupon/v1/acme/campaigns/{campaign_id}", headers=headers, timeout=10
    ).json()


def test_a_killed_worker_s_campaign_is_finished_by_another(fresh_pg, processes):
    creds = json.loads(run_flask(fresh_pg, "tenant", "create", "acme", "--currency", "USD"))
    env = worker_env(fresh_pg, CAMPAIGN_BATCH_SIZE="10000", CAMPAIGN_LEASE_SECONDS="2")
    gunicorn, api = start_gunicorn(env, workers=2)
    processes.append(gunicorn)
    manage = client_token(api, creds, "hybris.coupon_manage")
    created = requests.post(
        f"{api}/coupon/v1/acme/campaigns",
        json={
            "name": "flyers",
            "count": COUNT,
            "codeConfig": {"length": 9},
            "template": {
                "discountType": "PERCENT",
                "discountPercentage": 15,
                "allowAnonymous": True,
                "maxRedemptions": 1,
            },
        },
        headers=manage,
        timeout=10,
    )
    assert created.status_code == 202, created.text
    campaign_id = created.json()["id"]

    first = start_worker(processes, env)
    wait_for(lambda: _campaign(api, manage, campaign_id)["generated"] >= 30_000, timeout=60)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = _campaign(api, manage, campaign_id)
    assert killed_at["status"] == "generating" and killed_at["generated"] < COUNT

    start_worker(processes, env)
    done = wait_for(
        lambda: (c := _campaign(api, manage, campaign_id))["status"] == "completed" and c,
        timeout=120,
    )
    assert done["generated"] == COUNT and done["totals"]["codes"] == COUNT
    [(rows, distinct)] = sql(
        fresh_pg,
        "SELECT count(*), count(DISTINCT code_key) FROM codes WHERE campaign_id = :c",
        c=campaign_id,
    )
    assert rows == distinct == COUNT  # every batch whole: nothing lost, nothing twice

    # Streamed export of all of them, then 40 racing redemptions of 20 codes: one each.
    export = requests.get(
        f"{api}/coupon/v1/acme/campaigns/{campaign_id}/codes",
        headers=manage,
        stream=True,
        timeout=60,
    )
    lines = export.text.splitlines()
    assert lines[0] == "code,status,redemptionCount" and len(lines) == COUNT + 1
    codes = [line.split(",")[0] for line in lines[1:21]]
    redeem = client_token(api, creds, "hybris.coupon_redeem")
    body = {
        "orderTotal": {"amount": 100, "currency": "USD"},
        "discount": {"amount": 15, "currency": "USD"},
    }

    def attempt(code):
        return requests.post(
            f"{api}/coupon/v1/acme/coupons/{code}/redemptions",
            json=body,
            headers=redeem,
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, codes * 2))
    assert sorted(statuses) == [201] * 20 + [400] * 20, statuses
    totals = _campaign(api, manage, campaign_id)["totals"]
    assert (totals["codesUsed"], totals["redemptions"]) == (20, 20)
    stop(gunicorn)

    # An export that takes longer than the worker timeout (1 s here, a slow reader) is
    # not killed mid-stream: the worker says it is alive page by page (app.heartbeat).
    slow, slow_api = start_gunicorn({**env, "GUNICORN_TIMEOUT": "1"}, workers=1)
    processes.append(slow)
    started = time.monotonic()
    with requests.get(
        f"{slow_api}/coupon/v1/acme/campaigns/{campaign_id}/codes",
        headers=manage,
        stream=True,
        timeout=30,
    ) as response:
        chunks = []
        for chunk in response.iter_content(64 * 1024):
            chunks.append(chunk)
            time.sleep(0.05)
    assert time.monotonic() - started > 2
    assert b"".join(chunks).count(b"\n") == COUNT + 1
