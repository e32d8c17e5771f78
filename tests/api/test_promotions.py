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
    body = {
        "orderTotal": money(55),
        "items": items,
        "codes": ["B2G1"],
        "orderId": "o-1",
        "metadata": {"pos": "kiosk"},
    }
    redeemed = client.post(f"{BASE}/carts/redemption", json=body, headers=on_behalf)
    assert redeemed.status_code == 201
    coupon = db.session.query(Coupon).filter_by(code="B2G1").one()
    assert coupon.redemption_count == 1
    assert coupon.redemptions[0].discount_amount == Decimal(15)
    assert coupon.redemptions[0].meta == {"pos": "kiosk"}


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


WEEKEND = {
    "code": "WEEKEND10",
    "name": "Weekend: 10 % off everything",
    "discountType": "PERCENT",
    "discountPercentage": 10,
    "automatic": True,
    "allowAnonymous": True,
    "maxRedemptions": 2,
}


def test_an_automatic_promotion_applies_without_a_code(client, manage, on_behalf, db):
    _create(client, manage, WEEKEND, FIVE_OFF_EACH_TSHIRT)
    quiet = _cart(client, on_behalf, [], total=160)
    assert quiet.status_code == 200, quiet.get_json()
    body = quiet.get_json()
    assert body["codes"] == []
    assert [(a["code"], a["name"], a["discount"]) for a in body["automatic"]] == [
        ("WEEKEND10", WEEKEND["name"], money(16))
    ]
    # With a code: the money off comes first, the percentage takes its share of the rest.
    both = _cart(client, on_behalf, ["TEE5"], total=160).get_json()
    assert both["codes"][0]["discount"] == money(15)
    assert both["automatic"][0]["discount"] == money(Decimal("14.5"))
    assert both["totalDiscount"] == money(Decimal("29.5"))
    # A cart redemption redeems it with the codes; at its limit it is left out.
    for n in range(3):
        redeemed = client.post(
            f"{BASE}/carts/redemption",
            json={"orderTotal": money(160), "items": ITEMS, "codes": [], "orderId": f"w-{n}"},
            headers=on_behalf,
        )
        assert redeemed.status_code == 201, redeemed.get_json()
        granted = redeemed.get_json()["automatic"]
        assert len(granted) == (1 if n < 2 else 0)
        if granted:
            assert granted[0]["redemptionId"]
    weekend = db.session.query(Coupon).filter_by(code="WEEKEND10").one()
    assert weekend.redemption_count == 2 and len(weekend.redemptions) == 2


def test_automatic_promotions_do_not_count_against_the_code_limit(client, manage, on_behalf):
    _create(client, manage, WEEKEND, {**FIVE_OFF_EACH_TSHIRT, "code": "ONE"})
    from app.engine.tenants import configure

    configure(slug="acme", max_codes_per_order=1)
    answer = _cart(client, on_behalf, ["ONE"]).get_json()
    assert answer["codes"][0]["applies"] is True and len(answer["automatic"]) == 1


def test_at_most_a_hundred_live_automatic_promotions(client, manage, db, tenant):
    from app.engine.catalog import coupons as catalog
    from app.engine.tenants import get_tenant

    for n in range(catalog.MAX_AUTOMATIC):
        db.session.add(
            Coupon(
                tenant_id=get_tenant("acme").id,
                code=f"A{n}",
                code_key=f"a{n}",
                discount_type="PERCENT",
                discount_percentage=1,
                automatic=True,
            )
        )
    db.session.commit()
    refused = client.post(
        f"{BASE}/coupons", json={**WEEKEND, "code": "ONE_TOO_MANY"}, headers=manage
    )
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["field"] == "automatic"
    # Switched off, it may exist; switching it on is refused the same way.
    off = {**WEEKEND, "code": "OFF", "active": False}
    assert client.post(f"{BASE}/coupons", json=off, headers=manage).status_code == 201
    on = client.patch(f"{BASE}/coupons/OFF", json={"active": True}, headers=manage)
    assert on.status_code == 400


def test_a_campaign_template_is_never_automatic(client, manage):
    template = {k: v for k, v in WEEKEND.items() if k != "code"}
    refused = client.post(
        f"{BASE}/campaigns",
        json={"name": "Auto", "count": 3, "codeConfig": {"length": 8}, "template": template},
        headers=manage,
    )
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["field"] == "template.automatic"


def test_metadata_is_kept_filtered_and_carried(client, manage, on_behalf, db):
    from app.models import Hold, OutboxMessage

    news = {**CAPPED, "code": "NEWS", "metadata": {"channel": "newsletter", "team": "crm"}}
    _create(client, manage, news, {**CAPPED, "metadata": {"channel": "social"}})
    read = client.get(f"{BASE}/coupons/NEWS", headers=manage).get_json()
    assert read["metadata"] == {"channel": "newsletter", "team": "crm"}
    listed = client.get(
        f"{BASE}/coupons?metadata.channel=newsletter&metadata.team=crm", headers=manage
    )
    assert [c["code"] for c in listed.get_json()] == ["NEWS"]
    assert listed.headers["X-Total-Count"] == "1"
    none = client.get(f"{BASE}/coupons?metadata.channel=newsletter&metadata.team=x", headers=manage)
    assert none.get_json() == []
    bad = client.get(f"{BASE}/coupons?metadata.bad%20key=1", headers=manage)
    assert bad.status_code == 400 and bad.get_json()["details"][0]["field"] == "metadata.bad key"

    body = {
        "orderTotal": money(100),
        "discount": money(15),
        "orderId": "m-1",
        "metadata": {"pos": "store-7"},
    }
    redeemed = client.post(f"{BASE}/coupons/NEWS/redemptions", json=body, headers=on_behalf)
    assert redeemed.status_code == 201
    one = client.get(redeemed.headers["Location"], headers=manage).get_json()
    assert one["metadata"] == {"pos": "store-7"}
    event = db.session.query(OutboxMessage).one()
    assert event.payload["metadata"] == {"pos": "store-7"}

    hold_body = {**body, "orderId": "m-2", "metadata": {"pos": "web"}}
    held = client.post(f"{BASE}/coupons/NEWS/reservations", json=hold_body, headers=on_behalf)
    assert held.status_code == 201
    assert db.session.query(Hold).one().meta == {"pos": "web"}
    confirmed = client.post(f"{held.headers['Location']}/confirm", headers=on_behalf)
    redemption = client.get(confirmed.headers["Location"], headers=manage).get_json()
    assert redemption["metadata"] == {"pos": "web"}


