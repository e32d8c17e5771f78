"""Budgets against holds, campaigns changed mid-flight and other currencies: what a
review's second round of attacks found, each reproduced."""

from app.extensions import db
from app.models import Campaign
from tests.api.conftest import coupon_body, order
from tests.api.test_budgets import BASE, _budget, _campaign, money

PERCENT = {"discountType": "PERCENT", "discountPercentage": 10, "discountAbsolute": None}


def _coupon(client, manage, code, **overrides):
    body = {**coupon_body(code=code, restrictions=None), **overrides}
    made = client.post(f"{BASE}/coupons", json=body, headers=manage)
    assert made.status_code == 201, made.get_json()


def _hold(client, headers, code, order_id, **amounts):
    body = order(**{"total": 100, "discount": 25, **amounts}, customerNumber="C1", orderId=order_id)
    held = client.post(f"{BASE}/coupons/{code}/reservations", json=body, headers=headers)
    assert held.status_code == 201, held.get_json()


def _cart(codes, order_id, total=100):
    return {
        "orderTotal": money(total),
        "items": [{"product": "shoe", "price": total, "quantity": 1}],
        "codes": codes,
        "orderId": order_id,
        "customerNumber": "C1",
    }


def test_a_campaign_budgeted_while_a_use_is_decided_counts_that_use(
    app, client, manage, on_behalf, another_app, monkeypatch
):
    from app.engine.usage import rows

    campaign, codes = _campaign(app, client, manage, count=2)
    other, real, done = another_app().test_client(), rows.order_row, []

    def budget_set_meanwhile(*args, **kwargs):
        # The use was read unbudgeted; the budget commits before it is written.
        if not done:
            body = {"budget": {"maxRedemptions": 1}}
            done.append(other.patch(f"{BASE}/campaigns/{campaign}", json=body, headers=manage))
        return real(*args, **kwargs)

    monkeypatch.setattr(rows, "order_row", budget_set_meanwhile)
    first = order(total=50, discount=5, orderId="a", customerNumber="C1")
    taken = client.post(f"{BASE}/coupons/{codes[0]}/redemptions", json=first, headers=on_behalf)
    assert taken.status_code == 201, taken.get_json()
    assert done[0].status_code == 200, done[0].get_json()
    db.session.expire_all()
    assert db.session.get(Campaign, campaign).redemptions_used == 1
    second = order(total=50, discount=5, orderId="b", customerNumber="C2")
    refused = client.post(f"{BASE}/coupons/{codes[1]}/redemptions", json=second, headers=on_behalf)
    assert refused.get_json()["type"] == "coupon_budget_exhausted"


def test_a_campaigns_code_takes_no_budget_of_its_own(app, client, manage):
    _, codes = _campaign(app, client, manage, count=1)
    own = {"budget": {"maxDiscountTotal": money(5)}}
    refused = client.patch(f"{BASE}/coupons/{codes[0]}", json=own, headers=manage)
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["field"] == "budget"


def test_a_promo_hold_is_confirmed_without_restating_its_total(client, manage, redeem):
    made = client.post(
        "/promocodes/add", json={"coupon": "HELD", "code": "MUG", "fullPrice": 500}, headers=manage
    )
    assert made.status_code in (200, 201), made.get_json()
    held = {"coupon": "HELD", "notGiftsAndNotDeliveryTotal": 600, "order": {"id": "p-1"}}
    hold = client.post("/promocodes/redeem", json={**held, "ttlSeconds": 600}, headers=redeem)
    assert hold.status_code == 200, hold.get_json()
    other = {**held, "notGiftsAndNotDeliveryTotal": 650}
    assert client.post("/promocodes/redeem", json=other, headers=redeem).status_code == 409
    confirmed = client.post(
        "/promocodes/redeem", json={"coupon": "HELD", "order": {"id": "p-1"}}, headers=redeem
    )
    assert confirmed.status_code == 200, confirmed.get_json()


