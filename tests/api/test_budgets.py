"""Budgets: a coupon's money, a campaign's redemptions, money and uses per customer;
refused in every dialect's way, reserved by holds, given back by returns, read back."""

import pytest

from tests.api.conftest import coupon_body, order
from tests.api.test_campaigns import create, export, run_jobs

BASE = "/coupon/v1/acme"
USD = "USD"


def money(amount, currency=USD):
    return {"amount": amount, "currency": currency}


def _coupon(client, manage, code="BUDGET", budget=50, **overrides):
    body = coupon_body(code=code, restrictions=None, budget={"maxDiscountTotal": money(budget)})
    made = client.post(f"{BASE}/coupons", json={**body, **overrides}, headers=manage)
    assert made.status_code == 201, made.get_json()


def _redeem(client, headers, code="BUDGET", order_id="o-1", discount=20, **extra):
    body = order(total=100, discount=discount, orderId=order_id, customerNumber="C1", **extra)
    return client.post(f"{BASE}/coupons/{code}/redemptions", json=body, headers=headers)


def _budget(client, manage, code="BUDGET"):
    return client.get(f"{BASE}/coupons/{code}", headers=manage).get_json()["budget"]


def test_a_coupon_budget_stops_what_it_cannot_pay(client, manage, on_behalf):
    _coupon(client, manage, discountAbsolute=money(20))
    assert _redeem(client, on_behalf, order_id="o-1").status_code == 201
    assert _redeem(client, on_behalf, order_id="o-2").status_code == 201
    third = _redeem(client, on_behalf, order_id="o-3")
    assert (third.status_code, third.get_json()["type"]) == (400, "coupon_budget_exhausted")
    # 10 is left: a smaller discount still fits, validation says the same.
    check = client.post(
        f"{BASE}/coupons/BUDGET/validation",
        json=order(total=100, discount=20, customerNumber="C1"),
        headers=on_behalf,
    )
    assert check.get_json()["type"] == "coupon_budget_exhausted"
    assert _redeem(client, on_behalf, order_id="o-4", discount=10).status_code == 201
    assert _budget(client, manage) == {
        "maxDiscountTotal": money(50),
        "used": money(50),
        "held": money(0),
        "remaining": money(0),
    }


def test_returns_and_a_raised_budget_give_room_back(client, manage, on_behalf):
    _coupon(client, manage, budget=20, discountAbsolute=money(20))
    first = _redeem(client, on_behalf).get_json()["id"]
    assert _redeem(client, on_behalf, order_id="o-2").get_json()["type"] == (
        "coupon_budget_exhausted"
    )
    part = {"reason": "returned", "amount": money(5)}
    client.post(f"{BASE}/redemptions/{first}/rollback", json=part, headers=manage)
    assert _budget(client, manage)["remaining"] == money(5)
    client.post(f"{BASE}/redemptions/{first}/rollback", json={"reason": "x"}, headers=manage)
    assert _budget(client, manage)["remaining"] == money(20)
    assert _redeem(client, on_behalf, order_id="o-3").status_code == 201
    raised = client.patch(
        f"{BASE}/coupons/BUDGET",
        json={"budget": {"maxDiscountTotal": money(100)}},
        headers=manage,
    )
    assert raised.status_code == 200, raised.get_json()
    assert raised.get_json()["budget"]["remaining"] == money(80)
    # Lowered below what is used: nothing more, nothing taken back.
    lowered = client.patch(
        f"{BASE}/coupons/BUDGET", json={"budget": {"maxDiscountTotal": money(10)}}, headers=manage
    )
    assert lowered.get_json()["budget"]["used"] == money(20)
    assert lowered.get_json()["budget"]["remaining"] == money(0)
    removed = client.patch(f"{BASE}/coupons/BUDGET", json={"budget": None}, headers=manage)
    assert removed.get_json()["budget"] is None
    assert _redeem(client, on_behalf, order_id="o-4").status_code == 201


