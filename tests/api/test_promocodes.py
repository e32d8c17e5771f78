"""Promo dialect: the documented examples verbatim, every refusal,
English texts, roles, tenant isolation, bad payloads, and the shared engine underneath."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import coupon_body

# --- the documented bodies, verbatim ----------------------------------------------------

DOC_ADD = {
    "active": True,
    "coupon": "PROMO123",
    "fullPrice": 500,
    "code": "FREE_PIZZA",
    "dateFrom": "2024-03-15T10:00:00.000Z",
    "dateTo": "2024-03-20T10:00:00.000Z",
    "times": 2,
    "hasProduct": "pizza",
}
DOC_ADDED = {"id": 1, "coupon": "PROMO123", "active": True, "code": "FREE_PIZZA"}
DOC_LIST = [
    {
        "id": 1,
        "active": True,
        "coupon": "PROMO123",
        "fullPrice": 500,
        "code": "FREE_PIZZA",
        "dateFrom": "2024-03-15T10:00:00.000Z",
        "dateTo": "2024-03-20T10:00:00.000Z",
        "times": 2,
        "hasProduct": "pizza",
    },
    {
        "id": 2,
        "active": False,
        "coupon": "DISCOUNT50",
        "fullPrice": 1000,
        "code": "DISCOUNT_50",
        "dateFrom": None,
        "dateTo": None,
        "times": None,
        "hasProduct": None,
    },
]
DOC_CHECK = {
    "coupon": "PROMO123",
    "notGiftsAndNotDeliveryTotal": 600,
    "order": {"items": [{"code": "pizza"}]},
    "customer": {"phone": "79991234567"},
}
DOC_APPLIED = {
    "discountTotal": 0,
    "discounts": 0,
    "loyaltyProgramErrors": ["Промокод применен"],
    "freeProducts": ["FREE_PIZZA"],
    "lostGift": [],
}
DOC_EXISTS = {
    "statusCode": 409,
    "error": "Conflict",
    "message": "Промокод 'some_promo' уже существует ",
    "code": "PROMO_IS_EXISTS",
}
DOC_DELETED = {"statusCode": 201, "message": "Промокод успешно удален"}

# Inside the documented promo's window (2024-03-15 .. 2024-03-20).
DOC_NOW = datetime(2024, 3, 16, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin(token_for):
    return token_for("hybris.coupon_manage")


@pytest.fixture
def user(token_for):
    return token_for("hybris.coupon_redeem")


@pytest.fixture
def at_documented_time():
    """The service's clock (CLOCK_OFFSET_SECONDS, as a sandbox moves it) inside the documented
    promo's date window."""
    from app.database import set_clock_offset, wall_clock

    set_clock_offset((DOC_NOW - wall_clock()).total_seconds())
    yield
    set_clock_offset(0)


