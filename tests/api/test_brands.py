"""Brands dialect in-process: auth, discounts, fans, activation, outbox rows written."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.database import utcnow
from app.models import Fan, OutboxMessage

TOKEN = {"X-API-Token": "acme-api-token-1"}
DISCOUNT = {
    "name": "new discount",
    "date_expires": "2099-12-31",
    "discount_type": "PERCENT",
    "discount_amount": 10,
}


def messages(db, destination):
    db.session.expire_all()
    return [
        m.payload
        for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at))
        if m.destination == destination
    ]


def test_token_required_and_scoped_to_brand(client, tenant):
    assert client.post("/brands/acme/discounts", json={"name": "x"}).status_code == 401
    wrong = client.post("/brands/acme/discounts", json=DISCOUNT, headers={"X-API-Token": "nope"})
    assert wrong.status_code == 401
    assert wrong.mimetype == "application/problem+json"
    # Another brand's path: the same 401 as a wrong token (a valid token is not confirmed).
    other = client.post("/brands/globex/discounts", json=DISCOUNT, headers=TOKEN)
    assert other.status_code == 401 and other.get_json() == wrong.get_json()
    assert client.get("/brands").status_code == 401


def test_discount_crud_and_defaults(client, tenant):
    created = client.post("/brands/acme/discounts", json=DISCOUNT, headers=TOKEN)
    assert created.status_code == 200
    body = created.get_json()
    assert body["name"] == "new discount" and body["usage_limit"] == 1
    assert body["free_shipping"] is False and body["verify_email"] is False
    assert body["fixed_code"] is None and body["discount_amount"] == 10
    assert body["date_expires"] == "2099-12-31T00:00:00.000Z"
    for key in ("id", "brand_id", "date_created", "date_modified", "description"):
        assert key in body
    did = body["id"]
    assert [d["id"] for d in client.get("/brands", headers=TOKEN).get_json()] == [did]
    assert [d["id"] for d in client.get("/brands/", headers=TOKEN).get_json()] == [did]
    assert client.get("/brands/acme/discounts", headers=TOKEN).get_json()[0]["id"] == did
    assert client.get(f"/brands/acme/discounts/{did}", headers=TOKEN).status_code == 200
    patched = client.patch(f"/brands/acme/discounts/{did}", json={"usage_limit": 3}, headers=TOKEN)
    assert patched.get_json()["usage_limit"] == 3 and patched.get_json()["discount_amount"] == 10
    put = client.put(
        f"/brands/acme/discounts/{did}",
        json={**DISCOUNT, "discount_type": "FIXED_CART", "discount_amount": 5},
        headers=TOKEN,
    )
    assert put.get_json()["discount_type"] == "FIXED_CART" and put.get_json()["usage_limit"] == 1
    assert client.delete(f"/brands/acme/discounts/{did}", headers=TOKEN).status_code == 204
    assert client.get(f"/brands/acme/discounts/{did}", headers=TOKEN).status_code == 404
    assert client.get("/brands", headers=TOKEN).get_json() == []


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "new discount"}, "discount_type"),
        ({**DISCOUNT, "discount_type": "BOGUS"}, "discount_type"),
        ({**DISCOUNT, "discount_amount": 150}, "discount_amount"),
        ({**DISCOUNT, "discount_amount": "lots"}, "discount_amount"),
        ({**DISCOUNT, "usage_limit": 0}, "usage_limit"),
        ({**DISCOUNT, "date_expires": "31/12/2022"}, "date_expires"),
        ({**DISCOUNT, "fixed_code": "has space"}, "fixed_code"),
    ],
)
def test_invalid_discounts_name_the_field(client, tenant, body, field):
    response = client.post("/brands/acme/discounts", json=body, headers=TOKEN)
    assert response.status_code == 400
    assert field in [e["field"] for e in response.get_json()["errors"]]


def test_fan_without_verification_gets_a_tenant_coupon(client, tenant, db, token_for):
    did = client.post(
        "/brands/acme/discounts",
        json={**DISCOUNT, "discount_type": "FIXED_CART", "discount_amount": 7.5, "usage_limit": 2},
        headers=TOKEN,
    ).get_json()["id"]
    fan = {"name": "Uni User", "email": "uni@example.com"}
    response = client.post("/brands/acme/fans", json=fan, headers=TOKEN)
    assert response.status_code == 200 and response.data == b"OK"
    [payload] = messages(db, "coupon_realizer")
    assert payload["fan_name"] == "Uni User" and payload["email"] == "uni@example.com"
    assert payload["discount_name"] == "new discount" and payload["usage_limit"] == 2
    assert payload["discount_type"] == "FIXED_CART" and payload["discount_amount"] == 7.5
    assert payload["facebook_handle"] is None and payload["free_shipping"] is False

    # One fan, one discount, one code.
    again = client.post("/brands/acme/fans", json=fan, headers=TOKEN)
    assert again.status_code == 200
    assert len(messages(db, "coupon_realizer")) == 1

    coupon = client.get(
        f"/coupon/v1/acme/coupons/{payload['coupon_code']}", headers=token_for()
    ).get_json()
    assert coupon["discountType"] == "ABSOLUTE"
    assert coupon["discountAbsolute"] == {"amount": 7.5, "currency": "USD"}
    assert coupon["maxRedemptions"] == 2
    assert coupon["restrictions"]["validUntil"] == "2099-12-31T00:00:00.000Z"
    from app.models import Coupon

    issued_by = db.session.scalar(
        select(Coupon.discount_id).where(Coupon.code == payload["coupon_code"])
    )
    assert issued_by == did


def test_fan_errors(client, tenant):
    bad_email = client.post("/brands/acme/fans", json={"name": "A", "email": "nope"}, headers=TOKEN)
    assert bad_email.status_code == 422
    none = client.post("/brands/acme/fans", json={"name": "A", "email": "a@b.co"}, headers=TOKEN)
    assert none.status_code == 422 and "discount" in none.get_json()["detail"]
    client.post(
        "/brands/acme/discounts", json={**DISCOUNT, "date_expires": "2001-01-01"}, headers=TOKEN
    )
    expired = client.post("/brands/acme/fans", json={"name": "A", "email": "a@b.co"}, headers=TOKEN)
    assert expired.status_code == 422
    missing = client.post("/brands/acme/fans", json={"email": "a@b.co"}, headers=TOKEN)
    assert missing.status_code == 400
    for raw in ("{bad", "[1]"):
        response = client.post(
            "/brands/acme/fans", data=raw, headers=TOKEN, content_type="application/json"
        )
        assert response.status_code == 400 and response.mimetype == "application/problem+json"


def test_verified_fan_activation_once(client, tenant, db):
    client.post(
        "/brands/acme/discounts",
        json={**DISCOUNT, "name": "verified discount", "verify_email": True, "discount_amount": 12},
        headers=TOKEN,
    )
    fan = {"name": "Uni User", "email": "uni@example.com", "facebook_handle": "@uni"}
    assert client.post("/brands/acme/fans", json=fan, headers=TOKEN).status_code == 200
    assert messages(db, "coupon_realizer") == []
    [email] = messages(db, "email_verifier")
    assert email["email"] == "uni@example.com" and email["brand"] == "acme"
    token = email["token"]
    assert email["activation_url"].endswith(f"/fans/{token}")
    stored = db.session.scalar(select(Fan.activation_token_hash))
    assert stored != token  # hashed at rest

    assert client.get(f"/fans/{token}").status_code == 200
    [realized] = messages(db, "coupon_realizer")
    assert realized["discount_name"] == "verified discount" and realized["discount_amount"] == 12
    assert realized["facebook_handle"] == "@uni"
    assert client.get(f"/fans/{token}").status_code == 404
    assert client.get("/fans/unknown-token").status_code == 404
    assert len(messages(db, "coupon_realizer")) == 1


def test_expired_activation_is_410(client, tenant, db):
    client.post("/brands/acme/discounts", json={**DISCOUNT, "verify_email": True}, headers=TOKEN)
    client.post("/brands/acme/fans", json={"name": "A", "email": "late@example.com"}, headers=TOKEN)
    token = messages(db, "email_verifier")[0]["token"]
    fan = db.session.scalar(select(Fan))
    fan.activation_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get(f"/fans/{token}")
    assert response.status_code == 410 and response.get_json()["status"] == 410


def test_fixed_code_is_shared(client, tenant, db, token_for):
    client.post("/brands/acme/discounts", json={**DISCOUNT, "fixed_code": "FANS10"}, headers=TOKEN)
    for email in ("a@example.com", "b@example.com"):
        client.post("/brands/acme/fans", json={"name": "A", "email": email}, headers=TOKEN)
    assert {m["coupon_code"] for m in messages(db, "coupon_realizer")} == {"FANS10"}
    coupon = client.get("/coupon/v1/acme/coupons/FANS10", headers=token_for()).get_json()
    assert coupon["discountType"] == "PERCENT" and coupon["maxRedemptionsPerCustomer"] == 1
    clash = client.post(
        "/brands/acme/discounts", json={**DISCOUNT, "fixed_code": "fans10"}, headers=TOKEN
    )
    assert clash.status_code == 409


def test_fixed_code_coupon_follows_its_discount(client, tenant, db, token_for):
    """Changing a discount's terms changes its shared coupon in the same transaction."""
    did = client.post(
        "/brands/acme/discounts", json={**DISCOUNT, "fixed_code": "FANS20"}, headers=TOKEN
    ).get_json()["id"]
    changed = client.patch(
        f"/brands/acme/discounts/{did}",
        json={"discount_amount": 20, "usage_limit": 3, "free_shipping": True},
        headers=TOKEN,
    )
    assert changed.status_code == 200
    coupon = client.get("/coupon/v1/acme/coupons/FANS20", headers=token_for()).get_json()
    assert coupon["discountPercentage"] == 20 and coupon["maxRedemptionsPerCustomer"] == 3
    assert coupon["freeShipping"] is True

    replaced = client.put(
        f"/brands/acme/discounts/{did}",
        json={
            "name": "cart discount",
            "discount_type": "FIXED_CART",
            "discount_amount": 5,
            "fixed_code": "FANS20",
        },
        headers=TOKEN,
    )
    assert replaced.status_code == 200
    coupon = client.get("/coupon/v1/acme/coupons/FANS20", headers=token_for()).get_json()
    assert coupon["discountType"] == "ABSOLUTE" and coupon["name"] == "cart discount"
    assert coupon["discountAbsolute"] == {"amount": 5, "currency": "USD"}
    assert coupon["restrictions"]["validUntil"] is None

    client.post("/brands/acme/fans", json={"name": "A", "email": "a@example.com"}, headers=TOKEN)
    [payload] = messages(db, "coupon_realizer")
    assert payload["coupon_code"] == "FANS20" and payload["discount_name"] == "cart discount"
    assert payload["discount_type"] == "FIXED_CART" and payload["discount_amount"] == 5
    assert payload["usage_limit"] == 1


