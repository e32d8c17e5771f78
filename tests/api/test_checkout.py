"""Checkout: holds with expiry, carts with stacking rules, qualifications, promo holds."""

import pytest
from sqlalchemy import func, select

from app.database import set_clock_offset
from app.engine import tenants
from app.engine.usage import holds
from app.models import Hold, OutboxMessage, Redemption
from tests.api.conftest import coupon_body, order

BASE = "/coupon/v1/acme"


@pytest.fixture
def moved_clock():
    """Move the service's clock (what CLOCK_OFFSET_SECONDS does), back afterwards."""
    yield set_clock_offset
    set_clock_offset(0)


def create(client, manage, code, **fields):
    response = client.post(f"{BASE}/coupons", json=coupon_body(code=code, **fields), headers=manage)
    assert response.status_code == 201, response.get_json()


def hold(client, headers, code="LAST", customer="C1", **extra):
    return client.post(
        f"{BASE}/coupons/{code}/reservations",
        json=order(customerNumber=customer, **extra),
        headers=headers,
    )


def coupon(client, manage, code):
    return client.get(f"{BASE}/coupons/{code}", headers=manage).get_json()


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- holds ------------------------------------------------------------------------------


def test_a_hold_takes_the_last_use_until_confirmed(client, manage, on_behalf, db):
    create(client, manage, "LAST", maxRedemptions=1)
    held = hold(client, on_behalf)
    assert held.status_code == 201, held.get_json()
    body = held.get_json()
    assert set(body) == {"id", "expiresAt", "link"}
    assert held.headers["Location"].endswith(f"/coupons/LAST/reservations/{body['id']}")

    # The held use is taken: another hold and a plain redemption are refused.
    other = hold(client, on_behalf, customer="C2")
    assert (other.status_code, other.get_json()["type"]) == (400, "coupon_redemptions_exceeded")
    redeemed = client.post(
        f"{BASE}/coupons/LAST/redemptions", json=order(customerNumber="C2"), headers=on_behalf
    )
    assert redeemed.get_json()["type"] == "coupon_redemptions_exceeded"
    validated = client.post(
        f"{BASE}/coupons/LAST/validation", json=order(customerNumber="C2"), headers=on_behalf
    )
    assert validated.get_json()["type"] == "coupon_redemptions_exceeded"

    events = count(db, OutboxMessage)
    confirmed = client.post(
        f"{BASE}/coupons/LAST/reservations/{body['id']}/confirm?customerNumber=C1",
        headers=on_behalf,
    )
    assert confirmed.status_code == 201, confirmed.get_json()
    redemption_id = confirmed.get_json()["id"]
    assert coupon(client, manage, "LAST")["redemptionCount"] == 1
    assert count(db, OutboxMessage) == events + 1  # the redemption event
    read = client.get(f"{BASE}/coupons/LAST/reservations/{body['id']}", headers=manage).get_json()
    assert read["status"] == "CONFIRMED" and read["redemptionId"] == redemption_id
    assert read["discount"] == {"amount": 25, "currency": "USD"}

    # Confirming again answers the same redemption; releasing a confirmed hold is refused.
    again = client.post(f"{BASE}/coupons/LAST/reservations/{body['id']}/confirm", headers=manage)
    assert (again.status_code, again.get_json()["id"]) == (200, redemption_id)
    release = client.delete(f"{BASE}/coupons/LAST/reservations/{body['id']}", headers=manage)
    assert (release.status_code, release.get_json()["type"]) == (409, "reservation_confirmed")
    assert count(db, Redemption) == 1


def test_releasing_gives_the_use_back(client, manage, on_behalf):
    create(client, manage, "LAST", maxRedemptions=1)
    first = hold(client, on_behalf).get_json()["id"]
    released = client.delete(
        f"{BASE}/coupons/LAST/reservations/{first}?customerNumber=C1", headers=on_behalf
    )
    assert released.status_code == 204
    assert hold(client, on_behalf, customer="C2").status_code == 201

    again = client.delete(f"{BASE}/coupons/LAST/reservations/{first}", headers=manage)
    assert (again.status_code, again.get_json()["type"]) == (404, "reservation_released")
    confirm = client.post(f"{BASE}/coupons/LAST/reservations/{first}/confirm", headers=manage)
    assert (confirm.status_code, confirm.get_json()["type"]) == (404, "reservation_released")
    assert coupon(client, manage, "LAST")["redemptionCount"] == 0