def add(client, admin, **fields):
    body = {"coupon": "GIFT", "code": "FREE_PIZZA", **fields}
    response = client.post("/promocodes/add", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def check(client, user, coupon="GIFT", total=600, items=("pizza",), headers=None, **extra):
    body = {
        "coupon": coupon,
        "notGiftsAndNotDeliveryTotal": total,
        "order": {"items": [{"code": code} for code in items]},
        **extra,
    }
    response = client.post("/promocodes/", json=body, headers={**user, **(headers or {})})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def refused(*messages, lost=()):
    return {
        "discountTotal": 0,
        "discounts": 0,
        "loyaltyProgramErrors": list(messages),
        "freeProducts": [],
        "lostGift": list(lost),
    }


# --- documented examples ------------------------------------------------------------------


def test_documented_add_list_patch_delete_verbatim(client, admin):
    created = client.post("/promocodes/add", json=DOC_ADD, headers=admin)
    assert created.status_code == 201
    assert created.get_json() == DOC_ADDED
    second = {"active": False, "coupon": "DISCOUNT50", "fullPrice": 1000, "code": "DISCOUNT_50"}
    assert client.post("/promocodes/add", json=second, headers=admin).status_code == 201

    listed = client.get("/promocodes/", headers=admin)
    assert listed.status_code == 200
    assert listed.get_json() == DOC_LIST

    patched = client.patch("/promocodes/1", json=DOC_ADD, headers=admin)
    assert patched.status_code == 201
    assert patched.get_json() == DOC_ADDED

    deleted = client.delete("/promocodes/2", headers=admin)
    assert deleted.status_code == 201
    assert deleted.get_json() == DOC_DELETED
    assert [p["coupon"] for p in client.get("/promocodes/", headers=admin).get_json()] == [
        "PROMO123"
    ]


def test_documented_check_verbatim(client, admin, user, at_documented_time):
    client.post("/promocodes/add", json=DOC_ADD, headers=admin)
    response = client.post("/promocodes/", json=DOC_CHECK, headers=user)
    assert response.status_code == 200
    assert response.get_json() == DOC_APPLIED


def test_documented_conflict_verbatim_and_case_insensitive(client, admin):
    add(client, admin, coupon="some_promo")
    again = client.post(
        "/promocodes/add", json={"coupon": "some_promo", "code": "X"}, headers=admin
    )
    assert again.status_code == 409
    assert again.get_json() == DOC_EXISTS
    shouted = client.post(
        "/promocodes/add", json={"coupon": "SOME_PROMO", "code": "X"}, headers=admin
    )
    assert shouted.status_code == 409
    assert shouted.get_json()["message"] == "Промокод 'SOME_PROMO' уже существует "


def test_documented_bad_request_shape(client, admin):
    response = client.post("/promocodes/add", json={"code": "FREE_PIZZA"}, headers=admin)
    assert response.status_code == 400
    body = response.get_json()
    assert {k: body[k] for k in ("statusCode", "error", "message")} == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "Invalid promo data",
    }
    assert [d["field"] for d in body["details"]] == ["coupon"]
    missing_gift = client.post("/promocodes/add", json={"coupon": "X"}, headers=admin)
    assert missing_gift.status_code == 400
    assert [d["field"] for d in missing_gift.get_json()["details"]] == ["code"]


def test_defaults_of_add(client, admin):
    add(client, admin, coupon="PLAIN")
    (listed,) = client.get("/promocodes/", headers=admin).get_json()
    assert listed == {
        "id": listed["id"],
        "active": True,
        "coupon": "PLAIN",
        "fullPrice": 0,
        "code": "FREE_PIZZA",
        "dateFrom": None,
        "dateTo": None,
        "times": None,
        "hasProduct": None,
    }


# --- check: applies, refusals, languages ----------------------------------------------


def test_check_applies_and_changes_nothing(client, admin, user, manage):
    add(client, admin, fullPrice=500, hasProduct="pizza", times=1)
    for _ in range(3):
        assert check(client, user) == DOC_APPLIED
    coupon = client.get("/coupon/v1/acme/coupons/GIFT", headers=manage).get_json()
    assert coupon["redemptionCount"] == 0


