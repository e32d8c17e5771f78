"""Promotions on the tenant dialect's wire: coupons that target cart lines or shipping,
buy X get Y, caps; what a cart and a single code answer; what is refused."""

from decimal import Decimal

import pytest

from app.models import Coupon

BASE = "/coupon/v1/acme"
USD = "USD"


def money(amount, currency=USD):
    return {"amount": amount, "currency": currency}


SHOES = {"categories": ["shoes"]}
TWENTY_OFF_SHOES = {
    "code": "SHOES20",
    "discountType": "PERCENT",
    "discountPercentage": 20,
    "target": "ITEMS",
    "appliesTo": SHOES,
}
FIVE_OFF_EACH_TSHIRT = {
    "code": "TEE5",
    "discountType": "ABSOLUTE",
    "discountAbsolute": money(5),
    "target": "ITEMS",
    "appliesTo": {"products": ["tshirt"]},
    "allocation": "EACH",
}
FREE_SHIPPING = {
    "code": "SHIPFREE",
    "discountType": "PERCENT",
    "discountPercentage": 100,
    "target": "SHIPPING",
    "restrictions": {"minOrderValue": money(50)},
}
BUY_TWO_GET_ONE = {
    "code": "B2G1",
    "discountType": "BUY_X_GET_Y",
    "buyXGetY": {
        "buy": {"quantity": 2, "appliesTo": {"products": ["tshirt"]}},
        "get": {"quantity": 1, "appliesTo": {"products": ["tshirt"]}, "percentOff": 100},
    },
}
CAPPED = {
    "code": "FIFTEEN",
    "discountType": "PERCENT",
    "discountPercentage": 15,
    "maxDiscount": money(30),
}
ITEMS = [
    {"product": "runner", "price": 100, "quantity": 1, "categories": ["shoes"]},
    {"product": "tshirt", "price": 20, "quantity": 3},
]


def _create(client, manage, *bodies):
    for body in bodies:
        made = client.post(f"{BASE}/coupons", json=body, headers=manage)
        assert made.status_code == 201, made.get_json()


def _cart(client, headers, codes, items=ITEMS, total=160, **extra):
    body = {"orderTotal": money(total), "items": items, "codes": codes, **extra}
    return client.post(f"{BASE}/carts/validation", json=body, headers=headers)


def test_a_cart_shows_each_code_line_by_line(client, manage, on_behalf):
    _create(client, manage, TWENTY_OFF_SHOES, FIVE_OFF_EACH_TSHIRT, FREE_SHIPPING)
    answer = _cart(client, on_behalf, ["SHOES20", "TEE5", "SHIPFREE"], shippingTotal=money("7.50"))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    codes = {c["code"]: c for c in body["codes"]}
    assert codes["SHOES20"]["lines"] == [{"item": 0, "product": "runner", "discount": money(20)}]
    assert codes["TEE5"]["lines"] == [{"item": 1, "product": "tshirt", "discount": money(15)}]
    assert codes["SHIPFREE"]["shippingDiscount"] == money(Decimal("7.5"))
    assert codes["SHIPFREE"]["discount"] == money(0)
    assert body["totalDiscount"] == money(35) and body["totalAfterDiscount"] == money(125)
    assert body["shippingTotal"] == money(Decimal("7.5"))
    assert body["shippingDiscount"] == money(Decimal("7.5"))


def test_buy_two_get_one_free_in_a_cart_and_its_redemption(client, manage, on_behalf, db):
    _create(client, manage, BUY_TWO_GET_ONE)
    items = [
        {"product": "tshirt", "price": 20, "quantity": 2},
        {"product": "tshirt", "price": 15, "quantity": 1},
    ]
    answer = _cart(client, on_behalf, ["B2G1"], items=items, total=55)
    assert answer.get_json()["codes"][0]["lines"] == [
        {"item": 1, "product": "tshirt", "discount": money(15)}
    ]
    body = {"orderTotal": money(55), "items": items, "codes": ["B2G1"], "orderId": "o-1"}
    redeemed = client.post(f"{BASE}/carts/redemption", json=body, headers=on_behalf)
    assert redeemed.status_code == 201
    coupon = db.session.query(Coupon).filter_by(code="B2G1").one()
    assert coupon.redemption_count == 1
    assert coupon.redemptions[0].discount_amount == Decimal(15)


def test_a_single_code_needs_the_items_it_discounts(client, manage, on_behalf):
    _create(client, manage, TWENTY_OFF_SHOES)
    url = f"{BASE}/coupons/SHOES20/validation"
    without = client.post(url, json={"orderTotal": money(160)}, headers=on_behalf)
    assert (without.status_code, without.get_json()["type"]) == (400, "coupon_items_required")
    socks = [{"product": "sock", "price": 5, "quantity": 2}]
    none = client.post(url, json={"orderTotal": money(10), "items": socks}, headers=on_behalf)
    assert none.get_json()["type"] == "coupon_not_applicable_to_items"
    computed = client.post(url, json={"orderTotal": money(160), "items": ITEMS}, headers=on_behalf)
    assert computed.get_json() == {"discount": money(20)}
    too_much = {"orderTotal": money(160), "items": ITEMS, "discount": money(21)}
    refused = client.post(url, json=too_much, headers=on_behalf)
    assert refused.get_json()["type"] == "coupon_discount_amount_incorrect"
    body = {"orderTotal": money(160), "items": ITEMS, "discount": money(20), "orderId": "o-9"}
    assert (
        client.post(f"{BASE}/coupons/SHOES20/redemptions", json=body, headers=on_behalf).status_code
        == 201
    )


