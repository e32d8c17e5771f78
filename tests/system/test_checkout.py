"""Checkout under real parallel clients: gunicorn with 4 workers on PostgreSQL.

Holds count against limits exactly, expire by themselves (the service's clock moved
by CLOCK_OFFSET_SECONDS, not by sleeping), and carts sharing limited coupons in
different orders neither deadlock nor exceed a limit nor redeem half a cart.
"""

import json
import random
from collections import Counter

import requests
from sqlalchemy import create_engine, text

from app.engine.catalog.coupons import MAX_AUTOMATIC
from tests.api.conftest import coupon_body, order
from tests.support import client_token, start_gunicorn, stop
from tests.system.conftest import app_env, run_flask, sql, start_worker, wait_for, worker_env
from tests.system.test_concurrency import fire, outcome

TTL = 900
# Events are written only when they have somewhere to go; nothing delivers them here.
EVENTS = {"EVENTS_URL": "http://127.0.0.1:9/events"}


def _redeemed(url, code):
    rows = sql(url, "SELECT redemption_count FROM coupons WHERE code = :code", code=code)
    return rows[0][0]


def _service(url, processes):
    """Tenant acme on gunicorn with 4 workers; its URL, gunicorn and two tokens."""
    creds = json.loads(run_flask(url, "tenant", "create", "acme", "--currency", "USD"))
    gunicorn, api = start_gunicorn(app_env(url, **EVENTS), workers=4)
    processes.append(gunicorn)
    manage = client_token(api, creds, "hybris.coupon_manage")
    return api, gunicorn, manage, client_token(api, creds, "hybris.coupon_redeem_on_behalf")


def test_racing_holds_take_exactly_the_limit_and_expire_by_themselves(fresh_pg, processes):
    api, gunicorn, manage, on_behalf = _service(fresh_pg, processes)
    base = f"{api}/coupon/v1/acme/coupons"
    requests.post(
        base, json=coupon_body(code="TWENTY", maxRedemptions=20), headers=manage, timeout=10
    ).raise_for_status()

    def race(tag):
        return fire(
            100,
            lambda i: requests.post(
                f"{base}/TWENTY/reservations",
                json=order(customerNumber=f"{tag}{i:03d}", ttlSeconds=TTL),
                headers=on_behalf,
                timeout=60,
            ),
        )

    first = race("A")
    counts = Counter(outcome(r) for r in first)
    assert counts == {(201, None): 20, (400, "coupon_redemptions_exceeded"): 80}, counts
    held = [r.json()["id"] for r in first if r.status_code == 201]
    # The holds keep the uses from plain redemptions too.
    refused = requests.post(
        f"{base}/TWENTY/redemptions", json=order(customerNumber="X"), headers=on_behalf, timeout=10
    )
    assert refused.json()["type"] == "coupon_redemptions_exceeded"
    assert _redeemed(fresh_pg, "TWENTY") == 0

    # The same service, its clock moved past the holds' expiry: no job has run.
    stop(gunicorn)
    processes.remove(gunicorn)
    moved = app_env(fresh_pg, CLOCK_OFFSET_SECONDS=str(TTL + 60), **EVENTS)
    gunicorn, api = start_gunicorn(moved, workers=4)
    processes.append(gunicorn)
    base = f"{api}/coupon/v1/acme/coupons"
    late = requests.post(
        f"{base}/TWENTY/reservations/{held[0]}/confirm", headers=manage, timeout=10
    )
    assert (late.status_code, late.json()["type"]) == (410, "reservation_expired")
    listed = requests.get(
        f"{base}/TWENTY/reservations?pageSize=100", headers=manage, timeout=10
    ).json()
    assert Counter(h["status"] for h in listed) == {"EXPIRED": 20}

    second = race("B")
    counts = Counter(outcome(r) for r in second)
    assert counts == {(201, None): 20, (400, "coupon_redemptions_exceeded"): 80}, counts

    # Every live hold confirms (limits are not asked again), all at once.
    live = [r.json()["id"] for r in second if r.status_code == 201]
    confirmed = fire(
        20,
        lambda i: requests.post(
            f"{base}/TWENTY/reservations/{live[i]}/confirm", headers=manage, timeout=60
        ),
    )
    assert Counter(r.status_code for r in confirmed) == {201: 20}
    assert _redeemed(fresh_pg, "TWENTY") == 20
    events = sql(
        fresh_pg, "SELECT count(*) FROM outbox_messages WHERE topic = 'hybris.coupon.redemption'"
    )
    assert events[0][0] == 20
    after = requests.post(
        f"{base}/TWENTY/reservations", json=order(customerNumber="Z"), headers=on_behalf, timeout=10
    )
    assert after.json()["type"] == "coupon_redemptions_exceeded"

    # The worker's housekeeping purges holds a retention period after they ended.
    assert sql(fresh_pg, "SELECT count(*) FROM reservations")[0][0] == 40
    start_worker(
        processes,
        worker_env(
            fresh_pg, CLOCK_OFFSET_SECONDS=str(3 * TTL), RESERVATION_RETENTION_SECONDS=str(TTL)
        ),
    )
    wait_for(lambda: sql(fresh_pg, "SELECT count(*) FROM reservations")[0][0] == 0)
    assert _redeemed(fresh_pg, "TWENTY") == 20  # the redemptions stay


