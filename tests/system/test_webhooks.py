"""Webhooks through the real processes: gunicorn writes the events, the outbox worker
process delivers them from its slots (threads with app contexts of their own) to a
real HTTP endpoint, signed so the Standard Webhooks library verifies them."""

import json

import requests
from standardwebhooks.webhooks import Webhook

from tests.api.conftest import coupon_body, order
from tests.api.test_outbox_retries import Downstream
from tests.support import client_token, start_gunicorn
from tests.system.conftest import run_flask, start_worker, wait_for, worker_env


def test_the_worker_process_delivers_signed_webhooks(fresh_pg, processes):
    receiver = Downstream(down=False)
    try:
        creds = json.loads(run_flask(fresh_pg, "tenant", "create", "acme", "--currency", "USD"))
        env = worker_env(fresh_pg, WEBHOOK_ALLOW_PRIVATE="true")
        gunicorn, api = start_gunicorn(env, workers=2)
        processes.append(gunicorn)
        start_worker(processes, env)
        manage = client_token(api, creds, "hybris.coupon_manage hybris.coupon_redeem_on_behalf")
        base = f"{api}/coupon/v1/acme"
        made = requests.post(
            f"{base}/webhooks",
            json={"url": receiver.url, "events": ["*"]},
            headers=manage,
            timeout=10,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        requests.post(f"{base}/coupons", json=coupon_body(code="LIVE"), headers=manage, timeout=10)
        redeemed = requests.post(
            f"{base}/coupons/LIVE/redemptions",
            json=order(customerNumber="C1", orderId="o-1"),
            headers=manage,
            timeout=10,
        )
        assert redeemed.status_code == 201, redeemed.text
        wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
        events = [Webhook(secret).verify(body, headers) for _, headers, body in receiver.requests]
        assert sorted(e["type"] for e in events) == ["coupon.created", "redemption.created"]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