def test_holds_reserve_budget_and_release_gives_it_back(client, manage, on_behalf):
    _coupon(client, manage, budget=30, discountAbsolute=money(20))
    held = client.post(
        f"{BASE}/coupons/BUDGET/reservations",
        json=order(total=100, discount=20, customerNumber="C2", orderId="h-1"),
        headers=on_behalf,
    )
    assert held.status_code == 201, held.get_json()
    assert _budget(client, manage)["held"] == money(20)
    assert _redeem(client, on_behalf).get_json()["type"] == "coupon_budget_exhausted"
    client.delete(held.headers["Location"], headers=on_behalf)
    assert _budget(client, manage)["held"] == money(0)
    assert _redeem(client, on_behalf).status_code == 201


@pytest.mark.parametrize(
    "budget, field",
    [
        ({"maxDiscountTotal": money(10, "EUR")}, "budget.maxDiscountTotal.currency"),
        ({"maxDiscountTotal": money(0)}, "budget.maxDiscountTotal.amount"),
        ({"maxDiscountTotal": money("0.001")}, "budget.maxDiscountTotal.amount"),
        ({}, "budget.maxDiscountTotal"),
    ],
)
def test_bad_budgets_are_refused(client, manage, budget, field):
    body = coupon_body(code="BAD", budget=budget)
    refused = client.post(f"{BASE}/coupons", json=body, headers=manage)
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["details"][0]["field"] == field


def test_the_promo_dialect_says_the_budget_is_spent(client, manage, on_behalf):
    _coupon(client, manage, code="PROMO_BUDGET", budget=5, allowAnonymous=True)
    checked = client.post(
        "/promocodes/",
        json={"coupon": "PROMO_BUDGET", "notGiftsAndNotDeliveryTotal": 600, "order": {"items": []}},
        headers={**on_behalf, "Accept-Language": "en"},
    )
    assert checked.get_json()["loyaltyProgramErrors"] == ["The promo code's budget is spent"]


def test_qualifications_never_offer_a_spent_budget(client, manage, on_behalf):
    _coupon(client, manage, code="OFFERED", budget=100, listable=True)
    _coupon(client, manage, code="SPENT", budget=10, listable=True)
    body = {"orderTotal": money(100), "customerNumber": "C1"}
    listed = client.post(f"{BASE}/qualifications", json=body, headers=on_behalf).get_json()
    assert [q["code"] for q in listed] == ["OFFERED"]  # 25 off does not fit in 10


# --- campaigns --------------------------------------------------------------------------


def _campaign(app, client, manage, count=5, **budget):
    created = create(client, manage, count=count, budget=budget or None)
    run_jobs(app)
    return created["id"], [r["code"] for r in export(client, manage, created["id"])]


def _use(client, headers, code, customer, order_id):
    body = order(total=50, discount=5, orderId=order_id, customerNumber=customer)
    return client.post(f"{BASE}/coupons/{code}/redemptions", json=body, headers=headers)


def test_a_campaign_budget_is_shared_by_its_codes(app, client, manage, redeem, on_behalf):
    campaign, codes = _campaign(app, client, manage, maxRedemptions=2)
    assert _use(client, on_behalf, codes[0], "C1", "a").status_code == 201
    assert _use(client, on_behalf, codes[1], "C2", "b").status_code == 201
    third = _use(client, on_behalf, codes[2], "C3", "c")
    assert third.get_json()["type"] == "coupon_budget_exhausted"
    totals = client.get(f"{BASE}/campaigns/{campaign}", headers=manage).get_json()["totals"]
    assert totals["budget"]["redemptionsUsed"] == 2
    assert totals["budget"]["redemptionsRemaining"] == 0


def test_one_code_per_customer_across_a_campaign(app, client, manage, on_behalf):
    _, codes = _campaign(app, client, manage, maxRedemptionsPerCustomer=1)
    assert _use(client, on_behalf, codes[0], "C1", "a").status_code == 201
    again = _use(client, on_behalf, codes[1], "C1", "b")
    assert again.get_json()["type"] == "campaign_customer_limit"
    assert _use(client, on_behalf, codes[1], "C2", "b").status_code == 201