def test_realizer_post_describes_the_coupon_actually_issued(client, tenant, db, token_for):
    """A manager's change to the shared coupon (tenant dialect) is what fans are told."""
    client.post("/brands/acme/discounts", json={**DISCOUNT, "fixed_code": "FANS30"}, headers=TOKEN)
    client.patch(
        "/coupon/v1/acme/coupons/FANS30",
        json={"discountPercentage": 30, "maxRedemptionsPerCustomer": 2},
        headers=token_for(),
    )
    client.post("/brands/acme/fans", json={"name": "A", "email": "a@example.com"}, headers=TOKEN)
    [payload] = messages(db, "coupon_realizer")
    assert payload["discount_amount"] == 30 and payload["usage_limit"] == 2


@pytest.mark.parametrize("withdraw", ["delete", "deactivate"])
def test_withdrawn_fixed_code_is_never_issued(client, tenant, db, token_for, withdraw):
    client.post(
        "/brands/acme/discounts",
        json={**DISCOUNT, "fixed_code": "GONE10", "verify_email": True},
        headers=TOKEN,
    )
    client.post("/brands/acme/fans", json={"name": "A", "email": "a@example.com"}, headers=TOKEN)
    [email] = messages(db, "email_verifier")
    if withdraw == "delete":
        client.delete("/coupon/v1/acme/coupons/GONE10", headers=token_for())
    else:
        client.patch("/coupon/v1/acme/coupons/GONE10", json={"active": False}, headers=token_for())

    late = client.post("/brands/acme/fans", json={"name": "B", "email": "b@x.com"}, headers=TOKEN)
    assert late.status_code == 422 and late.get_json()["type"].endswith(":no_active_discount")
    pending = client.get(f"/fans/{email['token']}")
    assert pending.status_code == 410 and pending.get_json()["type"].endswith(":code_withdrawn")
    assert messages(db, "coupon_realizer") == []
    # A discount that can still issue is picked instead of the withdrawn one.
    client.post("/brands/acme/discounts", json=DISCOUNT, headers=TOKEN)
    client.post("/brands/acme/discounts", json={**DISCOUNT, "fixed_code": "NEWER"}, headers=TOKEN)
    client.delete("/coupon/v1/acme/coupons/NEWER", headers=token_for())
    issued = client.post("/brands/acme/fans", json={"name": "B", "email": "b@x.com"}, headers=TOKEN)
    assert issued.status_code == 200
    [payload] = messages(db, "coupon_realizer")
    assert payload["coupon_code"] not in ("GONE10", "NEWER")


def test_registering_the_same_fan_twice_issues_one_code(client, tenant, db):
    client.post("/brands/acme/discounts", json=DISCOUNT, headers=TOKEN)
    fan = {"name": "A", "email": "Same@Example.com"}
    for _ in range(3):
        assert client.post("/brands/acme/fans", json=fan, headers=TOKEN).status_code == 200
    assert len(messages(db, "coupon_realizer")) == 1
    assert db.session.query(Fan).count() == 1