LIMITS = {"SHARED_A": 12, "SHARED_B": 18, "SHARED_C": 25}


def test_concurrent_carts_over_shared_limited_coupons(fresh_pg, processes):
    api, _, manage, on_behalf = _service(fresh_pg, processes)
    for code, limit in LIMITS.items():
        body = coupon_body(
            code=code,
            discountAbsolute={"amount": 5, "currency": "USD"},
            restrictions=None,
            maxRedemptions=limit,
        )
        requests.post(
            f"{api}/coupon/v1/acme/coupons", json=body, headers=manage, timeout=10
        ).raise_for_status()
    deadlocks_before = sql(
        fresh_pg, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )[0][0]

    rng = random.Random(13)
    # Each cart a subset of the coupons, in its own order.
    carts = [rng.sample(sorted(LIMITS), k=rng.choice((2, 3))) for _ in range(50)]

    def checkout(i):
        return requests.post(
            f"{api}/coupon/v1/acme/carts/redemption",
            json={
                "customerNumber": f"C{i:03d}",
                "orderId": f"ORDER-{i:03d}",
                "orderTotal": {"amount": 100, "currency": "USD"},
                "items": [{"product": "SHOE", "quantity": 1, "price": 100}],
                "codes": carts[i],
            },
            headers=on_behalf,
            timeout=60,
        )

    responses = fire(50, checkout)
    statuses = Counter(outcome(r) for r in responses)
    assert set(statuses) <= {(201, None), (409, "cart_not_applicable")}, statuses
    assert statuses[(201, None)] > 0 and statuses[(409, "cart_not_applicable")] > 0, statuses

    # All or none, per cart: each order id has a redemption for every code or for none.
    rows = sql(
        fresh_pg,
        "SELECT r.order_id, c.code FROM redemptions r JOIN coupons c ON c.id = r.coupon_id",
    )
    redeemed: dict[str, set] = {}
    for order_id, code in rows:
        redeemed.setdefault(order_id, set()).add(code)
    for i, response in enumerate(responses):
        got = redeemed.get(f"ORDER-{i:03d}", set())
        if response.status_code == 201:
            assert got == set(carts[i]), (i, got, carts[i])
            assert {c["code"] for c in response.json()["codes"]} == set(carts[i])
        else:
            assert got == set(), (i, got)

    # No limit exceeded, the counters match the rows, and no deadlock happened.
    used = Counter(code for _, code in rows)
    for code, limit in LIMITS.items():
        assert used[code] <= limit, (code, used[code])
        assert _redeemed(fresh_pg, code) == used[code]
    deadlocks_after = sql(
        fresh_pg, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )[0][0]
    assert deadlocks_after == deadlocks_before
    # Carts were refused only for limits: some coupon is used up exactly.
    assert any(used[code] == limit for code, limit in LIMITS.items()), used