def test_a_percent_is_capped_by_max_discount(client, manage, on_behalf):
    _create(client, manage, CAPPED)
    url = f"{BASE}/coupons/FIFTEEN/validation"
    assert client.post(url, json={"orderTotal": money(300)}, headers=on_behalf).get_json() == {
        "discount": money(30)
    }
    assert client.post(url, json={"orderTotal": money(100)}, headers=on_behalf).get_json() == {
        "discount": money(15)
    }
    read = client.get(f"{BASE}/coupons/FIFTEEN", headers=manage).get_json()
    assert read["maxDiscount"] == money(30) and read["target"] == "ORDER"


def test_promotion_fields_read_back_as_written(client, manage):
    _create(client, manage, BUY_TWO_GET_ONE, FIVE_OFF_EACH_TSHIRT)
    deal = client.get(f"{BASE}/coupons/B2G1", headers=manage).get_json()
    assert deal["target"] == "ITEMS"
    assert deal["buyXGetY"] == {
        "buy": {"quantity": 2, "appliesTo": {"products": ["tshirt"], "categories": []}},
        "get": {
            "quantity": 1,
            "appliesTo": {"products": ["tshirt"], "categories": []},
            "percentOff": 100,
        },
        "maxApplications": None,
    }
    each = client.get(f"{BASE}/coupons/TEE5", headers=manage).get_json()
    assert each["allocation"] == "EACH" and each["appliesTo"]["products"] == ["tshirt"]
    changed = client.patch(f"{BASE}/coupons/TEE5", json={"maxQuantity": 2}, headers=manage)
    assert changed.status_code == 200
    assert client.get(f"{BASE}/coupons/TEE5", headers=manage).get_json()["maxQuantity"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                **FIVE_OFF_EACH_TSHIRT,
                "discountType": "PERCENT",
                "discountPercentage": 5,
                "discountAbsolute": None,
            },
            "allocation",
        ),
        ({**CAPPED, "maxQuantity": 2}, "maxQuantity"),
        ({**BUY_TWO_GET_ONE, "buyXGetY": {"buy": {"quantity": 2}}}, "buyXGetY.get"),
        (
            {
                **BUY_TWO_GET_ONE,
                "buyXGetY": {"buy": {"quantity": 0}, "get": {"quantity": 1, "percentOff": 100}},
            },
            "buyXGetY.buy.quantity",
        ),
        (
            {
                **BUY_TWO_GET_ONE,
                "buyXGetY": {"buy": {"quantity": 1}, "get": {"quantity": 1, "percentOff": 101}},
            },
            "buyXGetY.get.percentOff",
        ),
        ({**CAPPED, "restrictions": {"minOrderValue": money(10, "EUR")}}, "maxDiscount.currency"),
        ({**TWENTY_OFF_SHOES, "appliesTo": {"products": []}}, "appliesTo.products"),
        ({**CAPPED, "appliesTo": SHOES}, "appliesTo"),
        ({**CAPPED, "buyXGetY": BUY_TWO_GET_ONE["buyXGetY"]}, "buyXGetY"),
        ({"code": "B", "discountType": "BUY_X_GET_Y"}, "buyXGetY"),
        ({**FREE_SHIPPING, "maxQuantity": 1}, "maxQuantity"),
        ({**TWENTY_OFF_SHOES, "target": "EVERYTHING"}, "target"),
    ],
)
def test_combinations_that_mean_nothing_are_refused(client, manage, db, body, field):
    refused = client.post(f"{BASE}/coupons", json=body, headers=manage)
    assert refused.status_code == 400, refused.get_json()
    assert field in [d["field"] for d in refused.get_json()["details"]], refused.get_json()
    assert db.session.query(Coupon).count() == 0


def test_cart_items_are_checked(client, manage, on_behalf):
    _create(client, manage, TWENTY_OFF_SHOES)
    long = [{**ITEMS[0], "categories": ["x" * 65]}]
    refused = _cart(client, on_behalf, ["SHOES20"], items=long)
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["field"] == "items.0.categories.0"
    other = _cart(client, on_behalf, ["SHOES20"], shippingTotal=money(5, "EUR"))
    assert other.get_json()["details"][0]["field"] == "shippingTotal"


def test_a_campaign_template_carries_its_target(client, manage):
    template = {k: v for k, v in TWENTY_OFF_SHOES.items() if k != "code"}
    made = client.post(
        f"{BASE}/campaigns",
        json={"name": "Shoes", "count": 3, "codeConfig": {"length": 8}, "template": template},
        headers=manage,
    )
    assert made.status_code == 202, made.get_json()
    campaign = client.get(made.headers["Location"], headers=manage).get_json()
    assert campaign["template"]["target"] == "ITEMS"
    assert campaign["template"]["appliesTo"] == {"products": [], "categories": ["shoes"]}
