"""Returns: redemptions rolled back in full or in part, one at a time or by order."""

import pytest

from app.extensions import db
from app.models import Coupon, OutboxMessage, Redemption
from tests.api.conftest import coupon_body, order
from tests.api.test_campaigns import create, export, run_jobs

BASE = "/coupon/v1/acme"


def _coupon(client, manage, code="RETURNS", **overrides):
    made = client.post(f"{BASE}/coupons", json=coupon_body(code=code, **overrides), headers=manage)
    assert made.status_code == 201, made.get_json()


def _redeem(client, headers, code="RETURNS", **extra):
    body = order(**{"customerNumber": "C1", "orderId": "o-1", **extra})
    made = client.post(f"{BASE}/coupons/{code}/redemptions", json=body, headers=headers)
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]


def _rollback(client, headers, redemption_id, **body):
    return client.post(
        f"{BASE}/redemptions/{redemption_id}/rollback",
        json={"reason": "returned", **body},
        headers=headers,
    )


def _count(code="RETURNS"):
    db.session.expire_all()
    return db.session.query(Coupon).filter_by(code=code).one().redemption_count


def test_a_full_rollback_gives_the_use_back_and_keeps_the_row(client, manage, on_behalf):
    _coupon(client, manage, maxRedemptions=1, maxRedemptionsPerCustomer=1)
    first = _redeem(client, on_behalf)
    assert _count() == 1
    answer = _rollback(client, manage, first)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "ROLLED_BACK" and body["reason"] == "returned"
    assert body["rolledBackAt"] and body["rolledBackAmount"] == {"amount": 25, "currency": "USD"}
    assert _count() == 0
    # The use is back for the coupon and for the customer, with a new order id.
    _redeem(client, on_behalf, orderId="o-2")
    listed = client.get(f"{BASE}/coupons/RETURNS/redemptions", headers=manage).get_json()
    assert [r["status"] for r in listed] == ["ROLLED_BACK", "REDEEMED"]
    again = _rollback(client, manage, first)
    assert (again.status_code, again.get_json()["type"]) == (409, "redemption_already_rolled_back")


def test_the_rolled_back_order_id_is_not_answered_as_redeemed(client, manage, on_behalf):
    _coupon(client, manage)
    _rollback(client, manage, _redeem(client, on_behalf))
    replay = client.post(
        f"{BASE}/coupons/RETURNS/redemptions",
        json=order(customerNumber="C1", orderId="o-1"),
        headers=on_behalf,
    )
    assert (replay.status_code, replay.get_json()["type"]) == (
        409,
        "redemption_already_rolled_back",
    )


def test_a_partial_rollback_gives_money_back_not_the_use(client, manage, on_behalf):
    _coupon(client, manage, maxRedemptions=1)
    made = _redeem(client, on_behalf)
    part = _rollback(client, manage, made, amount={"amount": 10, "currency": "USD"})
    assert part.get_json()["status"] == "PARTIALLY_ROLLED_BACK"
    assert part.get_json()["rolledBackAmount"] == {"amount": 10, "currency": "USD"}
    assert _count() == 1
    too_much = _rollback(client, manage, made, amount={"amount": 16, "currency": "USD"})
    assert too_much.status_code == 400 and too_much.get_json()["details"][0]["field"] == "amount"
    wrong = _rollback(client, manage, made, amount={"amount": 1, "currency": "EUR"})
    assert wrong.status_code == 400
    rest = _rollback(client, manage, made, amount={"amount": 15, "currency": "USD"})
    assert rest.get_json()["rolledBackAmount"] == {"amount": 25, "currency": "USD"}
    full = _rollback(client, manage, made)
    assert full.get_json()["status"] == "ROLLED_BACK" and _count() == 0