def test_every_refusal_reason(client, admin, user):
    now = datetime.now(UTC)
    add(client, admin, coupon="OFF", active=False)
    add(client, admin, coupon="LATER", dateFrom="2099-01-01T00:00:00Z")
    add(client, admin, coupon="OLD", dateTo=(now - timedelta(days=1)).isoformat())
    add(client, admin, coupon="ONCE", times=1)
    add(client, admin, coupon="BIG", fullPrice=500)
    add(client, admin, coupon="PIZZA_ONLY", hasProduct="pizza")

    assert check(client, user, coupon="NOPE") == refused("Промокод не найден")
    assert check(client, user, coupon="OFF") == refused("Промокод не активен")
    assert check(client, user, coupon="LATER") == refused(
        "Промокод начнет действовать 2099-01-01 00:00 UTC"
    )
    assert check(client, user, coupon="OLD") == refused("Срок действия промокода истек")

    redeemed = client.post(
        "/promocodes/redeem",
        json={"coupon": "ONCE", "order": {"id": "A-1", "items": []}},
        headers=user,
    )
    assert redeemed.get_json() == {**DOC_APPLIED, "freeProducts": ["FREE_PIZZA"]}
    assert check(client, user, coupon="ONCE") == refused(
        "Промокод больше не действует: исчерпан лимит использований"
    )

    assert check(client, user, coupon="BIG", total=400) == refused(
        "Минимальная сумма заказа для промокода 500: добавьте товаров еще на 100",
        lost=["FREE_PIZZA"],
    )
    assert check(client, user, coupon="BIG", total=499.5)["loyaltyProgramErrors"] == [
        "Минимальная сумма заказа для промокода 500: добавьте товаров еще на 0.5"
    ]
    assert check(client, user, coupon="PIZZA_ONLY", items=("cola",)) == refused(
        "Для применения промокода добавьте в заказ товар pizza", lost=["FREE_PIZZA"]
    )


def test_several_reasons_and_lost_gift_only_when_the_order_can_cure_it(client, admin, user):
    add(client, admin, coupon="PICKY", fullPrice=500, hasProduct="pizza")
    assert check(client, user, coupon="PICKY", total=100, items=()) == refused(
        "Минимальная сумма заказа для промокода 500: добавьте товаров еще на 400",
        "Для применения промокода добавьте в заказ товар pizza",
        lost=["FREE_PIZZA"],
    )
    add(client, admin, coupon="PICKY_OFF", fullPrice=500, active=False)
    # Switched off: no order earns it, so the gift is not "lost" but out of reach.
    assert check(client, user, coupon="PICKY_OFF", total=100)["lostGift"] == []


def test_check_without_a_code_or_order(client, user, tenant):
    assert client.post("/promocodes/", json={}, headers=user).get_json() == refused()
    assert client.post("/promocodes/", json={"coupon": None}, headers=user).get_json() == refused()


def test_codes_match_regardless_of_case_and_script(client, admin, user):
    add(client, admin, coupon="ВЕСНА2024")
    assert check(client, user, coupon="весна2024") == DOC_APPLIED


def test_deleted_promo_is_not_found(client, admin, user):
    created = add(client, admin)
    client.delete(f"/promocodes/{created['id']}", headers=admin)
    assert check(client, user) == refused("Промокод не найден")
    # The code stays taken, as for every coupon.
    again = client.post("/promocodes/add", json={"coupon": "GIFT", "code": "X"}, headers=admin)
    assert again.status_code == 409
    assert client.delete(f"/promocodes/{created['id']}", headers=admin).status_code == 404


@pytest.mark.parametrize("accept", ["en", "en-US,en;q=0.9", "de, en;q=0.5"])
def test_english_texts(client, admin, user, accept):
    add(client, admin, fullPrice=500, hasProduct="pizza")
    english = {"Accept-Language": accept}
    assert check(client, user, headers=english)["loyaltyProgramErrors"] == ["Promo code applied"]
    assert check(client, user, total=450, items=(), headers=english)["loyaltyProgramErrors"] == [
        "The order must total at least 500 for this promo code: add 50 more",
        "Add product pizza to the order to use this promo code",
    ]
    assert check(client, user, coupon="NOPE", headers=english)["loyaltyProgramErrors"] == [
        "Promo code not found"
    ]
    conflict = client.post(
        "/promocodes/add", json={"coupon": "GIFT", "code": "X"}, headers={**admin, **english}
    )
    assert conflict.get_json()["message"] == "Promo code 'GIFT' already exists"
    assert conflict.get_json()["code"] == "PROMO_IS_EXISTS"
    deleted = client.delete("/promocodes/1", headers={**admin, **english})
    assert deleted.get_json() == {"statusCode": 201, "message": "Promo code deleted"}


