"""Budgets under real concurrency: PostgreSQL, gunicorn with 4 workers, racing clients.
A campaign's budget is shared by its codes and decided under its row lock: exact."""

from collections import Counter

import requests

from tests.api.conftest import order
from tests.system.conftest import sql, start_worker, wait_for, worker_env
from tests.system.test_checkout import _service
from tests.system.test_concurrency import fire, outcome


def _campaign(api, manage, processes, url, count, budget):
    created = requests.post(
        f"{api}/coupon/v1/acme/campaigns",
        json={
            "name": "budgeted",
            "count": count,
            "template": {
                "discountType": "ABSOLUTE",
                "discountAbsolute": {"amount": 25, "currency": "USD"},
            },
            "budget": budget,
        },
        headers=manage,
        timeout=10,
    )
    assert created.status_code == 202, created.text
    link = f"{api}/coupon/v1/acme/campaigns/{created.json()['id']}"
    wait_for(
        lambda: requests.get(link, headers=manage, timeout=10).json()["status"] == "completed",
        timeout=60,
    )
    export = requests.get(f"{link}/codes", headers=manage, timeout=30).text.splitlines()
    return link, [line.split(",")[0] for line in export[1:]]


def test_racing_redemptions_never_overspend_a_campaign_budget(fresh_pg, processes):
    """100 codes, 500 USD at 25 each: of 100 racing redemptions of distinct codes exactly
    20 pass; one customer racing 30 codes of a one-per-customer campaign gets exactly 1."""
    api, _, manage, on_behalf = _service(fresh_pg, processes)
    start_worker(processes, worker_env(fresh_pg))
    money = {"maxDiscountTotal": {"amount": 500, "currency": "USD"}}
    link, codes = _campaign(api, manage, processes, fresh_pg, 100, money)

    def redeem(code, customer, order_id):
        return requests.post(
            f"{api}/coupon/v1/acme/coupons/{code}/redemptions",
            json=order(total=100, discount=25, customerNumber=customer, orderId=order_id),
            headers=on_behalf,
            timeout=60,
        )

    answers = fire(100, lambda i: redeem(codes[i], f"C{i}", f"o-{i}"))
    counts = Counter(outcome(r) for r in answers)
    assert counts == {(201, None): 20, (400, "coupon_budget_exhausted"): 80}, counts
    budget = requests.get(link, headers=manage, timeout=10).json()["totals"]["budget"]
    assert budget["used"] == {"amount": 500, "currency": "USD"}
    [(spent,)] = sql(
        fresh_pg,
        "SELECT sum(r.discount_amount) FROM redemptions r JOIN coupons c ON c.id = r.coupon_id"
        " WHERE c.campaign_id IS NOT NULL",
    )
    assert spent == 500

    once = {"maxRedemptionsPerCustomer": 1}
    _, others = _campaign(api, manage, processes, fresh_pg, 30, once)
    answers = fire(30, lambda i: redeem(others[i], "SAME", f"p-{i}"))
    counts = Counter(outcome(r) for r in answers)
    assert counts == {(201, None): 1, (400, "campaign_customer_limit"): 29}, counts