def test_an_order_rolls_back_every_code_at_once(client, manage, on_behalf):
    for code in ("CART_A", "CART_B"):
        _coupon(client, manage, code=code, restrictions=None)
    cart = {
        "orderTotal": {"amount": 100, "currency": "USD"},
        "items": [{"product": "shoe", "price": 100, "quantity": 1}],
        "codes": ["CART_A", "CART_B"],
        "orderId": "cart-1",
        "customerNumber": "C1",
    }
    assert client.post(f"{BASE}/carts/redemption", json=cart, headers=on_behalf).status_code == 201
    url = f"{BASE}/orders/cart-1/rollback"
    answer = client.post(url, json={"reason": "cancelled"}, headers=manage)
    assert answer.status_code == 200, answer.get_json()
    assert sorted(r["couponCode"] for r in answer.get_json()["redemptions"]) == ["CART_A", "CART_B"]
    assert {r["status"] for r in answer.get_json()["redemptions"]} == {"ROLLED_BACK"}
    assert _count("CART_A") == _count("CART_B") == 0
    again = client.post(url, json={"reason": "cancelled"}, headers=manage)
    assert again.status_code == 409
    missing = client.post(f"{BASE}/orders/nope/rollback", json={"reason": "x"}, headers=manage)
    assert (missing.status_code, missing.get_json()["type"]) == (404, "redemption_not_found")


def test_a_redeeming_client_rolls_back_only_its_customers(client, manage, on_behalf, redeem):
    _coupon(client, manage)
    made = _redeem(client, on_behalf)
    other = _rollback(client, on_behalf, made, customerNumber="C2")
    assert other.status_code == 404
    nobody = _rollback(client, redeem, made)
    assert nobody.status_code == 404
    anonymous = client.post(f"{BASE}/redemptions/{made}/rollback", json={"reason": "x"})
    assert anonymous.status_code == 401
    own = _rollback(client, on_behalf, made, customerNumber="C1")
    assert own.status_code == 200 and _count() == 0


def test_a_rollback_with_an_idempotency_key_is_answered_once(client, manage, on_behalf):
    _coupon(client, manage)
    made = _redeem(client, on_behalf)
    headers = {**manage, "Idempotency-Key": "return-1"}
    first = _rollback(client, headers, made)
    second = _rollback(client, headers, made)
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count() == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "x", "amount": {"amount": -1}}],
)
def test_bad_rollback_bodies_are_refused(client, manage, on_behalf, body):
    _coupon(client, manage)
    made = _redeem(client, on_behalf)
    answer = client.post(f"{BASE}/redemptions/{made}/rollback", json=body, headers=manage)
    assert (answer.status_code, answer.get_json()["type"]) == (400, "validation_failed")


def test_rollbacks_send_their_event(app, manage, on_behalf, another_app):
    loud = another_app(EVENTS_URL="http://127.0.0.1:9/events").test_client()
    _coupon(loud, manage)
    made = _redeem(loud, on_behalf)
    assert _rollback(loud, manage, made).status_code == 200
    topics = [m.topic for m in db.session.query(OutboxMessage).order_by(OutboxMessage.created_at)]
    assert topics[-1] == "redemption.rolled_back"


def test_campaign_totals_count_what_orders_kept(app, client, manage, redeem):
    created = create(client, manage, count=3)
    run_jobs(app)
    first, second, _ = (r["code"] for r in export(client, manage, created["id"]))
    made = [
        client.post(
            f"{BASE}/coupons/{code}/redemptions",
            json=order(total=50, discount=5, orderId=f"A-{code}"),
            headers=redeem,
        ).get_json()["id"]
        for code in (first, second)
    ]
    _rollback(client, manage, made[0])
    _rollback(client, manage, made[1], amount={"amount": 2, "currency": "USD"})
    totals = client.get(f"{BASE}/campaigns/{created['id']}", headers=manage).get_json()["totals"]
    assert totals == {
        "codes": 3,
        "codesUsed": 1,
        "redemptions": 1,
        "discountGiven": [{"amount": 3, "currency": "USD"}],
        "budget": None,
    }


def test_removing_a_rolled_back_redemption_gives_nothing_back_twice(client, manage, on_behalf):
    _coupon(client, manage)
    made = _redeem(client, on_behalf)
    _rollback(client, manage, made)
    removed = client.delete(f"{BASE}/coupons/RETURNS/redemptions/{made}", headers=manage)
    assert removed.status_code == 204
    assert _count() == 0  # not -1


# --- abuse found by review: each attack, reproduced ------------------------------------