def test_russian_is_the_default_for_other_languages(client, admin, user):
    add(client, admin)
    german = {"Accept-Language": "de"}
    assert check(client, user, headers=german)["loyaltyProgramErrors"] == ["Промокод применен"]


# --- redeem ---------------------------------------------------------------------------


def redeem(client, user, order_id, coupon="GIFT", total=600, items=("pizza",), **extra):
    body = {
        "coupon": coupon,
        "notGiftsAndNotDeliveryTotal": total,
        "order": {"id": order_id, "items": [{"code": code} for code in items]},
        **extra,
    }
    response = client.post("/promocodes/redeem", json=body, headers=user)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_redeem_uses_times_once_per_order(client, admin, user, manage):
    add(client, admin, times=2, fullPrice=500)
    assert redeem(client, user, "order-1") == DOC_APPLIED
    # A repeat of the same order answers the same and records nothing.
    assert redeem(client, user, "order-1") == DOC_APPLIED
    assert redeem(client, user, 2) == DOC_APPLIED  # integer order ids work too
    assert redeem(client, user, "order-3") == refused(
        "Промокод больше не действует: исчерпан лимит использований"
    )
    # Still a replay once used up: order-1 got its gift.
    assert redeem(client, user, "order-1") == DOC_APPLIED
    assert redeem(client, user, "order-4", total=100) == refused(
        "Промокод больше не действует: исчерпан лимит использований",
        "Минимальная сумма заказа для промокода 500: добавьте товаров еще на 400",
    )

    # The same coupon, seen through the tenant dialect.
    coupon = client.get("/coupon/v1/acme/coupons/GIFT", headers=manage).get_json()
    assert coupon["redemptionCount"] == 2
    assert coupon["discountType"] == "FREE_PRODUCT"
    assert coupon["freeProducts"] == ["FREE_PIZZA"]
    assert coupon["maxRedemptions"] == 2
    assert coupon["restrictions"]["minOrderValue"] == {"amount": 500, "currency": "USD"}
    assert coupon["status"] == "USED"
    redemptions = client.get("/coupon/v1/acme/coupons/GIFT/redemptions", headers=manage)
    assert [r["orderId"] for r in redemptions.get_json()] == ["order-1", "2"]


def test_refused_redeem_records_nothing(client, admin, user, manage):
    add(client, admin, hasProduct="pizza")
    assert redeem(client, user, "o-1", items=("cola",))["lostGift"] == ["FREE_PIZZA"]
    assert redeem(client, user, "o-1", coupon="NOPE") == refused("Промокод не найден")
    coupon = client.get("/coupon/v1/acme/coupons/GIFT", headers=manage).get_json()
    assert coupon["redemptionCount"] == 0


def test_customer_token_redeems_as_that_customer(client, admin, customer_token, manage):
    add(client, admin)
    headers, number = customer_token()
    assert check(client, headers) == DOC_APPLIED
    assert redeem(client, headers, "c-1") == DOC_APPLIED
    (stored,) = client.get("/coupon/v1/acme/coupons/GIFT/redemptions", headers=manage).get_json()
    assert stored["customerNumber"] == number


def test_redeem_with_idempotency_key_replays(client, admin, user):
    add(client, admin, times=5)
    headers = {**user, "Idempotency-Key": "k-1"}
    body = {"coupon": "GIFT", "order": {"id": "o-9"}}
    first = client.post("/promocodes/redeem", json=body, headers=headers)
    second = client.post("/promocodes/redeem", json=body, headers=headers)
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"


# --- tenant coupons through the promo dialect -------------------------------------------