def test_a_hold_in_another_currency_is_not_the_budgets_money(client, manage, on_behalf):
    _coupon(client, manage, "ANY", **PERCENT)
    _hold(client, on_behalf, "ANY", "h-1", discount=10, currency="EUR")
    budget = {"budget": {"maxDiscountTotal": money(30)}}
    assert client.patch(f"{BASE}/coupons/ANY", json=budget, headers=manage).status_code == 200
    assert _budget(client, manage, "ANY")["held"] == money(0)  # euros hold no dollars
    euros = order(total=100, discount=10, currency="EUR", customerNumber="C1", orderId="h-1")
    taken = client.post(f"{BASE}/coupons/ANY/redemptions", json=euros, headers=on_behalf)
    assert taken.status_code == 201, taken.get_json()
    assert _budget(client, manage, "ANY")["used"] == money(0)
    back = client.post(
        f"{BASE}/redemptions/{taken.get_json()['id']}/rollback",
        json={"reason": "x"},
        headers=manage,
    )
    assert back.status_code == 200
    assert _budget(client, manage, "ANY")["used"] == money(0)


def test_a_hold_keeps_its_reservation_when_the_budget_is_lowered(client, manage, on_behalf):
    _coupon(client, manage, "LOWERED", budget={"maxDiscountTotal": money(50)})
    _hold(client, on_behalf, "LOWERED", "h-1")
    _hold(client, on_behalf, "LOWERED", "h-2")
    lowered = {"budget": {"maxDiscountTotal": money(30)}}
    assert client.patch(f"{BASE}/coupons/LOWERED", json=lowered, headers=manage).status_code == 200
    single = order(total=100, discount=25, orderId="h-1", customerNumber="C1")
    assert (
        client.post(
            f"{BASE}/coupons/LOWERED/redemptions", json=single, headers=on_behalf
        ).status_code
        == 201
    )
    cart = client.post(
        f"{BASE}/carts/redemption", json=_cart(["LOWERED"], "h-2"), headers=on_behalf
    )
    assert cart.status_code == 201, cart.get_json()  # as the single redemption: held is held
    assert _budget(client, manage, "LOWERED")["used"] == money(50)


def test_a_cart_confirms_the_hold_its_order_has_on_an_automatic_promotion(
    client, manage, on_behalf
):
    _coupon(
        client,
        manage,
        "AUTO",
        **PERCENT,
        automatic=True,
        maxRedemptionsPerCustomer=1,
        budget={"maxDiscountTotal": money(30)},
    )
    _hold(client, on_behalf, "AUTO", "h-1", discount=10)
    taken = client.post(f"{BASE}/carts/redemption", json=_cart([], "h-1"), headers=on_behalf)
    assert taken.status_code == 201, taken.get_json()
    assert [a["code"] for a in taken.get_json()["automatic"]] == ["AUTO"]
    assert _budget(client, manage, "AUTO") == {
        "maxDiscountTotal": money(30),
        "used": money(10),
        "held": money(0),
        "remaining": money(20),
    }


def test_a_cart_refused_for_a_spent_budget_announces_it(manage, on_behalf, another_app, db):
    from app.models import OutboxMessage

    loud = another_app(EVENTS_URL="http://127.0.0.1:9/events").test_client()
    _coupon(loud, manage, "SPENT", budget={"maxDiscountTotal": money(10)})
    for order_id in ("c-1", "c-2"):
        refused = loud.post(
            f"{BASE}/carts/redemption", json=_cart(["SPENT"], order_id), headers=on_behalf
        )
        assert refused.status_code == 409, refused.get_json()
    events = db.session.query(OutboxMessage).filter_by(topic="budget.exhausted").all()
    assert [e.payload for e in events] == [
        {"tenant": "acme", "budget": "coupon", "couponCode": "SPENT"}
    ]  # once