def test_a_budget_set_later_counts_what_was_used(app, client, manage, on_behalf):
    campaign, codes = _campaign(app, client, manage)
    assert _use(client, on_behalf, codes[0], "C1", "a").status_code == 201
    patched = client.patch(
        f"{BASE}/campaigns/{campaign}",
        json={"budget": {"maxDiscountTotal": money(8)}},
        headers=manage,
    )
    assert patched.status_code == 200, patched.get_json()
    totals = client.get(f"{BASE}/campaigns/{campaign}", headers=manage).get_json()["totals"]
    assert totals["budget"]["used"] == money(5) and totals["budget"]["remaining"] == money(3)
    assert _use(client, on_behalf, codes[1], "C2", "b").get_json()["type"] == (
        "coupon_budget_exhausted"
    )


def test_a_cart_of_two_codes_of_one_campaign_shares_its_budget(app, client, manage, on_behalf):
    _, codes = _campaign(app, client, manage, maxDiscountTotal=money(8))
    cart = {
        "orderTotal": money(100),
        "items": [{"product": "shoe", "price": 100, "quantity": 1}],
        "codes": codes[:2],
        "orderId": "cart-1",
        "customerNumber": "C1",
    }
    # Each alone fits (5 of 8), together they do not (10): all or none.
    refused = client.post(f"{BASE}/carts/redemption", json=cart, headers=on_behalf)
    assert refused.status_code == 409, refused.get_json()
    assert [d["type"] for d in refused.get_json()["details"]] == ["coupon_budget_exhausted"]
    alone = client.post(
        f"{BASE}/carts/redemption", json={**cart, "codes": codes[:1]}, headers=on_behalf
    )
    assert alone.status_code == 201


def test_a_template_takes_no_coupon_budget(client, manage):
    template = {
        "discountType": "PERCENT",
        "discountPercentage": 10,
        "budget": {"maxDiscountTotal": money(10)},
    }
    refused = client.post(
        f"{BASE}/campaigns", json={"name": "x", "count": 1, "template": template}, headers=manage
    )
    assert refused.status_code == 400


def test_an_expired_hold_gives_its_budget_back(client, manage, on_behalf):
    from app.database import set_clock_offset

    _coupon(client, manage, budget=20, discountAbsolute=money(20))
    body = order(total=100, discount=20, customerNumber="C2", orderId="h-1", ttlSeconds=60)
    held = client.post(f"{BASE}/coupons/BUDGET/reservations", json=body, headers=on_behalf)
    assert held.status_code == 201
    assert _redeem(client, on_behalf).get_json()["type"] == "coupon_budget_exhausted"
    try:
        set_clock_offset(120)  # the hold's 60 seconds are over
        assert _budget(client, manage)["held"] == money(0)
        assert _redeem(client, on_behalf).status_code == 201
    finally:
        set_clock_offset(0)


def test_a_spent_budget_is_announced_once(app, manage, on_behalf, another_app, db):
    from app.models import OutboxMessage

    loud = another_app(EVENTS_URL="http://127.0.0.1:9/events").test_client()
    _coupon(loud, manage, budget=20, discountAbsolute=money(20))
    assert _redeem(loud, on_behalf, order_id="o-1").status_code == 201
    for n in range(3):
        refused = _redeem(loud, on_behalf, order_id=f"o-{n + 2}")
        assert refused.get_json() == {
            "status": 400,
            "type": "coupon_budget_exhausted",
            "message": "The coupon's budget cannot pay for this discount",
        }
    events = db.session.query(OutboxMessage).filter_by(topic="budget.exhausted").all()
    assert [e.payload for e in events] == [
        {"tenant": "acme", "budget": "coupon", "couponCode": "BUDGET"}
    ]
    # A changed budget's exhaustion is news again.
    loud.patch(
        f"{BASE}/coupons/BUDGET", json={"budget": {"maxDiscountTotal": money(30)}}, headers=manage
    )
    _redeem(loud, on_behalf, order_id="o-9")
    assert db.session.query(OutboxMessage).filter_by(topic="budget.exhausted").count() == 2