def test_an_expired_hold_gives_its_use_back_by_itself(client, manage, on_behalf, moved_clock):
    create(client, manage, "LAST", maxRedemptions=1)
    first = hold(client, on_behalf, ttlSeconds=60).get_json()
    assert hold(client, on_behalf, customer="C2").status_code == 400

    moved_clock(61)  # no job ran: the hold counts for nothing by its expiry alone
    read = client.get(f"{BASE}/coupons/LAST/reservations/{first['id']}", headers=manage)
    assert read.get_json()["status"] == "EXPIRED"
    confirm = client.post(f"{BASE}/coupons/LAST/reservations/{first['id']}/confirm", headers=manage)
    assert (confirm.status_code, confirm.get_json()["type"]) == (410, "reservation_expired")
    redeemed = client.post(
        f"{BASE}/coupons/LAST/redemptions", json=order(customerNumber="C2"), headers=on_behalf
    )
    assert redeemed.status_code == 201, redeemed.get_json()
    assert coupon(client, manage, "LAST")["redemptionCount"] == 1


def test_holds_count_against_the_per_customer_limit(client, manage, on_behalf):
    create(client, manage, "ONCE", maxRedemptionsPerCustomer=1)
    assert hold(client, on_behalf, code="ONCE").status_code == 201
    refused = hold(client, on_behalf, code="ONCE")
    assert refused.get_json()["type"] == "coupon_redemptions_exceeded"
    redeemed = client.post(
        f"{BASE}/coupons/ONCE/redemptions", json=order(customerNumber="C1"), headers=on_behalf
    )
    assert redeemed.get_json()["type"] == "coupon_redemptions_exceeded"
    assert hold(client, on_behalf, code="ONCE", customer="C2").status_code == 201


def test_a_redemption_with_the_holds_order_id_confirms_it(client, manage, on_behalf, db):
    create(client, manage, "LAST", maxRedemptions=1)
    held = hold(client, on_behalf, orderId="ORDER-1").get_json()["id"]
    # The same order id again is the same hold; another customer cannot take it.
    again = hold(client, on_behalf, orderId="ORDER-1")
    assert (again.status_code, again.get_json()["id"]) == (200, held)
    taken = hold(client, on_behalf, customer="C2", orderId="ORDER-1")
    assert (taken.status_code, taken.get_json()["type"]) == (409, "coupon_order_already_held")

    redeemed = client.post(
        f"{BASE}/coupons/LAST/redemptions",
        json=order(customerNumber="C1", orderId="ORDER-1"),
        headers=on_behalf,
    )
    assert redeemed.status_code == 201, redeemed.get_json()
    read = client.get(f"{BASE}/coupons/LAST/reservations/{held}", headers=manage).get_json()
    assert read["status"] == "CONFIRMED" and read["redemptionId"] == redeemed.get_json()["id"]
    assert coupon(client, manage, "LAST")["redemptionCount"] == 1
    replay = client.post(
        f"{BASE}/coupons/LAST/redemptions",
        json=order(customerNumber="C1", orderId="ORDER-1"),
        headers=on_behalf,
    )
    assert (replay.status_code, replay.get_json()["id"]) == (200, redeemed.get_json()["id"])