def test_a_customer_cannot_roll_back_its_own_redemption_to_use_it_again(
    client, manage, customer_token
):
    _coupon(client, manage, maxRedemptionsPerCustomer=1)
    headers, customer = customer_token()
    made = _redeem(client, headers, customerNumber=customer)
    refused = _rollback(client, headers, made)
    assert (refused.status_code, refused.get_json()["type"]) == (403, "insufficient_scope")
    order_wide = client.post(f"{BASE}/orders/o-1/rollback", json={"reason": "x"}, headers=headers)
    assert order_wide.status_code == 403
    assert _count() == 1
    # The shop can: a manager names the customer whose own order id it is.
    mine = {"reason": "x", "customerNumber": customer}
    back = client.post(f"{BASE}/orders/o-1/rollback", json=mine, headers=manage)
    assert back.status_code == 200, back.get_json()
    assert [r["status"] for r in back.get_json()["redemptions"]] == ["ROLLED_BACK"]
    assert _count() == 0


def test_a_redemption_removed_while_rolling_back_is_a_404(client, manage, on_behalf, monkeypatch):
    from app.engine.usage import returns

    _coupon(client, manage)
    made = _redeem(client, on_behalf)
    found = returns._redemptions

    def removed_meanwhile(*args, **kwargs):
        rows = found(*args, **kwargs)
        db.session.execute(db.delete(Redemption).where(Redemption.id == made))
        return rows

    monkeypatch.setattr(returns, "_redemptions", removed_meanwhile)
    gone = _rollback(client, manage, made)
    assert (gone.status_code, gone.get_json()["type"]) == (404, "redemption_not_found")
    by_order = client.post(f"{BASE}/orders/o-1/rollback", json={"reason": "x"}, headers=manage)
    assert by_order.status_code == 404


def test_a_held_order_is_redeemed_as_held(client, manage, on_behalf):
    _coupon(client, manage, discountType="PERCENT", discountPercentage=10, discountAbsolute=None)
    held = client.post(
        f"{BASE}/coupons/RETURNS/reservations",
        json=order(total=100, discount=10, customerNumber="C1", orderId="h-1"),
        headers=on_behalf,
    )
    assert held.status_code == 201, held.get_json()
    for changed in ({"total": 500, "discount": 50}, {"total": 100, "discount": 5}):
        body = order(**changed, customerNumber="C1", orderId="h-1")
        refused = client.post(f"{BASE}/coupons/RETURNS/redemptions", json=body, headers=on_behalf)
        assert (refused.status_code, refused.get_json()["type"]) == (
            409,
            "reservation_order_differs",
        )
    same = order(total=100, discount=10, customerNumber="C1", orderId="h-1")
    taken = client.post(f"{BASE}/coupons/RETURNS/redemptions", json=same, headers=on_behalf)
    assert taken.status_code == 201, taken.get_json()
    read = client.get(taken.headers["Location"], headers=manage).get_json()
    assert read["discount"] == {"amount": 10, "currency": "USD"}


def test_a_managers_order_rollback_takes_one_owners_order(
    client, manage, on_behalf, customer_token
):
    # Order ids are their owner's: two customers, and the shop, may each have an "o-1".
    _coupon(client, manage)
    (alice, a), (bob, _) = customer_token("a@example.com"), customer_token("b@example.com")
    alices_own, bobs_own = _redeem(client, alice, customerNumber=a), _redeem(client, bob)
    shops = _redeem(client, on_behalf, customerNumber=a)  # the shop's "o-1", for alice
    url = f"{BASE}/orders/o-1/rollback"

    def rolled(body):
        answer = client.post(url, json={"reason": "x", **body}, headers=manage)
        assert answer.status_code == 200, answer.get_json()
        return [r["id"] for r in answer.get_json()["redemptions"]]

    assert rolled({}) == [shops]  # the shop's order, though alice's own has its id too
    assert rolled({"customerNumber": a}) == [alices_own]
    assert _count() == 1
    listed = client.get(f"{BASE}/coupons/RETURNS/redemptions", headers=manage).get_json()
    assert {r["id"]: r["status"] for r in listed}[bobs_own] == "REDEEMED"
