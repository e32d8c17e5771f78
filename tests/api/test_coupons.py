"""Tenant coupon dialect: CRUD, failure types, scopes, isolation, idempotency, bad input."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.models import OutboxMessage
from tests.api.conftest import coupon_body, order

BASE = "/coupon/v1/acme/coupons"


def iso(delta_days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=delta_days)).isoformat()


def create(client, headers, **overrides):
    response = client.post(BASE, json=coupon_body(**overrides), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


# --- failure types, on validation and on redemption -------------------------------

FAILURES = [
    # (coupon overrides, order body, expected status, expected type)
    (
        {"restrictions": {"validFor": ["C9"]}},
        order(customerNumber="C1"),
        403,
        "coupon_redemption_forbidden",
    ),
    ({"active": False}, order(customerNumber="C1"), 400, "coupon_not_active"),
    ({"restrictions": {"validFrom": iso(1)}}, order(customerNumber="C1"), 400, "coupon_not_active"),
    ({"restrictions": {"validUntil": iso(-1)}}, order(customerNumber="C1"), 400, "coupon_expired"),
    (
        {"restrictions": {"minOrderValue": {"amount": 50, "currency": "USD"}}},
        order(50, 25, currency="EUR", discount_currency="USD", customerNumber="C1"),
        400,
        "coupon_currency_incorrect",
    ),
    ({}, order(49.99, 25, customerNumber="C1"), 400, "coupon_order_total_too_low"),
    (
        {},
        order(50, 25, discount_currency="EUR", customerNumber="C1"),
        400,
        "coupon_discount_currency_incorrect",
    ),
    ({}, order(50, 25.01, customerNumber="C1"), 400, "coupon_discount_amount_incorrect"),
    (
        {"discountType": "PERCENT", "discountAbsolute": None, "discountPercentage": 10},
        order(50, 5.01, customerNumber="C1"),
        400,
        "coupon_discount_amount_incorrect",
    ),
]
MESSAGES = {
    "coupon_not_active": "Coupon is not active",
    "coupon_expired": "Coupon has expired",
    "coupon_redemptions_exceeded": "Coupon has reached maximum number of redemptions",
    "coupon_redemption_forbidden": "Current customer is not allowed to redeem the coupon",
    "coupon_order_total_too_low": "The order value is too low for the coupon",
    "coupon_currency_incorrect": "Currency inconsistent with coupon",
    "coupon_discount_currency_incorrect": "Discount currency invalid inconsistent coupon",
    "coupon_discount_amount_incorrect": "Discount amount exceeds allowed coupon discount",
}


@pytest.mark.parametrize("endpoint", ["validation", "redemptions"])
@pytest.mark.parametrize("overrides,body,status,kind", FAILURES)
def test_failure_types(client, manage, on_behalf, endpoint, overrides, body, status, kind):
    code = create(client, manage, **overrides)
    response = client.post(f"{BASE}/{code}/{endpoint}", json=body, headers=on_behalf)
    assert response.status_code == status, response.get_json()
    assert response.get_json() == {"status": status, "type": kind, "message": MESSAGES[kind]}
    count = client.get(f"{BASE}/{code}", headers=manage).get_json()["redemptionCount"]
    assert count == 0


@pytest.mark.parametrize("endpoint", ["validation", "redemptions"])
def test_redemptions_exceeded_total_and_per_customer(client, manage, on_behalf, endpoint):
    total = create(client, manage, code="TOTAL", maxRedemptions=1)
    per_customer = create(client, manage, code="PER", maxRedemptionsPerCustomer=1)
    for code in (total, per_customer):
        first = client.post(
            f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=on_behalf
        )
        assert first.status_code == 201
        again = client.post(
            f"{BASE}/{code}/{endpoint}", json=order(customerNumber="C1"), headers=on_behalf
        )
        assert again.status_code == 400
        assert again.get_json()["type"] == "coupon_redemptions_exceeded"
    other = client.post(
        f"{BASE}/{per_customer}/{endpoint}", json=order(customerNumber="C2"), headers=on_behalf
    )
    assert other.status_code == (200 if endpoint == "validation" else 201)
    assert client.get(f"{BASE}/TOTAL", headers=manage).get_json()["status"] == "USED"


@pytest.mark.parametrize("endpoint", ["validation", "redemptions"])
def test_deleted_or_unknown_coupon_is_404(client, manage, on_behalf, endpoint):
    code = create(client, manage)
    client.delete(f"{BASE}/{code}", headers=manage)
    for path_code in (code, "NO_SUCH"):
        response = client.post(
            f"{BASE}/{path_code}/{endpoint}", json=order(customerNumber="C1"), headers=on_behalf
        )
        assert response.status_code == 404
        assert response.get_json()["status"] == 404


def test_redemption_writes_counter_row_and_event_together(client, manage, on_behalf, db):
    code = create(client, manage)
    response = client.post(
        f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=on_behalf
    )
    assert response.status_code == 201
    events = db.session.scalars(select(OutboxMessage)).all()
    assert len(events) == 1
    assert events[0].topic == "hybris.coupon.redemption"
    assert events[0].payload["couponCode"] == code
    assert events[0].payload["redemptionId"] == response.get_json()["id"]
    assert Decimal(events[0].payload["discount"]["amount"]) == 25
    coupon = client.get(f"{BASE}/{code}", headers=manage).get_json()
    assert coupon["redemptionCount"] == 1


# --- CRUD ---------------------------------------------------------------------------


def test_generated_code_and_case_insensitive_uniqueness(client, manage):
    body = coupon_body()
    del body["code"]
    created = client.post(BASE, json=body, headers=manage)
    assert created.status_code == 201
    code = created.get_json()["id"]
    assert len(code) == 13 and not set(code) & set("0O1IL")
    assert created.headers["Location"].endswith(f"/coupons/{code}")
    create(client, manage, code="Spring")
    clash = client.post(BASE, json=coupon_body(code="SPRING"), headers=manage)
    assert clash.status_code == 409 and clash.get_json()["type"] == "coupon_code_exists"
    assert client.get(f"{BASE}/spring", headers=manage).get_json()["code"] == "Spring"


def test_deleted_code_is_never_reusable_and_lists_filter(client, manage):
    create(client, manage, code="A1")
    create(client, manage, code="B2")
    assert client.delete(f"{BASE}/A1", headers=manage).status_code == 204
    reuse = client.post(BASE, json=coupon_body(code="a1"), headers=manage)
    assert reuse.status_code == 409

    def codes(query):
        response = client.get(BASE + query, headers=manage)
        return [c["code"] for c in response.get_json()], response.headers["X-Total-Count"]

    assert codes("") == (["B2"], "1")
    assert codes("?showDeleted=true") == (["A1", "B2"], "2")
    assert codes("?deleted=true") == (["A1"], "1")
    assert codes("?deleted=false&showDeleted=true") == (["B2"], "1")


def test_paging(client, manage):
    for i in range(5):
        create(client, manage, code=f"P{i}")
    page = client.get(f"{BASE}?pageSize=2&pageNumber=2", headers=manage)
    assert [c["code"] for c in page.get_json()] == ["P2", "P3"]
    assert page.headers["X-Total-Count"] == "5"
    for bad in ("pageSize=0", "pageSize=1000", "pageNumber=0", "pageSize=abc"):
        response = client.get(f"{BASE}?{bad}", headers=manage)
        assert response.status_code == 400 and response.get_json()["type"] == "validation_failed"


def test_patch_and_put(client, manage):
    code = create(client, manage)
    patched = client.patch(
        f"{BASE}/{code}", json={"name": "Renamed", "maxRedemptions": 5}, headers=manage
    )
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["name"] == "Renamed" and body["maxRedemptions"] == 5
    assert body["discountAbsolute"] == {"amount": 25, "currency": "USD"}
    switched = client.patch(
        f"{BASE}/{code}",
        json={"discountType": "PERCENT", "discountPercentage": 12.5},
        headers=manage,
    )
    assert switched.get_json()["discountAbsolute"] is None
    assert switched.get_json()["discountPercentage"] == 12.5
    rename = client.put(f"{BASE}/{code}", json=coupon_body(code="OTHER"), headers=manage)
    assert rename.status_code == 400
    assert (
        client.put(f"{BASE}/NOPE", json=coupon_body(code="NOPE"), headers=manage).status_code == 404
    )


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"discountAbsolute": {"amount": 25, "currency": "XYZ"}}, "discountAbsolute.currency"),
        ({"discountAbsolute": {"amount": -1, "currency": "USD"}}, "discountAbsolute.amount"),
        ({"discountAbsolute": {"amount": 1e30, "currency": "USD"}}, "discountAbsolute.amount"),
        ({"discountAbsolute": {"amount": "NaN", "currency": "USD"}}, "discountAbsolute.amount"),
        (
            {"discountType": "PERCENT", "discountAbsolute": None, "discountPercentage": 0},
            "discountPercentage",
        ),
        (
            {"discountType": "PERCENT", "discountAbsolute": None, "discountPercentage": 100.5},
            "discountPercentage",
        ),
        ({"discountType": "PERCENT", "discountAbsolute": None}, "discountPercentage"),
        ({"discountType": "BOGUS"}, "discountType"),
        ({"discountAbsolute": None}, "discountAbsolute.amount"),
        (
            {
                "restrictions": {
                    "validFrom": "2030-01-01T00:00:00Z",
                    "validUntil": "2029-01-01T00:00:00Z",
                }
            },
            "restrictions.validUntil",
        ),
        ({"restrictions": {"validFrom": "not a date"}}, "restrictions.validFrom"),
        ({"maxRedemptions": 0}, "maxRedemptions"),
        ({"maxRedemptions": -5}, "maxRedemptions"),
        ({"maxRedemptions": 1.5}, "maxRedemptions"),
        ({"maxRedemptions": 10**12}, "maxRedemptions"),
        ({"allowAnonymous": True, "maxRedemptionsPerCustomer": 1}, "maxRedemptionsPerCustomer"),
        ({"allowAnonymous": True, "restrictions": {"validFor": ["C1"]}}, "restrictions.validFor"),
        ({"code": "bad code/with slash"}, "code"),
        (
            {"restrictions": {"minOrderValue": {"amount": 5, "currency": "EUR"}}},
            "restrictions.minOrderValue.currency",
        ),
        ({"unknownField": 1}, "unknownField"),
        ({"allowAnonymous": "perhaps"}, "allowAnonymous"),
    ],
)
def test_invalid_coupon_payloads_name_the_field(client, manage, overrides, field):
    response = client.post(BASE, json=coupon_body(**overrides), headers=manage)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["status"] == 400 and body["type"] == "validation_failed"
    assert field in [d["field"] for d in body["details"]], body


# --- scopes, anonymous access, tenant isolation ---------------------------------------


def test_scope_rules(client, manage, redeem, on_behalf, token_for, customer_token):
    restricted = create(client, manage, code="RESTRICTED", restrictions={"validFor": ["C1"]})
    open_code = create(client, manage, code="OPEN")
    anonymous = create(client, manage, code="ANON", allowAnonymous=True, restrictions={})

    # Anonymous: only anonymous coupons; management needs a token.
    assert client.get(f"{BASE}/{anonymous}").status_code == 200
    assert client.get(f"{BASE}/{open_code}").status_code == 403
    assert client.get(BASE).status_code == 401
    assert client.post(f"{BASE}/{anonymous}/redemptions", json=order(50, 25)).status_code == 201
    forbidden = client.post(f"{BASE}/{open_code}/redemptions", json=order(50, 25))
    assert forbidden.get_json()["type"] == "coupon_redemption_forbidden"

    # redeem: any unrestricted coupon; not the restricted one; cannot manage.
    assert client.get(f"{BASE}/{open_code}", headers=redeem).status_code == 200
    assert client.get(f"{BASE}/{restricted}", headers=redeem).status_code == 403
    assert client.get(BASE, headers=redeem).status_code == 403
    assert client.get(BASE, headers=redeem).get_json()["type"] == "insufficient_scope"
    assert client.delete(f"{BASE}/{open_code}", headers=redeem).status_code == 403

    # on behalf: restricted coupons with the customer's number.
    assert (
        client.get(f"{BASE}/{restricted}?customerNumber=C1", headers=on_behalf).status_code == 200
    )
    assert (
        client.get(f"{BASE}/{restricted}?customerNumber=C2", headers=on_behalf).status_code == 403
    )

    # manage: read anything, redeem nothing that is not anonymous.
    assert client.get(f"{BASE}/{restricted}", headers=manage).status_code == 200
    no_redeem = client.post(f"{BASE}/{open_code}/redemptions", json=order(), headers=manage)
    assert no_redeem.status_code == 403

    # Customers: a customer token redeems as that customer; a stranger's restricted coupon is 403.
    customer, number = customer_token()
    mine = create(client, manage, code="MINE", restrictions={"validFor": [number]})
    assert client.get(f"{BASE}/{mine}", headers=customer).status_code == 200
    assert client.get(f"{BASE}/{restricted}", headers=customer).status_code == 403
    redeemed = client.post(f"{BASE}/{mine}/redemptions", json=order(50, 25), headers=customer)
    assert redeemed.status_code == 201
    rid = redeemed.get_json()["id"]
    assert client.get(f"{BASE}/{mine}/redemptions/{rid}", headers=customer).status_code == 200
    other, _ = customer_token("other@example.com")
    assert client.get(f"{BASE}/{mine}/redemptions/{rid}", headers=other).status_code == 404

    # Deleted coupons: managers read them, customers get 404.
    client.delete(f"{BASE}/{mine}", headers=manage)
    assert client.get(f"{BASE}/{mine}", headers=customer).status_code == 404
    assert client.get(f"{BASE}/{mine}", headers=manage).get_json()["deleted"] is True


def test_unprefixed_scopes_work_too(client, token_for):
    headers = token_for("coupon_manage")
    assert client.get(BASE, headers=headers).status_code == 200


def test_tenant_isolation(client, manage, token_for):
    from app.engine.tenants import create_tenant

    other = create_tenant(slug="globex", currency="EUR")
    other_manage = token_for("hybris.coupon_manage", creds=other)
    create(client, manage, code="ACME_ONLY")
    # Another tenant's token on our paths, and our code under their path: 404 both.
    assert client.get(f"{BASE}/ACME_ONLY", headers=other_manage).status_code == 404
    assert client.get(BASE, headers=other_manage).status_code == 404
    assert (
        client.get("/coupon/v1/globex/coupons/ACME_ONLY", headers=other_manage).status_code == 404
    )
    assert client.get("/coupon/v1/globex/coupons", headers=other_manage).get_json() == []
    assert client.get("/coupon/v1/nobody/coupons/X").status_code == 404


def test_bad_tokens_are_401(client, tenant, app):
    import jwt

    for header in ("Bearer not-a-jwt", "Basic abc", "Bearer "):
        response = client.get(BASE, headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.get_json()["status"] == 401
    now = datetime.now(UTC)
    claims = {
        "iss": "coupon-service",
        "aud": "coupon-api",
        "sub": "x",
        "tenant": "acme",
        "kind": "client",
        "scope": "coupon_manage",
        "iat": now,
    }
    expired = jwt.encode({**claims, "exp": now - timedelta(seconds=5)}, app.config["SECRET_KEY"])
    forged = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, "another-key-" + "x" * 32)
    wrong_aud = jwt.encode(
        {**claims, "aud": "other", "exp": now + timedelta(hours=1)}, app.config["SECRET_KEY"]
    )
    unsigned = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, None, algorithm="none")
    for token in (expired, forged, wrong_aud, unsigned):
        response = client.get(BASE, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.get_json()["type"] == "invalid_token"


def test_credentials_are_checked_before_the_body(client, tenant, redeem):
    """Without the right token, a bad body is still a 401/403, never a 400."""
    bad = {"data": "{", "content_type": "application/json"}
    assert client.post(BASE, **bad).status_code == 401
    assert client.put(f"{BASE}/X", **bad).status_code == 401
    assert client.patch(f"{BASE}/X", **bad).status_code == 401
    assert client.post(BASE, headers=redeem, **bad).status_code == 403
    invalid = {"Authorization": "Bearer not-a-jwt"}
    assert client.post(f"{BASE}/X/validation", headers=invalid, **bad).status_code == 401
    assert client.post(f"{BASE}/X/redemptions", headers=invalid, **bad).status_code == 401
    assert client.post("/customer/v1/acme/signup", **bad).status_code == 401
    assert client.post("/customer/v1/acme/login", **bad).status_code == 401


# --- idempotency --------------------------------------------------------------------


def test_idempotent_redemption_and_creation(client, manage, on_behalf):
    code = create(client, manage)
    headers = {**on_behalf, "Idempotency-Key": "order-42"}
    first = client.post(
        f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=headers
    )
    again = client.post(
        f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"{BASE}/{code}", headers=manage).get_json()["redemptionCount"] == 1
    changed = client.post(
        f"{BASE}/{code}/redemptions", json=order(60, 25, customerNumber="C1"), headers=headers
    )
    assert changed.status_code == 422
    assert changed.get_json()["type"] == "idempotency_key_reused"

    create_headers = {**manage, "Idempotency-Key": "create-1"}
    body = coupon_body()
    del body["code"]
    one = client.post(BASE, json=body, headers=create_headers)
    two = client.post(BASE, json=body, headers=create_headers)
    assert one.get_json()["id"] == two.get_json()["id"]
    assert client.get(BASE, headers=manage).headers["X-Total-Count"] == "2"
    too_long = client.post(BASE, json=body, headers={**manage, "Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400


def test_order_id_redeems_once(client, manage, on_behalf):
    code = create(client, manage)
    body = order(customerNumber="C1", orderId="ORD-1")
    first = client.post(f"{BASE}/{code}/redemptions", json=body, headers=on_behalf)
    second = client.post(f"{BASE}/{code}/redemptions", json=body, headers=on_behalf)
    assert first.status_code == 201 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]
    assert client.get(f"{BASE}/{code}", headers=manage).get_json()["redemptionCount"] == 1


# --- bad input on every route ---------------------------------------------------------

BAD_BODIES = [
    ("malformed", "{not json"),
    ("list", "[1, 2]"),
    ("string", '"text"'),
    ("wrong types", '{"orderTotal": "fifty", "discount": 5, "discountType": 7}'),
]


@pytest.mark.parametrize("label,raw", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_answer_400_in_dialect_shape(client, manage, on_behalf, token_for, label, raw):
    code = create(client, manage)
    tenant_token = token_for("")
    routes = [
        ("post", BASE, manage),
        ("put", f"{BASE}/{code}", manage),
        ("patch", f"{BASE}/{code}", manage),
        ("post", f"{BASE}/{code}/validation", on_behalf),
        ("post", f"{BASE}/{code}/redemptions", on_behalf),
        ("post", "/customer/v1/acme/signup", tenant_token),
        ("post", "/customer/v1/acme/login", tenant_token),
    ]
    for method, path, headers in routes:
        response = getattr(client, method)(
            path, data=raw, headers=headers, content_type="application/json"
        )
        assert response.status_code == 400, (method, path, response.get_json())
        body = response.get_json()
        assert body["status"] == 400 and body["type"] == "validation_failed", body


def test_non_json_body_is_415(client, manage):
    response = client.post(
        BASE, data="code=X", headers=manage, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.get_json()["type"] == "unsupported_media_type"


def test_unknown_route_and_method_in_dialect(client, manage):
    missing = client.get("/coupon/v1/acme/nothing", headers=manage)
    assert missing.status_code == 404 and missing.get_json()["type"] == "not_found"
    wrong = client.post(f"{BASE}/X", json={}, headers=manage)
    assert wrong.status_code == 405 and wrong.get_json()["type"] == "method_not_allowed"


def test_order_id_replay_is_only_for_the_same_caller(client, manage, customer_token):
    """A replay of an order id answers the redemption again only to who made it."""
    code = create(client, manage)
    alice, _ = customer_token("alice@example.com")
    bob, _ = customer_token("bob@example.com")
    body = order(orderId="O-1")
    first = client.post(f"{BASE}/{code}/redemptions", json=body, headers=alice)
    assert first.status_code == 201

    anonymous = client.post(f"{BASE}/{code}/redemptions", json=body)
    assert anonymous.status_code == 403
    assert anonymous.get_json()["type"] == "coupon_redemption_forbidden"
    # A customer's order ids are that customer's: Bob's "O-1" is an order of his own.
    stranger = client.post(f"{BASE}/{code}/redemptions", json=body, headers=bob)
    assert stranger.status_code == 201
    assert first.get_json()["id"] not in stranger.get_data(as_text=True)

    replay = client.post(f"{BASE}/{code}/redemptions", json=body, headers=alice)
    assert replay.status_code == 200 and replay.get_json() == first.get_json()
    assert client.get(f"{BASE}/{code}", headers=manage).get_json()["redemptionCount"] == 2


def test_on_behalf_replay_needs_the_same_customer(client, manage, on_behalf):
    code = create(client, manage)
    first = client.post(
        f"{BASE}/{code}/redemptions",
        json=order(customerNumber="C1", orderId="O-2"),
        headers=on_behalf,
    )
    other = client.post(
        f"{BASE}/{code}/redemptions",
        json=order(customerNumber="C2", orderId="O-2"),
        headers=on_behalf,
    )
    assert first.status_code == 201 and other.status_code == 409


def test_refused_keyed_request_is_stored_without_its_writes(client, manage, on_behalf, db):
    """A refusal under an Idempotency-Key is replayed, and leaves nothing behind."""
    from app.models import Redemption

    code = create(client, manage, maxRedemptions=1)
    client.post(f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=on_behalf)
    headers = {**on_behalf, "Idempotency-Key": "late-1"}
    refused = client.post(
        f"{BASE}/{code}/redemptions", json=order(customerNumber="C2"), headers=headers
    )
    again = client.post(
        f"{BASE}/{code}/redemptions", json=order(customerNumber="C2"), headers=headers
    )
    assert refused.status_code == again.status_code == 400
    assert again.get_json()["type"] == "coupon_redemptions_exceeded"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.query(Redemption).count() == 1


def test_keyed_failure_that_a_retry_may_cure_is_not_stored(client, manage, token_for):
    """A 404 under a key (coupon not created yet) leaves the key free for the retry."""
    headers = {**token_for("hybris.coupon_redeem_on_behalf"), "Idempotency-Key": "early-1"}
    body = order(customerNumber="C1")
    assert client.post(f"{BASE}/SOON/redemptions", json=body, headers=headers).status_code == 404
    create(client, manage, code="SOON")
    assert client.post(f"{BASE}/SOON/redemptions", json=body, headers=headers).status_code == 201


def test_reading_a_redemption_needs_a_token(client, manage, on_behalf):
    code = create(client, manage, allowAnonymous=True, restrictions={})
    rid = client.post(f"{BASE}/{code}/redemptions", json=order()).get_json()["id"]
    anonymous = client.get(f"{BASE}/{code}/redemptions/{rid}")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer realm="coupon-service"')
    assert client.get(f"{BASE}/{code}/redemptions/{rid}", headers=manage).status_code == 200


def test_bearer_challenges_follow_rfc_6750(client, tenant, redeem):
    missing = client.get(BASE)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == (
        'Bearer realm="coupon-service", error="invalid_token", '
        'error_description="Requires scope hybris.coupon_manage"'
    )
    bad = client.get(BASE, headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.headers["WWW-Authenticate"] == (
        'Bearer realm="coupon-service", error="invalid_token", '
        'error_description="The access token is invalid or expired"'
    )
    scope = client.get(BASE, headers=redeem)
    assert scope.status_code == 403
    assert 'error="insufficient_scope"' in scope.headers["WWW-Authenticate"]
    promo = client.get("/promocodes/")
    assert promo.status_code == 401
    assert 'error="invalid_token"' in promo.headers["WWW-Authenticate"]
    brand = client.get("/brands")
    assert brand.headers["WWW-Authenticate"] == (
        'ApiKey realm="coupon-service", header="X-API-Token"'
    )


def test_security_headers(client, manage):
    anonymous = client.get("/health")
    assert anonymous.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in anonymous.headers.get("Cache-Control", "")
    authenticated = client.get(BASE, headers=manage)
    assert authenticated.headers["Cache-Control"] == "no-store"
    assert authenticated.headers["X-Content-Type-Options"] == "nosniff"
    refused = client.get(BASE, headers={"Authorization": "Bearer x"})
    assert refused.headers["Cache-Control"] == "no-store"
    brand = client.get("/brands", headers={"X-API-Token": "acme-api-token-1"})
    assert brand.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("overrides", "total", "granted"),
    [
        ({"discountType": "PERCENT", "discountPercentage": 10, "discountAbsolute": None}, 80, "8"),
        ({}, 80, "25"),  # the default body: 25 USD off orders of 50 or more
        ({"restrictions": None}, 9, "9"),  # never more than the order
    ],
)
def test_validation_without_a_discount_answers_the_discount(
    client, manage, on_behalf, overrides, total, granted
):
    assert (
        client.post(BASE, json=coupon_body(code="CALC", **overrides), headers=manage).status_code
        == 201
    )
    body = {"orderTotal": {"amount": total, "currency": "USD"}}
    answer = client.post(f"{BASE}/CALC/validation", json=body, headers=on_behalf)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    discount = answer.get_json()["discount"]
    assert discount["currency"] == "USD" and Decimal(str(discount["amount"])) == Decimal(granted)
    # Stating that very discount is the original contract: an empty 200, without a type.
    stated = client.post(
        f"{BASE}/CALC/validation", json={**body, "discount": discount}, headers=on_behalf
    )
    assert stated.status_code == 200 and stated.data == b""
    assert "Content-Type" not in stated.headers
    # A rule broken is refused the same way with or without the discount.
    low = client.post(
        f"{BASE}/CALC/validation",
        json={"orderTotal": {"amount": total, "currency": "EUR"}},
        headers=on_behalf,
    )
    assert low.status_code == 400 and low.get_json()["type"] == "coupon_currency_incorrect"


def test_empty_answers_have_no_content_type(client, manage):
    client.post(BASE, json=coupon_body(code="GONE"), headers=manage)
    deleted = client.delete(f"{BASE}/GONE", headers=manage)
    assert deleted.status_code == 204 and "Content-Type" not in deleted.headers