def test_tenant_coupon_with_money_discount(client, manage, user):
    body = coupon_body(code="TENPERCENT", discountType="PERCENT", discountPercentage=10)
    body.pop("discountAbsolute")
    assert client.post("/coupon/v1/acme/coupons", json=body, headers=manage).status_code == 201
    assert check(client, user, coupon="TENPERCENT", total=600) == {
        "discountTotal": 60,
        "discounts": 1,
        "loyaltyProgramErrors": ["Промокод применен"],
        "freeProducts": [],
        "lostGift": [],
    }
    assert check(client, user, coupon="TENPERCENT", total=40)["loyaltyProgramErrors"] == [
        "Минимальная сумма заказа для промокода 50: добавьте товаров еще на 10"
    ]
    assert redeem(client, user, "m-1", coupon="TENPERCENT", total=123.45)["discountTotal"] == 12.35
    (stored,) = client.get(
        "/coupon/v1/acme/coupons/TENPERCENT/redemptions", headers=manage
    ).get_json()
    assert stored["discount"] == {"amount": 12.35, "currency": "USD"}
    # Tenant coupons are not promo codes: not listed, not editable here.
    assert client.get("/promocodes/", headers=manage).get_json() == []
    assert client.patch("/promocodes/1", json={"active": False}, headers=manage).status_code == 404


def test_coupon_in_another_currency_is_refused(client, manage, user):
    body = coupon_body(code="EUROS", discountAbsolute={"amount": 5, "currency": "EUR"})
    body["restrictions"] = {}
    assert client.post("/coupon/v1/acme/coupons", json=body, headers=manage).status_code == 201
    assert check(client, user, coupon="EUROS")["loyaltyProgramErrors"] == [
        "Промокод действует только для заказов в валюте EUR"
    ]


# --- admin edits ------------------------------------------------------------------------


def test_patch_changes_only_what_is_sent_and_can_rename(client, admin, user):
    created = add(client, admin, coupon="OLD_NAME", fullPrice=300, times=3, hasProduct="pizza")
    url = f"/promocodes/{created['id']}"
    renamed = client.patch(url, json={"coupon": "NEW_NAME", "times": None}, headers=admin)
    assert renamed.status_code == 201
    assert renamed.get_json() == {
        "id": created["id"],
        "coupon": "NEW_NAME",
        "active": True,
        "code": "FREE_PIZZA",
    }
    (listed,) = client.get("/promocodes/", headers=admin).get_json()
    assert listed["fullPrice"] == 300 and listed["hasProduct"] == "pizza"
    assert listed["times"] is None
    assert check(client, user, coupon="OLD_NAME") == refused("Промокод не найден")
    assert check(client, user, coupon="new_name") == DOC_APPLIED

    client.patch(url, json={"fullPrice": 0, "hasProduct": None, "active": False}, headers=admin)
    (listed,) = client.get("/promocodes/", headers=admin).get_json()
    assert (listed["fullPrice"], listed["hasProduct"], listed["active"]) == (0, None, False)


def test_patch_rename_onto_a_taken_code_is_409(client, admin):
    add(client, admin, coupon="FIRST")
    second = add(client, admin, coupon="SECOND")
    response = client.patch(f"/promocodes/{second['id']}", json={"coupon": "first"}, headers=admin)
    assert response.status_code == 409
    assert response.get_json()["code"] == "PROMO_IS_EXISTS"
    # Same code in another case is not a conflict with itself.
    same = client.patch(f"/promocodes/{second['id']}", json={"coupon": "second"}, headers=admin)
    assert same.status_code == 201 and same.get_json()["coupon"] == "second"


def test_unknown_ids_are_404(client, admin):
    for url in ("/promocodes/999", "/promocodes/99999999999999999999"):
        response = client.patch(url, json={"active": False}, headers=admin)
        assert response.status_code == 404
        assert client.delete(url, headers=admin).status_code == 404
    response = client.delete("/promocodes/999", headers=admin)
    assert response.get_json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "Промокод не найден",
    }