@pytest.mark.parametrize(
    "metadata",
    [
        {"bad key": "x"},
        {"k" * 41: "x"},
        {"k": "v" * 501},
        {f"k{n}": "v" for n in range(51)},
        {"k": 1},
        {"channel\n": "x"},  # "$" would match before the newline
    ],
)
def test_too_much_or_malformed_metadata_is_refused(client, manage, db, metadata):
    refused = client.post(f"{BASE}/coupons", json={**CAPPED, "metadata": metadata}, headers=manage)
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["field"].startswith("metadata")
    assert db.session.query(Coupon).count() == 0


def test_a_metadata_filter_given_twice_is_refused(client, manage):
    _create(client, manage, {**CAPPED, "metadata": {"channel": "a"}})
    twice = client.get(f"{BASE}/coupons?metadata.channel=a&metadata.channel=b", headers=manage)
    assert twice.status_code == 400
    assert twice.get_json()["details"][0] == {
        "field": "metadata.channel",
        "type": "invalid",
        "message": "Given more than once",
    }


def test_amounts_finer_than_the_currency_are_refused_everywhere(client, manage, on_behalf):
    """1.005 USD or 0.4 JPY has no whole minor unit to split or store: a 400 naming the
    field, never a 500 or a discount larger than the order."""
    _create(client, manage, TWENTY_OFF_SHOES, CAPPED)
    sub_cent = [{"product": "runner", "price": "1.005", "quantity": 1, "categories": ["shoes"]}]
    asked = [
        ("carts/validation", {"orderTotal": money("1.005"), "items": ITEMS, "codes": ["FIFTEEN"]}),
        ("carts/validation", {"orderTotal": money(1), "items": sub_cent, "codes": ["SHOES20"]}),
        ("carts/redemption", {"orderTotal": money(1), "items": sub_cent, "codes": ["SHOES20"]}),
        ("coupons/SHOES20/validation", {"orderTotal": money(2), "items": sub_cent}),
        ("coupons/FIFTEEN/validation", {"orderTotal": money("0.005")}),
        ("coupons/FIFTEEN/redemptions", {"orderTotal": money(5), "discount": money("0.755")}),
        ("carts/validation", {**_basket(), "shippingTotal": money("7.499")}),
    ]
    for path, body in asked:
        answer = client.post(f"{BASE}/{path}", json=body, headers=on_behalf)
        assert answer.status_code == 400, (path, answer.get_json())
        assert answer.get_json()["type"] == "validation_failed"
        assert "Finer than USD" in answer.get_data(as_text=True)
    for field, value in [
        ("discountAbsolute", money("0.4", "JPY")),
        ("maxDiscount", money("0.4", "JPY")),
    ]:
        body = {**CAPPED, "code": "YEN", field: value}
        if field == "discountAbsolute":
            body.update(discountType="ABSOLUTE", discountPercentage=None, maxDiscount=None)
        refused = client.post(f"{BASE}/coupons", json=body, headers=manage)
        assert refused.status_code == 400, refused.get_json()
        assert refused.get_json()["details"][0]["field"] == f"{field}.amount"


def _basket():
    return {"orderTotal": money(160), "items": ITEMS, "codes": ["FIFTEEN"]}


def test_qualifications_list_automatic_and_line_promotions(client, manage, on_behalf):
    _create(
        client,
        manage,
        WEEKEND,
        {**TWENTY_OFF_SHOES, "listable": True},
        {**FIVE_OFF_EACH_TSHIRT, "listable": False},
    )
    body = {"orderTotal": money(160), "items": ITEMS, "customerNumber": "C1"}
    listed = client.post(f"{BASE}/qualifications", json=body, headers=on_behalf).get_json()
    assert [(q["code"], q["discount"], q["automatic"]) for q in listed] == [
        ("SHOES20", money(20), False),
        ("WEEKEND10", money(16), True),
    ]
    socks = {
        **body,
        "items": [{"product": "sock", "price": 5, "quantity": 1}],
        "orderTotal": money(5),
    }
    listed = client.post(f"{BASE}/qualifications", json=socks, headers=on_behalf).get_json()
    assert [q["code"] for q in listed] == ["WEEKEND10"]  # no shoes: SHOES20 does not fit


def test_the_promo_dialect_says_why_in_its_languages(client, manage, on_behalf):
    _create(client, manage, TWENTY_OFF_SHOES)
    body = {"coupon": "SHOES20", "notGiftsAndNotDeliveryTotal": 160, "order": {"items": []}}
    russian = client.post("/promocodes/", json=body, headers=on_behalf).get_json()
    assert russian["loyaltyProgramErrors"] == [
        "Промокод дает скидку на товары: передайте товары заказа"
    ]
    english = client.post(
        "/promocodes/", json=body, headers={**on_behalf, "Accept-Language": "en"}
    ).get_json()
    assert english["loyaltyProgramErrors"] == [
        "This promo code discounts items: send the order's items"
    ]
