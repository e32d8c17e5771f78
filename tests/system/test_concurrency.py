"""Limits hold exactly under real parallel clients: gunicorn, 4 workers, PostgreSQL."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.api.conftest import coupon_body, order
from tests.support import client_token as token


def fire(count, request):
    """Run `request(i)` from `count` threads released at the same instant."""
    barrier = threading.Barrier(count)

    def one(i):
        barrier.wait()
        return request(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def outcome(response):
    body = response.json() if response.content else {}
    return response.status_code, body.get("type")


def test_total_limit_is_exact(api, pg_tenant):
    manage = token(api, pg_tenant, "hybris.coupon_manage")
    on_behalf = token(api, pg_tenant, "hybris.coupon_redeem_on_behalf")
    created = requests.post(
        f"{api}/coupon/v1/acme/coupons",
        json=coupon_body(code="TWENTY", maxRedemptions=20),
        headers=manage,
        timeout=10,
    )
    assert created.status_code == 201

    responses = fire(
        100,
        lambda i: requests.post(
            f"{api}/coupon/v1/acme/coupons/TWENTY/redemptions",
            json=order(customerNumber=f"C{i:04d}"),
            headers=on_behalf,
            timeout=60,
        ),
    )
    counts = Counter(outcome(r) for r in responses)
    assert counts == {(201, None): 20, (400, "coupon_redemptions_exceeded"): 80}, counts
    coupon = requests.get(f"{api}/coupon/v1/acme/coupons/TWENTY", headers=manage, timeout=10)
    assert coupon.json()["redemptionCount"] == 20
    assert coupon.json()["status"] == "USED"
    listed = requests.get(
        f"{api}/coupon/v1/acme/coupons/TWENTY/redemptions?pageSize=100", headers=manage, timeout=10
    )
    assert listed.headers["X-Total-Count"] == "20"


def test_per_customer_limit_is_exact(api, pg_tenant):
    manage = token(api, pg_tenant, "hybris.coupon_manage")
    on_behalf = token(api, pg_tenant, "hybris.coupon_redeem_on_behalf")
    requests.post(
        f"{api}/coupon/v1/acme/coupons",
        json=coupon_body(code="ONCE_EACH", maxRedemptionsPerCustomer=1),
        headers=manage,
        timeout=10,
    ).raise_for_status()
    responses = fire(
        30,
        lambda i: requests.post(
            f"{api}/coupon/v1/acme/coupons/ONCE_EACH/redemptions",
            json=order(customerNumber="C0123456789"),
            headers=on_behalf,
            timeout=60,
        ),
    )
    counts = Counter(outcome(r) for r in responses)
    assert counts == {(201, None): 1, (400, "coupon_redemptions_exceeded"): 29}, counts
    coupon = requests.get(f"{api}/coupon/v1/acme/coupons/ONCE_EACH", headers=manage, timeout=10)
    assert coupon.json()["redemptionCount"] == 1


def test_one_idempotency_key_creates_one_redemption(api, pg_tenant):
    manage = token(api, pg_tenant, "hybris.coupon_manage")
    on_behalf = token(api, pg_tenant, "hybris.coupon_redeem_on_behalf")
    requests.post(
        f"{api}/coupon/v1/acme/coupons",
        json=coupon_body(code="IDEMPOTENT"),
        headers=manage,
        timeout=10,
    ).raise_for_status()
    headers = {**on_behalf, "Idempotency-Key": "checkout-7f3a"}
    responses = fire(
        20,
        lambda i: requests.post(
            f"{api}/coupon/v1/acme/coupons/IDEMPOTENT/redemptions",
            json=order(customerNumber="C1"),
            headers=headers,
            timeout=60,
        ),
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
    coupon = requests.get(f"{api}/coupon/v1/acme/coupons/IDEMPOTENT", headers=manage, timeout=10)
    assert coupon.json()["redemptionCount"] == 1


def promo_redeem(api, headers, order_id):
    return requests.post(
        f"{api}/promocodes/redeem",
        json={
            "coupon": "TWO_GIFTS",
            "notGiftsAndNotDeliveryTotal": 600,
            "order": {"id": order_id, "items": [{"code": "pizza"}]},
        },
        headers=headers,
        timeout=60,
    )


def test_promo_times_is_exact(api, pg_tenant):
    admin = token(api, pg_tenant, "hybris.coupon_manage")
    user = token(api, pg_tenant, "hybris.coupon_redeem")
    requests.post(
        f"{api}/promocodes/add",
        json={"coupon": "TWO_GIFTS", "code": "FREE_PIZZA", "times": 2, "hasProduct": "pizza"},
        headers=admin,
        timeout=10,
    ).raise_for_status()

    responses = fire(20, lambda i: promo_redeem(api, user, f"order-{i}"))
    assert {r.status_code for r in responses} == {200}
    gifts = Counter(tuple(r.json()["freeProducts"]) for r in responses)
    assert gifts == {("FREE_PIZZA",): 2, (): 18}, gifts
    refusals = Counter(tuple(r.json()["loyaltyProgramErrors"]) for r in responses)
    assert refusals[("Промокод больше не действует: исчерпан лимит использований",)] == 18
    coupon = requests.get(f"{api}/coupon/v1/acme/coupons/TWO_GIFTS", headers=admin, timeout=10)
    assert coupon.json()["redemptionCount"] == 2


def test_promo_one_order_id_redeems_once(api, pg_tenant):
    admin = token(api, pg_tenant, "hybris.coupon_manage")
    user = token(api, pg_tenant, "hybris.coupon_redeem")
    requests.post(
        f"{api}/promocodes/add",
        json={"coupon": "ONE_ORDER", "code": "FREE_PIZZA", "times": 5},
        headers=admin,
        timeout=10,
    ).raise_for_status()
    responses = fire(
        20,
        lambda i: requests.post(
            f"{api}/promocodes/redeem",
            json={"coupon": "ONE_ORDER", "order": {"id": "same-order"}},
            headers=user,
            timeout=60,
        ),
    )
    assert {tuple(r.json()["freeProducts"]) for r in responses} == {("FREE_PIZZA",)}
    coupon = requests.get(f"{api}/coupon/v1/acme/coupons/ONE_ORDER", headers=admin, timeout=10)
    assert coupon.json()["redemptionCount"] == 1


def test_promo_concurrent_adds_of_one_code(api, pg_tenant):
    admin = token(api, pg_tenant, "hybris.coupon_manage")
    responses = fire(
        10,
        lambda i: requests.post(
            f"{api}/promocodes/add",
            json={"coupon": "RACE" if i % 2 else "race", "code": "FREE_PIZZA"},
            headers=admin,
            timeout=60,
        ),
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 9}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"PROMO_IS_EXISTS"}


SLOW_COUPON_UPDATES = """
CREATE FUNCTION slow_coupon_update() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$;
CREATE TRIGGER slow_coupon_update BEFORE UPDATE ON coupons
  FOR EACH ROW EXECUTE FUNCTION slow_coupon_update();