def test_an_automatic_promotion_goes_to_exactly_its_limit_of_carts(fresh_pg, processes):
    """40 carts at once, an automatic promotion limited to 10 and a code each: exactly 10
    carts get the promotion, every cart its code (all or none), counters equal rows."""
    api, _, manage, on_behalf = _service(fresh_pg, processes)
    base = f"{api}/coupon/v1/acme"
    weekend = coupon_body(
        code="WEEKEND",
        discountType="PERCENT",
        discountPercentage=10,
        discountAbsolute=None,
        restrictions=None,
        automatic=True,
        maxRedemptions=10,
    )
    five = coupon_body(code="FIVE", discountAbsolute={"amount": 5, "currency": "USD"})
    for body in (weekend, {**five, "restrictions": None}):
        requests.post(f"{base}/coupons", json=body, headers=manage, timeout=10).raise_for_status()

    def cart(i):
        body = {
            "orderTotal": {"amount": 100, "currency": "USD"},
            "items": [{"product": "shoe", "price": 100, "quantity": 1}],
            "codes": ["FIVE"],
            "orderId": f"cart-{i}",
            "customerNumber": f"C{i}",
        }
        return requests.post(f"{base}/carts/redemption", json=body, headers=on_behalf, timeout=60)

    answers = fire(40, cart)
    assert Counter(r.status_code for r in answers) == {201: 40}, [r.text for r in answers]
    granted = [r.json()["automatic"] for r in answers]
    assert sum(len(g) for g in granted) == 10
    assert all(r.json()["codes"][0]["redemptionId"] for r in answers)
    for code, count in (("WEEKEND", 10), ("FIVE", 40)):
        rows = sql(
            fresh_pg,
            "SELECT c.redemption_count, (SELECT count(*) FROM redemptions r"
            " WHERE r.coupon_id = c.id) FROM coupons c WHERE c.code = :code",
            code=code,
        )
        assert rows == [(count, count)], (code, rows)


SLOW_INSERTS = """
CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.2); RETURN NEW; END $$;
CREATE TRIGGER slow_insert BEFORE INSERT ON coupons FOR EACH ROW EXECUTE FUNCTION slow_insert();
"""


def test_racing_creates_never_pass_the_cap_on_live_automatic_promotions(fresh_pg, processes):
    """98 live automatic promotions, then 40 created at once: exactly 2 more fit under
    the tenant's cap of 100 (without the tenant row lock, several more got in)."""
    api, _, manage, _ = _service(fresh_pg, processes)
    base = f"{api}/coupon/v1/acme/coupons"

    def automatic(code):
        body = coupon_body(
            code=code,
            discountType="PERCENT",
            discountPercentage=1,
            discountAbsolute=None,
            restrictions=None,
            automatic=True,
        )
        return requests.post(base, json=body, headers=manage, timeout=60)

    for i in range(MAX_AUTOMATIC - 2):
        automatic(f"AUTO{i}").raise_for_status()
    # A slow insert widens the window between counting and committing, so a missing
    # lock shows every time rather than now and then.
    engine = create_engine(fresh_pg)
    with engine.begin() as connection:
        connection.execute(text(SLOW_INSERTS))
    engine.dispose()
    answers = fire(40, lambda i: automatic(f"RACE{i}"))
    assert Counter(r.status_code for r in answers) == {201: 2, 400: 38}, [r.text for r in answers]
    live = sql(fresh_pg, "SELECT count(*) FROM coupons WHERE automatic AND active AND NOT deleted")
    assert live == [(MAX_AUTOMATIC,)]
