"""Input the database cannot store, ids past a column's range, absurd nesting: a 4xx in
the dialect's shape, never a 500. Runs on SQLite and PostgreSQL (where these were 500s)."""

import json

import pytest

from tests.api.conftest import coupon_body, order

BRAND = {"X-API-Token": "acme-api-token-1"}
NUL = "a\u0000b"


def raw_json(client, method, url, text, headers):
    """Send a body as given (json= would refuse to encode a lone surrogate)."""
    return client.open(
        url,
        method=method,
        data=text.encode("utf-8", "surrogatepass"),
        headers={**headers, "Content-Type": "application/json"},
    )


def assert_tenant_400(response, field):
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["type"] == "validation_failed"
    assert [d["field"] for d in body["details"]] == [field]


@pytest.mark.parametrize(
    "path",
    [
        "/coupon/v1/acme/coupons/a%00b",
        "/coupon/v1/a%00b/coupons/x",
        "/coupon/v1/acme/coupons/a%00b/redemptions",
        "/customer/v1/a%00b/me",
    ],
)
def test_nul_in_a_path_is_a_404_in_the_tenant_shape(client, manage, path):
    response = client.get(path, headers=manage)
    assert response.status_code == 404
    assert response.get_json()["status"] == 404


def test_nul_in_other_dialects_paths(client, tenant, manage):
    brand = client.get("/brands/a%00b/discounts", headers=BRAND)
    assert brand.status_code == 404 and brand.mimetype == "application/problem+json"
    activation = client.get("/fans/a%00b")
    assert activation.status_code == 404 and activation.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "body, field",
    [
        (coupon_body(name=NUL), "name"),
        (coupon_body(code=NUL), "code"),
        (coupon_body(restrictions={"validFor": ["C1", NUL]}), "restrictions.validFor[1]"),
        ({**coupon_body(), NUL: 1}, NUL.replace("\u0000", "\ufffd")),
    ],
)
def test_nul_in_a_coupon_body(client, manage, body, field):
    assert_tenant_400(client.post("/coupon/v1/acme/coupons", json=body, headers=manage), field)


@pytest.mark.parametrize("field", ["customerNumber", "orderId"])
def test_nul_in_a_redemption_body(client, manage, on_behalf, field):
    client.post("/coupon/v1/acme/coupons", json=coupon_body(), headers=manage)
    body = order(customerNumber="C1", orderId="O-1")
    body[field] = NUL
    for endpoint in ("validation", "redemptions"):
        response = client.post(
            f"/coupon/v1/acme/coupons/WINTER_SALE/{endpoint}", json=body, headers=on_behalf
        )
        assert_tenant_400(response, field)


def test_lone_surrogate_in_a_body_is_a_400(client, manage):
    text = json.dumps(coupon_body()).replace('"Winter Sale"', '"\\ud800"')
    response = raw_json(client, "POST", "/coupon/v1/acme/coupons", text, manage)
    assert_tenant_400(response, "name")
    # A proper pair (an emoji written as escapes) is a character like any other.
    text = json.dumps(coupon_body()).replace('"Winter Sale"', '"\\ud83c\\udf84 Sale"')
    created = raw_json(client, "POST", "/coupon/v1/acme/coupons", text, manage)
    assert created.status_code == 201


def test_nul_in_a_query_string(client, manage, on_behalf):
    client.post("/coupon/v1/acme/coupons", json=coupon_body(), headers=manage)
    response = client.get(
        "/coupon/v1/acme/coupons/WINTER_SALE?customerNumber=a%00b", headers=on_behalf
    )
    assert_tenant_400(response, "customerNumber")


@pytest.mark.parametrize(
    "url, body, field",
    [
        ("/promocodes/add", {"coupon": NUL, "code": "GIFT"}, "coupon"),
        ("/promocodes/add", {"coupon": "OK1", "code": "GIFT", "hasProduct": NUL}, "hasProduct"),
        ("/promocodes/", {"coupon": NUL}, "coupon"),
        ("/promocodes/redeem", {"coupon": "X", "order": {"id": NUL}}, "order.id"),
    ],
)
def test_nul_in_promo_bodies(client, token_for, url, body, field):
    headers = token_for("hybris.coupon_manage hybris.coupon_redeem")
    response = client.post(url, json=body, headers=headers)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["statusCode"] == 400 and payload["message"] == "Invalid promo data"
    assert [d["field"] for d in payload["details"]] == [field]


def test_nul_in_a_brand_discount(client, tenant):
    body = {"name": NUL, "discount_type": "PERCENT", "discount_amount": 10}
    response = client.post("/brands/acme/discounts", json=body, headers=BRAND)
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.get_json()["errors"]] == ["name"]


def test_nul_in_the_token_form(client, tenant):
    response = client.post(
        "/oauth2/v1/token",
        data={"grant_type": "client_credentials", "client_id": NUL, "client_secret": "x"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_nul_in_an_idempotency_key(client, manage):
    headers = {**manage, "Idempotency-Key": NUL}
    response = client.post("/coupon/v1/acme/coupons", json=coupon_body(), headers=headers)
    assert response.status_code == 400 and response.get_json()["type"] == "validation_failed"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("discount_id", ["2147483648", "99999999999999999999", "0"])
def test_discount_ids_past_the_column_are_404(client, tenant, method, discount_id):
    body = {"name": "x", "discount_type": "PERCENT", "discount_amount": 5}
    response = client.open(
        f"/brands/acme/discounts/{discount_id}",
        method=method,
        json=body if method in ("PUT", "PATCH") else None,
        headers=BRAND,
    )
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_body_ids_past_the_column_are_400(client, tenant):
    fan = {"name": "Fan", "email": "fan@example.com", "discount_id": 2147483648}
    response = client.post("/brands/acme/fans", json=fan, headers=BRAND)
    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["errors"]] == ["discount_id"]


def test_promo_ids_past_the_column_are_404(client, token_for):
    response = client.delete("/promocodes/2147483648", headers=token_for("hybris.coupon_manage"))
    assert response.status_code == 404 and response.get_json()["statusCode"] == 404


def test_openapi_documents_the_id_bounds(client):
    spec = client.get("/openapi.json").get_json()
    [parameter] = [
        p
        for p in spec["paths"]["/brands/{brand}/discounts/{discount_id}"]["parameters"]
        if p["name"] == "discount_id"
    ]
    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 2147483647}


@pytest.mark.parametrize("depth", [100_000])
def test_absurdly_nested_json_is_a_400(client, manage, token_for, tenant, depth):
    nested = "[" * depth + "]" * depth
    tenant_answer = raw_json(client, "POST", "/coupon/v1/acme/coupons", nested, manage)
    assert tenant_answer.status_code == 400
    promo = raw_json(client, "POST", "/promocodes/", nested, token_for("hybris.coupon_redeem"))
    assert promo.status_code == 400 and promo.get_json()["statusCode"] == 400
    keyed = raw_json(
        client,
        "POST",
        "/coupon/v1/acme/coupons",
        nested,
        {**manage, "Idempotency-Key": "deep-1"},
    )
    assert keyed.status_code == 400
    token = client.post(
        "/oauth2/v1/token", data=nested, headers={"Content-Type": "application/json"}
    )
    assert token.status_code == 400 and token.get_json()["error"] == "invalid_request"