def test_add_is_idempotent_with_a_key(client, admin):
    headers = {**admin, "Idempotency-Key": "add-1"}
    body = {"coupon": "ONCE_ONLY", "code": "FREE_PIZZA"}
    first = client.post("/promocodes/add", json=body, headers=headers)
    second = client.post("/promocodes/add", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    other = client.post("/promocodes/add", json={**body, "times": 3}, headers=headers)
    assert other.status_code == 422


# --- roles and tenants -----------------------------------------------------------------


def test_roles(client, admin, user, tenant):
    no_token = client.get("/promocodes/")
    assert no_token.status_code == 401
    assert no_token.get_json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Требуется авторизация",
    }
    assert client.post("/promocodes/", json=DOC_CHECK).status_code == 401
    # Authentication comes before the body: an anonymous bad body is still a 401.
    assert (
        client.post("/promocodes/add", data="{", content_type="application/json").status_code == 401
    )
    bad = client.get("/promocodes/", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.get_json()["message"] == "Токен доступа недействителен или истек"

    for method, url in (
        ("get", "/promocodes/"),
        ("post", "/promocodes/add"),
        ("patch", "/promocodes/1"),
        ("delete", "/promocodes/1"),
    ):
        response = getattr(client, method)(url, json=DOC_ADD, headers=user)
        assert response.status_code == 403, (method, url)
        assert response.get_json()["message"].startswith("Требуется роль администратора")
    for url in ("/promocodes/", "/promocodes/redeem"):
        response = client.post(url, json=DOC_CHECK, headers=admin)
        assert response.status_code == 403
        assert response.get_json()["message"].startswith("Требуется роль пользователя")


def test_another_tenant_can_neither_use_nor_list_nor_change(client, admin, user, token_for):
    from app.engine.tenants import create_tenant

    created = add(client, admin, coupon="ACME_GIFT")
    other = create_tenant(slug="globex", currency="USD")
    other_admin = token_for("hybris.coupon_manage", creds=other)
    other_user = token_for("hybris.coupon_redeem", creds=other)

    assert client.get("/promocodes/", headers=other_admin).get_json() == []
    assert check(client, other_user, coupon="ACME_GIFT") == refused("Промокод не найден")
    assert redeem(client, other_user, "x-1", coupon="ACME_GIFT") == refused("Промокод не найден")
    url = f"/promocodes/{created['id']}"
    assert client.patch(url, json={"active": False}, headers=other_admin).status_code == 404
    assert client.delete(url, headers=other_admin).status_code == 404
    # Codes are per tenant: globex may have its own ACME_GIFT.
    add(client, other_admin, coupon="ACME_GIFT", code="OTHER_GIFT")
    assert check(client, user, coupon="ACME_GIFT") == DOC_APPLIED
    assert [p["code"] for p in client.get("/promocodes/", headers=admin).get_json()] == [
        "FREE_PIZZA"
    ]


# --- bad payloads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"coupon": "X", "code": "G", "times": 0}, "times"),
        ({"coupon": "X", "code": "G", "times": "2"}, "times"),
        ({"coupon": "X", "code": "G", "times": 2.5}, "times"),
        ({"coupon": "X", "code": "G", "fullPrice": -1}, "fullPrice"),
        ({"coupon": "X", "code": "G", "fullPrice": "many"}, "fullPrice"),
        ({"coupon": "X", "code": "G", "active": "yes please"}, "active"),
        ({"coupon": "X", "code": "G", "dateFrom": "tomorrow"}, "dateFrom"),
        (
            {
                "coupon": "X",
                "code": "G",
                "dateFrom": "2024-03-20T10:00:00Z",
                "dateTo": "2024-03-15T10:00:00Z",
            },
            "dateTo",
        ),
        ({"coupon": "bad code!", "code": "G"}, "coupon"),
        ({"coupon": "", "code": "G"}, "coupon"),
        ({"coupon": "X", "code": ""}, "code"),
        ({"coupon": "X", "code": None}, "code"),
        ({"coupon": "X", "code": "G", "hasProduct": "p" * 129}, "hasProduct"),
        ({"coupon": "X", "code": "G", "colour": "red"}, "colour"),
    ],
)
def test_bad_add_payloads(client, admin, body, field):
    response = client.post("/promocodes/add", json=body, headers=admin)
    assert response.status_code == 400, response.get_json()
    result = response.get_json()
    assert result["statusCode"] == 400 and result["message"] == "Invalid promo data"
    assert field in [d["field"] for d in result["details"]]


