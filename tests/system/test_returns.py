"""Returns racing redemptions on PostgreSQL with 4 gunicorn workers: a use comes back
once however many rollbacks race, and the counter always equals the live rows."""

from collections import Counter

import requests
from sqlalchemy import create_engine, text

from tests.api.conftest import coupon_body, order
from tests.system.conftest import sql
from tests.system.test_checkout import _service
from tests.system.test_concurrency import fire, outcome

LIMIT = 20
SLOW_UPDATES = """
CREATE FUNCTION slow_update() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$;
CREATE TRIGGER slow_update BEFORE UPDATE ON redemptions FOR EACH ROW EXECUTE FUNCTION slow_update();
"""


def test_rollbacks_racing_redemptions_give_each_use_back_once(fresh_pg, processes):
    """20 redemptions of a coupon limited to 20; then each rolled back twice (40
    rollbacks) racing 40 new redemptions: 20 rollbacks succeed, 20 are 409; the counter
    equals the rows not rolled back, never above 20; and exactly the uses not taken by
    the race are left for later."""
    api, _, manage, on_behalf = _service(fresh_pg, processes)
    base = f"{api}/coupon/v1/acme"
    body = coupon_body(code="TWENTY", maxRedemptions=LIMIT, restrictions=None)
    requests.post(f"{base}/coupons", json=body, headers=manage, timeout=10).raise_for_status()

    def redeem(order_id):
        return requests.post(
            f"{base}/coupons/TWENTY/redemptions",
            json=order(customerNumber="C1", orderId=order_id),
            headers=on_behalf,
            timeout=60,
        )

    first = []
    for i in range(LIMIT):
        made = redeem(f"first-{i}")
        made.raise_for_status()
        first.append(made.json()["id"])

    # A slow update widens the window between reading a redemption's status and
    # committing its rollback, so a missing lock shows every run, not now and then.
    engine = create_engine(fresh_pg)
    with engine.begin() as connection:
        connection.execute(text(SLOW_UPDATES))
    engine.dispose()

    def one(i):
        if i % 2:
            return "new", redeem(f"new-{i}")
        target = first[(i // 2) % LIMIT]
        return "rollback", requests.post(
            f"{base}/redemptions/{target}/rollback",
            json={"reason": "returned"},
            headers=manage,
            timeout=60,
        )

    answers = fire(4 * LIMIT, one)
    rollbacks = Counter(outcome(r) for kind, r in answers if kind == "rollback")
    assert rollbacks == {(200, None): LIMIT, (409, "redemption_already_rolled_back"): LIMIT}
    new = Counter(outcome(r) for kind, r in answers if kind == "new")
    assert set(new) <= {(201, None), (400, "coupon_redemptions_exceeded")}, new
    taken = new[(201, None)]

    def counter_and_live():
        return sql(
            fresh_pg,
            "SELECT c.redemption_count, (SELECT count(*) FROM redemptions r WHERE"
            " r.coupon_id = c.id AND r.status <> 'ROLLED_BACK') FROM coupons c"
            " WHERE c.code = 'TWENTY'",
        )[0]

    assert counter_and_live() == (taken, taken)
    # What the race did not take is there, exactly: that many more, then no more.
    for i in range(LIMIT - taken):
        redeem(f"later-{i}").raise_for_status()
    refused = redeem("one-too-many")
    assert outcome(refused) == (400, "coupon_redemptions_exceeded")
    assert counter_and_live() == (LIMIT, LIMIT)