def test_customers_see_and_act_on_their_own_holds(client, manage, customer_token, redeem):
    create(client, manage, "MINE")
    alice, alice_number = customer_token("alice@example.com")
    bob, _ = customer_token("bob@example.com")
    mine = hold(client, alice, code="MINE", customer=None).get_json()
    anonymous_client = hold(client, redeem, code="MINE", customer=None).get_json()
    path = f"{BASE}/coupons/MINE/reservations"

    listed = client.get(path, headers=alice)
    assert [h["id"] for h in listed.get_json()] == [mine["id"]]
    assert listed.get_json()[0]["customerNumber"] == alice_number
    assert client.get(path, headers=bob).get_json() == []
    assert client.get(path, headers=manage).headers["X-Total-Count"] == "2"
    assert client.get(path).status_code == 401
    assert client.get(f"{path}/{mine['id']}", headers=bob).status_code == 404
    assert client.delete(f"{path}/{mine['id']}", headers=bob).status_code == 404
    assert client.post(f"{path}/{mine['id']}/confirm", headers=bob).status_code == 404
    confirmed = client.post(f"{path}/{mine['id']}/confirm", headers=alice)
    assert confirmed.status_code == 201
    # A hold for no customer is confirmed by whoever holds its id.
    assert client.post(f"{path}/{anonymous_client['id']}/confirm", headers=bob).status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ({"ttlSeconds": 0}, "ttlSeconds"),
        ({"ttlSeconds": 86_401}, "ttlSeconds"),
        ({"ttlSeconds": "60"}, "ttlSeconds"),
        ({"orderTotal": {"amount": -1, "currency": "USD"}}, "orderTotal.amount"),
    ],
)
def test_bad_holds_are_refused_and_write_nothing(client, manage, on_behalf, db, body, field):
    create(client, manage, "LAST", maxRedemptions=1)
    response = client.post(
        f"{BASE}/coupons/LAST/reservations",
        json={**order(customerNumber="C1"), **body},
        headers=on_behalf,
    )
    assert response.status_code == 400
    assert response.get_json()["type"] == "validation_failed"
    assert [d["field"] for d in response.get_json()["details"]] == [field]
    assert count(db, Hold) == 0


def test_unknown_holds_are_404(client, manage):
    create(client, manage, "LAST")
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/confirm")):
        response = client.open(
            f"{BASE}/coupons/LAST/reservations/{'0' * 32}{suffix}", method=method, headers=manage
        )
        assert (response.status_code, response.get_json()["type"]) == (
            404,
            "reservation_not_found",
        )
    missing = hold(client, manage, code="NOPE")
    assert missing.status_code == 404


def test_the_purge_deletes_only_old_holds(client, manage, on_behalf, db, moved_clock):
    create(client, manage, "MANY")
    old = hold(client, on_behalf, code="MANY", ttlSeconds=60).get_json()["id"]
    live = hold(client, on_behalf, code="MANY", customer="C2", ttlSeconds=86_400).get_json()["id"]
    moved_clock(3600)
    assert holds.purge(retention_seconds=1800) == 1
    remaining = db.session.scalars(select(Hold.id)).all()
    assert remaining == [live] and old not in remaining


# --- carts ------------------------------------------------------------------------------


def cart(*codes, total=100, customer="C1", **extra):
    return {
        "customerNumber": customer,
        "orderTotal": {"amount": total, "currency": "USD"},
        "items": [{"product": "SHOE", "quantity": 2, "price": total / 2}],
        "codes": list(codes),
        **extra,
    }


def percent(code, pct, **fields):
    fields = {"discountAbsolute": None, "restrictions": None, **fields}
    return coupon_body(code=code, discountType="PERCENT", discountPercentage=pct, **fields)


def absolute(code, amount, **fields):
    fields = {
        "discountAbsolute": {"amount": amount, "currency": "USD"},
        "restrictions": None,
        **fields,
    }
    return coupon_body(code=code, **fields)


@pytest.fixture
def stack(client, manage):
    for body in (
        absolute("TEN_OFF", 10),
        percent("TEN_PCT", 10),
        percent("BIG_EXCL", 30, exclusive=True),
        absolute("LIMITED", 5, maxRedemptions=1),
        coupon_body(
            code="MIN_500", restrictions={"minOrderValue": {"amount": 500, "currency": "USD"}}
        ),
    ):
        response = client.post(f"{BASE}/coupons", json=body, headers=manage)
        assert response.status_code == 201, response.get_json()