# --- abuse found by review: each attack, reproduced ------------------------------------


def test_a_cart_confirming_its_hold_pays_only_the_hold_from_the_budget(client, manage, on_behalf):
    # The hold reserved 10 of 30; the same order id as a bigger cart may not take 40.
    percent = {"discountType": "PERCENT", "discountPercentage": 20, "discountAbsolute": None}
    _coupon(client, manage, budget=30, **percent)
    held = client.post(
        f"{BASE}/coupons/BUDGET/reservations",
        json=order(total=50, discount=10, customerNumber="C1", orderId="h-1"),
        headers=on_behalf,
    )
    assert held.status_code == 201, held.get_json()

    def cart(price):
        return {
            "orderTotal": money(price),
            "items": [{"product": "shoe", "price": price, "quantity": 1}],
            "codes": ["BUDGET"],
            "orderId": "h-1",
            "customerNumber": "C1",
        }

    refused = client.post(f"{BASE}/carts/redemption", json=cart(200), headers=on_behalf)
    assert refused.status_code == 409, refused.get_json()
    assert [d["type"] for d in refused.get_json()["details"]] == ["coupon_budget_exhausted"]
    assert _budget(client, manage)["used"] == money(0)
    # More than the hold, within what the budget has besides: fine.
    taken = client.post(f"{BASE}/carts/redemption", json=cart(150), headers=on_behalf)
    assert taken.status_code == 201, taken.get_json()
    assert _budget(client, manage) == {
        "maxDiscountTotal": money(30),
        "used": money(30),
        "held": money(0),
        "remaining": money(0),
    }


def test_a_budget_counts_only_its_own_currency(client, manage, on_behalf):
    body = coupon_body(code="ANY", restrictions=None, discountType="PERCENT")
    body.update(discountPercentage=10, discountAbsolute=None)
    assert client.post(f"{BASE}/coupons", json=body, headers=manage).status_code == 201
    euros = _redeem(client, on_behalf, code="ANY", currency="EUR", discount=10)
    assert euros.status_code == 201, euros.get_json()
    set_later = client.patch(
        f"{BASE}/coupons/ANY", json={"budget": {"maxDiscountTotal": money(15)}}, headers=manage
    )
    assert set_later.get_json()["budget"]["used"] == money(0)  # 10 EUR are not dollars
    assert _redeem(client, on_behalf, code="ANY", order_id="o-2", discount=10).status_code == 201
    # Returning the euros gives the dollar budget nothing back.
    url = f"{BASE}/redemptions/{euros.get_json()['id']}/rollback"
    back = client.post(url, json={"reason": "x"}, headers=manage)
    assert back.status_code == 200, back.get_json()
    assert _budget(client, manage, "ANY")["used"] == money(10)
    other = _redeem(client, on_behalf, code="ANY", order_id="o-3", currency="EUR", discount=1)
    assert other.get_json()["type"] == "coupon_currency_incorrect"


@pytest.mark.parametrize("path", ["coupons/BUDGET", "campaigns/{campaign}"])
def test_an_empty_budget_is_refused_not_a_silent_removal(app, client, manage, path):
    _coupon(client, manage)
    campaign, _ = _campaign(app, client, manage, count=1, maxRedemptions=3)
    url = f"{BASE}/{path.format(campaign=campaign)}"
    refused = client.patch(url, json={"budget": {}}, headers=manage)
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["details"][0]["field"] == "budget"
    read = client.get(url, headers=manage).get_json()
    assert (read.get("budget") or read["totals"]["budget"]) is not None


@pytest.mark.parametrize(
    "budget, message",
    [
        ({"maxDiscountTotal": money(10, "EUR")}, "Must be in the codes' currency, USD"),
        ({"maxDiscountTotal": money(0)}, "Must be positive and not absurd"),
    ],
)
def test_a_campaign_budget_is_money_the_codes_can_spend(client, manage, budget, message):
    refused = create(client, manage, expect=400, count=1, budget=budget)
    assert refused["details"][0] == {
        "field": "budget.maxDiscountTotal",
        "type": "invalid",
        "message": message,
    }