@pytest.mark.parametrize(
    "body",
    [
        {"coupon": 5},
        {"coupon": "X", "notGiftsAndNotDeliveryTotal": "six hundred"},
        {"coupon": "X", "notGiftsAndNotDeliveryTotal": -1},
        {"coupon": "X", "notGiftsAndNotDeliveryTotal": True},
        {"coupon": "X", "order": []},
        {"coupon": "X", "order": {"items": {"code": "pizza"}}},
        {"coupon": "X", "order": {"items": [{"code": 5}]}},
        {"coupon": "X", "customer": "79991234567"},
        [],
    ],
)
def test_bad_check_payloads(client, user, body):
    response = client.post("/promocodes/", json=body, headers=user)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message"] == "Invalid promo data"


def test_check_ignores_unknown_order_fields(client, admin, user):
    add(client, admin)
    body = {
        "coupon": "GIFT",
        "order": {"items": [{"code": "pizza", "price": 600, "qty": 1}], "note": "ring twice"},
        "customer": {"phone": "79991234567", "name": "Ivan"},
    }
    assert client.post("/promocodes/", json=body, headers=user).get_json() == DOC_APPLIED


@pytest.mark.parametrize(
    "body",
    [
        {"coupon": "GIFT"},
        {"coupon": "GIFT", "order": {}},
        {"coupon": "GIFT", "order": {"id": True}},
        {"coupon": "GIFT", "order": {"id": ""}},
        {"coupon": "GIFT", "order": {"id": "x" * 129}},
        {"order": {"id": "o-1"}},
    ],
)
def test_bad_redeem_payloads(client, user, body, tenant):
    response = client.post("/promocodes/redeem", json=body, headers=user)
    assert response.status_code == 400, response.get_json()


def test_malformed_and_non_json_bodies(client, admin, user):
    malformed = client.post(
        "/promocodes/add", data="{", content_type="application/json", headers=admin
    )
    assert malformed.status_code == 400
    assert malformed.get_json()["message"] == "Invalid promo data"
    form = client.post("/promocodes/", data={"coupon": "X"}, headers=user)
    assert form.status_code == 415
    assert form.get_json()["statusCode"] == 415
    assert client.put("/promocodes/1", json={}, headers=admin).status_code == 405


def test_check_and_redeem_are_rate_limited(app, user, database_url):
    from app import create_app
    from app.extensions import limiter
    from tests.conftest import BASE_CONFIG

    limited_app = create_app(
        {
            **BASE_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_ENABLED": True,
            # A client token (the user here) spends its client budget, not the guessing one.
            "RATELIMIT_CLIENT": "3/minute",
        }
    )
    client = limited_app.test_client()
    app.extensions["sqlalchemy"].session.remove()  # SQLite: release the outer lock
    try:
        body = {"coupon": "GUESS1"}
        statuses = [
            client.post("/promocodes/", json=body, headers=user).status_code for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        limited = client.post("/promocodes/", json=body, headers=user)
        assert limited.get_json() == {
            "statusCode": 429,
            "error": "Too Many Requests",
            "message": "Слишком много запросов",
        }
    finally:
        with limited_app.app_context():
            limiter.reset()
            limited_app.extensions["sqlalchemy"].engine.dispose()


def test_texts_travel_as_utf8_not_escapes(client, admin, user):
    add(client, admin)
    response = client.post("/promocodes/", json={"coupon": "GIFT"}, headers=user)
    assert "Промокод применен".encode() in response.data
    assert response.mimetype == "application/json"
