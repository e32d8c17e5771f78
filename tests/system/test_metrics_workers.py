"""/metrics under gunicorn: prometheus_client's multiprocess mode sums every worker."""

import requests

from tests.api.conftest import order
from tests.api.test_metrics import sample
from tests.support import free_port
from tests.system.conftest import app_env
from tests.system.test_concurrency import fire, token
from tests.system.test_faults import acme, api_with, create_coupon

ROUTE = "/coupon/v1/<string:tenant>/coupons/<string:code>/redemptions"


def test_every_worker_is_counted(fresh_pg, processes):
    tenant = acme(fresh_pg)
    internal = free_port()
    env = app_env(fresh_pg, METRICS_PORT=str(internal), METRICS_ADDR="127.0.0.1")
    _, api = api_with(processes, env, workers=3)
    create_coupon(api, tenant, code="MULTI")
    on_behalf = token(api, tenant, "hybris.coupon_redeem_on_behalf")
    answers = fire(
        60,
        lambda i: requests.post(
            f"{api}/coupon/v1/acme/coupons/MULTI/redemptions",
            json=order(customerNumber=f"C{i}"),
            headers=on_behalf,
            timeout=30,
        ),
    )
    assert {a.status_code for a in answers} == {201}
    # 60 requests over 3 workers: a worker reporting only its own samples shows fewer.
    for _ in range(6):  # whichever worker answers the scrape, the sums are the same
        text = requests.get(f"{api}/metrics", timeout=10).text
        count = sample(
            text, "http_request_duration_seconds_count", method="POST", route=ROUTE, status="201"
        )
        assert count == 60
        assert sample(text, "coupon_redemptions_total", outcome="redeemed", dialect="tenant") == 60
    # The same sums on the internal port the gunicorn master serves (METRICS_PORT), which
    # production uses while the public listener serves no /metrics at all.
    text = requests.get(f"http://127.0.0.1:{internal}/metrics", timeout=10).text
    assert sample(text, "coupon_redemptions_total", outcome="redeemed", dialect="tenant") == 60
    assert "outbox_pending_messages" in text