"""


def test_the_autocommitted_redemption_stops_at_the_limit(fresh_pg, processes):
    """The redemption without an order id is one autocommitted statement: its guard alone
    keeps the limit. A slow update on the coupon row makes every racing worker read the
    count before the others' bumps commit, so a missing guard over-redeems every run."""
    from sqlalchemy import create_engine, text

    from tests.system.conftest import sql
    from tests.system.test_checkout import _service

    api, _, manage, on_behalf = _service(fresh_pg, processes)
    base = f"{api}/coupon/v1/acme/coupons"
    body = coupon_body(code="TWENTY", maxRedemptions=20, restrictions=None)
    requests.post(base, json=body, headers=manage, timeout=10).raise_for_status()
    engine = create_engine(fresh_pg)
    with engine.begin() as connection:
        connection.execute(text(SLOW_COUPON_UPDATES))
    engine.dispose()

    responses = fire(
        60,
        lambda i: requests.post(
            f"{base}/TWENTY/redemptions",
            json=order(customerNumber=f"S{i:03d}"),
            headers=on_behalf,
            timeout=60,
        ),
    )
    counts = Counter(outcome(r) for r in responses)
    assert counts == {(201, None): 20, (400, "coupon_redemptions_exceeded"): 40}, counts
    [(counter, rows)] = sql(
        fresh_pg,
        "SELECT c.redemption_count, (SELECT count(*) FROM redemptions r WHERE r.coupon_id = c.id)"
        " FROM coupons c WHERE c.code = 'TWENTY'",
    )
    assert counter == rows == 20