def test_a_cart_stacks_codes_and_reports_each(client, on_behalf, stack):
    response = client.post(
        f"{BASE}/carts/validation",
        json=cart("ten_pct", "TEN_OFF", "MIN_500", "NOPE"),
        headers=on_behalf,
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    by_code = {c["code"]: c for c in body["codes"]}
    assert [c["code"] for c in body["codes"]] == ["ten_pct", "TEN_OFF", "MIN_500", "NOPE"]
    # ABSOLUTE first, then 10 % of what is left.
    assert by_code["TEN_OFF"]["discount"] == {"amount": 10, "currency": "USD"}
    assert by_code["ten_pct"]["discount"] == {"amount": 9, "currency": "USD"}
    assert by_code["MIN_500"]["applies"] is False
    assert by_code["MIN_500"]["error"]["type"] == "coupon_order_total_too_low"
    assert by_code["NOPE"]["error"]["type"] == "coupon_not_found"
    assert body["totalDiscount"] == {"amount": 19, "currency": "USD"}
    assert body["totalAfterDiscount"] == {"amount": 81, "currency": "USD"}


def test_an_exclusive_code_wins_alone_when_it_gives_more(client, on_behalf, stack):
    body = client.post(
        f"{BASE}/carts/validation", json=cart("TEN_OFF", "BIG_EXCL"), headers=on_behalf
    ).get_json()
    assert [(c["code"], c["applies"]) for c in body["codes"]] == [
        ("TEN_OFF", False),
        ("BIG_EXCL", True),
    ]
    assert body["codes"][0]["error"]["type"] == "coupon_not_combinable"
    assert body["totalDiscount"]["amount"] == 30


def test_the_tenant_limits_codes_per_order(client, manage, on_behalf, stack, app):
    with app.app_context():
        tenants.configure(slug="acme", max_codes_per_order=1)
    body = client.post(
        f"{BASE}/carts/validation", json=cart("TEN_PCT", "TEN_OFF"), headers=on_behalf
    ).get_json()
    assert [c["applies"] for c in body["codes"]] == [False, True]
    assert body["codes"][0]["error"]["type"] == "coupon_stacking_limit"


def test_a_cart_redeems_every_code_or_none(client, manage, on_behalf, stack, db):
    events = count(db, OutboxMessage)
    refused = client.post(
        f"{BASE}/carts/redemption", json=cart("TEN_OFF", "MIN_500"), headers=on_behalf
    )
    assert refused.status_code == 409
    assert refused.get_json()["type"] == "cart_not_applicable"
    assert refused.get_json()["details"] == [
        {
            "field": "codes.1",
            "type": "coupon_order_total_too_low",
            "message": "The order value is too low for the coupon",
        }
    ]
    assert count(db, Redemption) == 0 and count(db, OutboxMessage) == events

    key = {"Idempotency-Key": "cart-1"}
    done = client.post(
        f"{BASE}/carts/redemption",
        json=cart("TEN_OFF", "LIMITED", "TEN_PCT", orderId="ORDER-9"),
        headers={**on_behalf, **key},
    )
    assert done.status_code == 201, done.get_json()
    body = done.get_json()
    assert body["totalDiscount"] == {"amount": 23.5, "currency": "USD"}
    assert all(c["redemptionId"] for c in body["codes"])
    assert count(db, Redemption) == 3 and count(db, OutboxMessage) == events + 3
    replay = client.post(
        f"{BASE}/carts/redemption",
        json=cart("TEN_OFF", "LIMITED", "TEN_PCT", orderId="ORDER-9"),
        headers={**on_behalf, **key},
    )
    assert replay.get_json() == body and replay.headers["Idempotent-Replayed"] == "true"
    assert count(db, Redemption) == 3

    # LIMITED is used up: a cart holding it redeems nothing, not even TEN_OFF.
    again = client.post(
        f"{BASE}/carts/redemption", json=cart("TEN_OFF", "LIMITED"), headers=on_behalf
    )
    assert again.status_code == 409
    assert [d["field"] for d in again.get_json()["details"]] == ["codes.1"]
    assert count(db, Redemption) == 3


@pytest.mark.parametrize(
    "change, field",
    [
        ({"items": []}, "items"),
        ({"items": [{"product": "P", "quantity": 1, "price": 1}] * 501}, "items"),
        ({"codes": [f"C{n}" for n in range(51)]}, "codes"),  # empty is fine: automatic ones
        ({"codes": ["TEN_OFF", "ten_off"]}, "codes.1"),
        ({"items": [{"product": "P", "quantity": 1, "price": -1}]}, "items.0.price"),
        ({"items": [{"product": "P", "quantity": 0, "price": 1}]}, "items.0.quantity"),
        ({"items": [{"product": "P", "quantity": -2, "price": 1}]}, "items.0.quantity"),
        ({"orderTotal": {"amount": -5, "currency": "USD"}}, "orderTotal.amount"),
    ],
)
@pytest.mark.parametrize("route", ["validation", "redemption"])
def test_bad_carts_are_400_with_the_field(client, on_behalf, stack, db, route, change, field):
    response = client.post(
        f"{BASE}/carts/{route}", json={**cart("TEN_OFF"), **change}, headers=on_behalf
    )
    assert response.status_code == 400, response.get_json()
    assert field in [d["field"] for d in response.get_json()["details"]]
    assert count(db, Redemption) == 0


# --- qualifications ---------------------------------------------------------------------


def shopper(customer="C1"):
    body = cart(customer=customer)
    del body["codes"]
    return body


def test_qualifications_list_what_fits_best_first_and_hide_others_codes(
    client, manage, on_behalf, customer_token
):
    for body in (
        absolute("PUBLIC_5", 5, allowAnonymous=True),
        percent("VIP_20", 20, restrictions={"validFor": ["C1"]}),
        percent("OTHERS_50", 50, restrictions={"validFor": ["C2"]}),
        coupon_body(
            code="MIN_500", restrictions={"minOrderValue": {"amount": 500, "currency": "USD"}}
        ),
        absolute("OFF", 30, active=False),
        absolute("SHOE_ONLY", 12, restrictions={"requiredProduct": "SHOE"}),
        absolute("HAT_ONLY", 40, restrictions={"requiredProduct": "HAT"}),
        absolute("EUROS", 45, discountAbsolute={"amount": 45, "currency": "EUR"}),
    ):
        body["listable"] = True
        assert client.post(f"{BASE}/coupons", json=body, headers=manage).status_code == 201
    # The largest discount of all, but not marked listable: a voucher for one person.
    voucher = absolute("VOUCHER_60", 60, allowAnonymous=True)
    assert client.post(f"{BASE}/coupons", json=voucher, headers=manage).status_code == 201
    path = f"{BASE}/qualifications"
    response = client.post(path, json=shopper(), headers=on_behalf)
    assert response.status_code == 200, response.get_json()
    listed = response.get_json()
    assert [(q["code"], q["discount"]["amount"]) for q in listed] == [
        ("VIP_20", 20),
        ("SHOE_ONLY", 12),
        ("PUBLIC_5", 5),
    ]
    assert response.headers["X-Total-Count"] == "3"
    page = client.post(path + "?pageSize=1&pageNumber=2", json=shopper(), headers=on_behalf)
    assert [q["code"] for q in page.get_json()] == ["SHOE_ONLY"]

    other = client.post(path, json=shopper("C3"), headers=on_behalf).get_json()
    assert "VIP_20" not in {q["code"] for q in other}
    assert "OTHERS_50" not in {q["code"] for q in other}
    assert client.post(path, json=shopper()).status_code == 401


# --- the promo dialect ------------------------------------------------------------------


def test_a_promo_redeem_can_hold_the_gift_for_its_order(client, manage, redeem):
    created = client.post(
        "/promocodes/add", json={"coupon": "GIFT1", "code": "MUG", "times": 1}, headers=manage
    )
    assert created.status_code == 201
    body = {"coupon": "GIFT1", "order": {"id": "P-1", "items": []}, "ttlSeconds": 600}
    held = client.post("/promocodes/redeem", json=body, headers=redeem)
    assert held.status_code == 200, held.get_json()
    answer = held.get_json()
    assert answer["freeProducts"] == ["MUG"] and set(answer["reservation"]) == {"id", "expiresAt"}

    # The gift's last use is kept: another order is refused, this one confirms.
    other = client.post(
        "/promocodes/redeem", json={"coupon": "GIFT1", "order": {"id": "P-2"}}, headers=redeem
    ).get_json()
    assert other["freeProducts"] == [] and other["loyaltyProgramErrors"]
    confirmed = client.post(
        "/promocodes/redeem", json={"coupon": "GIFT1", "order": {"id": "P-1"}}, headers=redeem
    ).get_json()
    assert confirmed["freeProducts"] == ["MUG"] and "reservation" not in confirmed
    promo = client.get("/promocodes/", headers=manage).get_json()
    assert promo[0]["coupon"] == "GIFT1"
    bad = client.post("/promocodes/redeem", json={**body, "ttlSeconds": 0}, headers=redeem)
    assert bad.status_code == 400


def test_a_promo_hold_can_be_released_by_its_order(client, manage, redeem):
    client.post(
        "/promocodes/add", json={"coupon": "GIFT2", "code": "CAP", "times": 1}, headers=manage
    )
    body = {"coupon": "gift2", "order": {"id": 77}, "ttlSeconds": 600}
    assert client.post("/promocodes/redeem", json=body, headers=redeem).status_code == 200
    release = {"coupon": "GIFT2", "order": {"id": 77}}
    released = client.post("/promocodes/release", json=release, headers=redeem)
    assert released.status_code == 200, released.get_json()
    assert released.get_json() == {"statusCode": 200, "message": "Бронь промокода снята"}
    again = client.post("/promocodes/release", json=release, headers=redeem)
    assert again.status_code == 404 and again.get_json()["statusCode"] == 404
    # The use is free again for another order.
    other = client.post(
        "/promocodes/redeem", json={"coupon": "GIFT2", "order": {"id": "O-2"}}, headers=redeem
    ).get_json()
    assert other["freeProducts"] == ["CAP"]


def test_a_cart_redemption_confirms_the_holds_of_its_order(client, manage, on_behalf, stack, db):
    held = hold(client, on_behalf, code="LIMITED", orderId="ORDER-5", discount=5).get_json()["id"]
    # LIMITED's one use is held for ORDER-5: another order's cart cannot have it.
    other = client.post(
        f"{BASE}/carts/redemption", json=cart("TEN_OFF", "LIMITED"), headers=on_behalf
    )
    assert other.status_code == 409
    assert other.get_json()["details"][0]["type"] == "coupon_redemptions_exceeded"
    # Another customer's cart under the same order id does not get the hold either.
    foreign = client.post(
        f"{BASE}/carts/redemption",
        json=cart("LIMITED", customer="C2", orderId="ORDER-5"),
        headers=on_behalf,
    )
    assert (foreign.status_code, foreign.get_json()["type"]) == (409, "coupon_order_already_held")

    done = client.post(
        f"{BASE}/carts/redemption",
        json=cart("TEN_OFF", "LIMITED", orderId="ORDER-5"),
        headers=on_behalf,
    )
    assert done.status_code == 201, done.get_json()
    limited = next(c for c in done.get_json()["codes"] if c["code"] == "LIMITED")
    read = client.get(f"{BASE}/coupons/LIMITED/reservations/{held}", headers=manage).get_json()
    assert read["status"] == "CONFIRMED" and read["redemptionId"] == limited["redemptionId"]
    assert coupon(client, manage, "LIMITED")["redemptionCount"] == 1
    assert count(db, Redemption) == 2


def test_qualifications_scan_the_best_discounts_first(client, manage, on_behalf, monkeypatch):
    from app.engine.usage import qualifications

    for code, amount in (("SMALL", 1), ("LARGE", 30), ("MIDDLE", 10)):
        body = absolute(code, amount, allowAnonymous=True, listable=True)
        assert client.post(f"{BASE}/coupons", json=body, headers=manage).status_code == 201
    big = percent("HALF", 50, allowAnonymous=True, listable=True)
    assert client.post(f"{BASE}/coupons", json=big, headers=manage).status_code == 201
    monkeypatch.setattr(qualifications, "QUALIFICATION_SCAN_LIMIT", 2)
    listed = client.post(f"{BASE}/qualifications", json=shopper(), headers=on_behalf).get_json()
    assert [(q["code"], q["discount"]["amount"]) for q in listed] == [("HALF", 50), ("LARGE", 30)]
