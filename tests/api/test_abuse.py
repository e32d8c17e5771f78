"""What two security probes found, each reproduced as the attack and kept fixed.

Hostile tenants (a campaign that poisons the worker), curious shoppers (other
people's idempotency keys, order ids and codes), guessing bots (limits keyed so
that they stop the guesser and not the shop), and the identities they abuse
(customer numbers, emails, clients, activation links).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from app.engine import jobs, outbox, worker
from app.engine.catalog import campaigns, generation
from app.engine.codes import BadCodeSpec, CodeSpec
from app.engine.tenants import create_tenant
from app.models import Campaign, CampaignStatus, OutboxMessage, OutboxStatus
from tests.api.conftest import coupon_body, order
from tests.support import start_mock, stop

BASE = "/coupon/v1/acme"
TEMPLATE = {
    "discountType": "ABSOLUTE",
    "discountAbsolute": {"amount": 5, "currency": "USD"},
    "allowAnonymous": True,
    "maxRedemptions": 1,
}


# --- a campaign that cannot be stored stops no one ------------------------------------


@pytest.mark.parametrize("characters", ["Aß", "AＢ", "Aﬁ", "Ae\u0301"])
def test_a_charset_whose_codes_change_when_folded_is_refused_at_creation(
    client, manage, characters
):
    body = {
        "name": "poison",
        "count": 2,
        "codeConfig": {"pattern": "#" * 64, "characters": characters},
        "template": TEMPLATE,
    }
    response = client.post(f"{BASE}/campaigns", json=body, headers=manage)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["details"][0]["field"] == "codeConfig.characters"


def test_every_code_a_charset_can_draw_fits_the_registry():
    spec = CodeSpec.build(pattern="#" * 64, characters="AbÄöЖж")
    for code in spec.draw(200):
        assert len(code) == 64 and len(code.casefold()) == 64
    with pytest.raises(BadCodeSpec):
        CodeSpec.build(pattern="#" * 64, characters="Aß")


def _poisoned_campaign(db, tenant_id: int) -> int:
    """A campaign as an older version accepted it: 64 characters of "Aß" (ß folds to "ss",
    so a code's key outgrows its column)."""
    campaign = Campaign(
        tenant_id=tenant_id,
        name="poison",
        status=CampaignStatus.QUEUED,
        requested=50,
        code_config={"pattern": "#" * 64, "characters": "Aß"},
        template={"discount_type": "PERCENT", "discount_percentage": "10"},
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign.id


def test_a_poisoned_campaign_fails_alone_and_the_worker_serves_everyone_else(
    app, client, manage, db, backend
):
    if backend != "postgresql":
        pytest.skip("SQLite does not enforce the key's length: the poison is PostgreSQL's")
    other = create_tenant(slug="beta", currency="USD")
    poisoned = _poisoned_campaign(db, _tenant_id(db))
    healthy = campaigns.create_campaign(
        tenant=_tenant_ref(other["tenant"]),
        name="healthy",
        count=40,
        code_config={},
        template={"discount_type": "PERCENT", "discount_percentage": 10},
        settings=campaigns.Settings.from_config(app.config),
    ).id
    mock, url = start_mock()
    try:
        with outbox_app(app, url) as config:
            message_id = outbox.enqueue(
                tenant_id=None, destination=outbox.EMAIL_VERIFIER, payload={"x": 1}, path="/email"
            )
            db.session.commit()
            with running_worker(app, config):
                wait_for(lambda: _status(db, healthy) == CampaignStatus.COMPLETED)
                wait_for(lambda: _delivered(db, message_id))
                wait_for(lambda: _status(db, poisoned) == CampaignStatus.FAILED)
        failed = db.session.get(Campaign, poisoned)
        db.session.refresh(failed)
        assert "the database refused a value (StringDataRightTruncation" in failed.failure_reason
    finally:
        stop(mock)


def test_a_job_that_raises_costs_its_turn_not_the_worker(app, db):
    turns = []

    def broken() -> bool:
        turns.append(1)
        raise RuntimeError("a defect in one job")

    stop_event = threading.Event()
    config = {**app.config, "OUTBOX_POLL_SECONDS": 0.01}

    def work():
        with app.app_context():
            worker.run_worker(config, stop_event, housekeeping=lambda: None, jobs=(broken,))

    thread = threading.Thread(target=work)
    thread.start()
    try:
        wait_for(lambda: len(turns) >= 3)
        assert thread.is_alive()
    finally:
        stop_event.set()
        thread.join(10)


# --- rate limits: the guesser pays, the shop does not ---------------------------------


def test_a_storefront_backend_validates_all_day_from_one_address(limited, manage, redeem):
    """Its client token spends the client budget, not the per-address guessing one."""
    client = limited(RATELIMIT_GUESSING="3/minute")
    client.post(f"{BASE}/coupons", json=coupon_body(), headers=manage)
    statuses = {
        client.post(
            f"{BASE}/coupons/WINTER_SALE/validation", json=order(), headers=redeem
        ).status_code
        for _ in range(10)
    }
    assert statuses == {200}


def test_a_server_client_has_a_budget_of_its_own(limited, redeem):
    client = limited(RATELIMIT_CLIENT="2/minute")
    statuses = [
        client.post(f"{BASE}/coupons/GUESS/validation", json=order(), headers=redeem).status_code
        for _ in range(3)
    ]
    assert statuses == [404, 404, 429]


def test_a_shopper_token_cannot_enumerate_codes(limited, manage, customer_token):
    headers, _ = customer_token()
    client = limited(RATELIMIT_GUESSING="3/minute")
    statuses = [
        client.get(f"{BASE}/coupons/GUESS-{n}", headers=headers).status_code for n in range(5)
    ]
    assert statuses == [404, 404, 404, 429, 429]
    refused = client.get(f"{BASE}/coupons/GUESS-9", headers=headers)
    assert refused.get_json()["type"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == refused.headers["Retry-After"]
    # A manager's verified token is not limited.
    assert {client.get(f"{BASE}/coupons/X{n}", headers=manage).status_code for n in range(5)} == {
        404
    }


def test_every_lookup_route_draws_on_one_budget_and_a_cart_costs_its_codes(limited, tenant):
    client = limited(RATELIMIT_GUESSING="6/minute")
    cart = {
        "orderTotal": {"amount": 50, "currency": "USD"},
        "items": [{"product": "P", "quantity": 1, "price": 50}],
        "codes": ["G1", "G2", "G3", "G4"],
    }
    assert client.post(f"{BASE}/coupons/G0/validation", json=order()).status_code == 404
    assert client.get(f"{BASE}/coupons/G0").status_code == 404
    assert client.post(f"{BASE}/carts/validation", json=cart).status_code == 200  # 6 spent
    hold = client.post(f"{BASE}/coupons/G5/reservations", json=order())
    assert hold.status_code == 429
    assert client.post(f"{BASE}/carts/validation", json=cart).status_code == 429


def test_retry_after_comes_with_429_and_503_only(limited, tenant):
    client = limited(RATELIMIT_GUESSING="1/minute")
    first = client.get(f"{BASE}/coupons/NONE")
    assert first.status_code == 404 and "Retry-After" not in first.headers
    assert "Retry-After" not in client.get("/health").headers
    assert "Retry-After" in client.get(f"{BASE}/coupons/NONE").headers


def test_wrong_brand_tokens_are_limited_per_address(limited, tenant):
    client = limited(RATELIMIT_AUTH="3/minute")
    wrong = [client.get("/brands", headers={"X-API-Token": f"guess-{n}"}) for n in range(4)]
    assert [r.status_code for r in wrong] == [401, 401, 401, 429]
    # While the budget is spent, even the right token is refused from this address.
    right = client.get("/brands", headers={"X-API-Token": "acme-api-token-1"})
    assert right.status_code == 429 and "Retry-After" in right.headers


def test_wrong_logins_on_one_shop_do_not_lock_out_another(limited, client, token_for, tenant):
    other = create_tenant(slug="beta", currency="USD")
    beta = token_for("", creds=other)
    alpha = token_for("")
    body = {"email": "ann@example.com", "password": "right-password-1"}
    assert client.post("/customer/v1/beta/signup", json=body, headers=beta).status_code == 201
    limited_client = limited(RATELIMIT_AUTH="3/minute")
    wrong = {"email": "ann@example.com", "password": "wrong-password"}
    statuses = [
        limited_client.post("/customer/v1/acme/login", json=wrong, headers=alpha).status_code
        for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    good = limited_client.post("/customer/v1/beta/login", json=body, headers=beta)
    assert good.status_code == 200, good.get_json()


def test_signup_is_limited_per_client(limited, token_for):
    client = limited(RATELIMIT_SIGNUP="2/minute")
    headers = token_for("")
    statuses = [
        client.post(
            "/customer/v1/acme/signup",
            json={"email": f"new{n}@example.com", "password": "a-fine-password"},
            headers=headers,
        ).status_code
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]


# --- curious shoppers: other people's keys, orders and codes -------------------------


def test_another_callers_idempotency_key_is_a_request_of_its_own(client, manage, customer_token):
    client.post(f"{BASE}/coupons", json=coupon_body(), headers=manage)
    alice, _ = customer_token("alice@example.com")
    bob, _ = customer_token("bob@example.com")
    body, key = order(orderId="ORD-1"), {"Idempotency-Key": "checkout-1"}
    hold_key = {"Idempotency-Key": "hold-1"}
    mine = client.post(f"{BASE}/coupons/WINTER_SALE/redemptions", json=body, headers=alice | key)
    theirs = client.post(f"{BASE}/coupons/WINTER_SALE/redemptions", json=body, headers=bob | key)
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != mine.get_json()["id"]
    again = client.post(f"{BASE}/coupons/WINTER_SALE/redemptions", json=body, headers=alice | key)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == mine.get_json()
    hold = {**order(orderId="ORD-2")}
    path = f"{BASE}/coupons/WINTER_SALE/reservations"
    held_a = client.post(path, json=hold, headers=alice | hold_key)
    held_b = client.post(path, json=hold, headers=bob | hold_key)
    assert held_a.status_code == held_b.status_code == 201
    assert "Idempotent-Replayed" not in held_b.headers
    assert held_a.get_json()["id"] != held_b.get_json()["id"]


def test_a_shopper_cannot_squat_another_shoppers_order_id(client, manage, customer_token):
    client.post(f"{BASE}/coupons", json=coupon_body(), headers=manage)
    alice, _ = customer_token("alice@example.com")
    bob, _ = customer_token("bob@example.com")
    body = {**order(orderId="ORD-1002"), "ttlSeconds": 86400}
    assert (
        client.post(f"{BASE}/coupons/WINTER_SALE/reservations", json=body, headers=bob).status_code
        == 201
    )
    redeemed = client.post(
        f"{BASE}/coupons/WINTER_SALE/redemptions", json=order(orderId="ORD-1002"), headers=alice
    )
    assert redeemed.status_code == 201, redeemed.get_json()


def test_the_shop_s_order_ids_are_shared_by_its_clients(client, manage, on_behalf, redeem):
    client.post(f"{BASE}/coupons", json=coupon_body(), headers=manage)
    body = order(orderId="SHOP-7", customerNumber="C1")
    assert (
        client.post(
            f"{BASE}/coupons/WINTER_SALE/redemptions", json=body, headers=on_behalf
        ).status_code
        == 201
    )
    other = client.post(
        f"{BASE}/coupons/WINTER_SALE/redemptions",
        json=order(orderId="SHOP-7", customerNumber="C2"),
        headers=on_behalf,
    )
    assert other.status_code == 409 and other.get_json()["type"] == "coupon_order_already_redeemed"


def test_qualifications_never_offer_a_code_the_tenant_did_not_list(client, manage, customer_token):
    headers, _ = customer_token()
    voucher = coupon_body(code="ONE-PERSON-VOUCHER", maxRedemptions=1)
    offer = coupon_body(code="WEEKEND", listable=True)
    for body in (voucher, offer):
        assert client.post(f"{BASE}/coupons", json=body, headers=manage).status_code == 201
    shopper = {
        "orderTotal": {"amount": 100, "currency": "USD"},
        "items": [{"product": "P", "quantity": 1, "price": 100}],
    }
    listed = client.post(f"{BASE}/qualifications", json=shopper, headers=headers)
    assert [q["code"] for q in listed.get_json()] == ["WEEKEND"]
    read = client.get(f"{BASE}/coupons/WEEKEND", headers=manage).get_json()
    assert read["listable"] is True
    assert (
        client.get(f"{BASE}/coupons/ONE-PERSON-VOUCHER", headers=manage).get_json()["listable"]
        is False
    )


def test_qualifications_without_a_redeem_scope_are_403_not_401(client, token_for):
    manager_only = token_for("hybris.coupon_manage")
    shopper = {
        "orderTotal": {"amount": 100, "currency": "USD"},
        "items": [{"product": "P", "quantity": 1, "price": 100}],
    }
    response = client.post(f"{BASE}/qualifications", json=shopper, headers=manager_only)
    assert response.status_code == 403 and response.get_json()["type"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_a_deleted_coupon_answers_like_one_that_never_existed(client, manage, redeem):
    client.post(f"{BASE}/coupons", json=coupon_body(code="GONE"), headers=manage)
    assert client.delete(f"{BASE}/coupons/GONE", headers=manage).status_code == 204
    for path in ("GONE", "NEVER"):
        got = client.get(f"{BASE}/coupons/{path}", headers=redeem)
        validated = client.post(f"{BASE}/coupons/{path}/validation", json=order(), headers=redeem)
        assert (got.status_code, validated.status_code) == (404, 404)
        assert (
            got.get_json()
            == validated.get_json()
            == {
                "status": 404,
                "type": "coupon_not_found",
                "message": "Coupon not found",
            }
        )


@pytest.mark.parametrize("look_alike", ["ＩＮＦＯ", "ıNFO", "İNFO", "info"])
def test_look_alike_codes_are_one_code_in_every_dialect(client, manage, redeem, look_alike):
    assert (
        client.post(f"{BASE}/coupons", json=coupon_body(code="INFO"), headers=manage).status_code
        == 201
    )
    again = client.post(f"{BASE}/coupons", json=coupon_body(code=look_alike), headers=manage)
    assert again.status_code == 409 and again.get_json()["type"] == "coupon_code_exists"
    promo = client.post("/promocodes/add", json={"coupon": look_alike, "code": "G"}, headers=manage)
    assert promo.status_code == 409
    found = client.post(f"{BASE}/coupons/{look_alike}/validation", json=order(), headers=redeem)
    assert found.status_code == 200


def test_a_fullwidth_code_is_stored_in_its_plain_form(client, manage):
    created = client.post(f"{BASE}/coupons", json=coupon_body(code="ＳＰＲＩＮＧ"), headers=manage)
    assert created.status_code == 201 and created.get_json()["id"] == "SPRING"


def test_an_on_behalf_client_acts_on_any_hold_of_its_tenant(client, manage, on_behalf):
    client.post(f"{BASE}/coupons", json=coupon_body(), headers=manage)
    held = client.post(
        f"{BASE}/coupons/WINTER_SALE/reservations",
        json=order(customerNumber="C7", orderId="O-7"),
        headers=on_behalf,
    ).get_json()["id"]
    path = f"{BASE}/coupons/WINTER_SALE/reservations/{held}"
    assert client.get(path, headers=on_behalf).status_code == 200
    assert client.post(path + "/confirm", headers=on_behalf).status_code == 201


# --- identities: one customer, one inbox, one form ------------------------------------


@pytest.mark.parametrize(
    ("variant", "status"),
    [
        ("c2859098256", 400),
        (" C2859098256", 400),
        ("C2859098256 ", 400),
        ("Ｃ2859098256", 400),
        ("C2859098256\u200b", 400),
        ("\tC2859098256", 400),
        ("C2859098256\r\n", 400),
    ],
)
def test_one_shopper_is_one_customer_number_whatever_its_spelling(
    client, manage, on_behalf, variant, status
):
    body = coupon_body(maxRedemptionsPerCustomer=1)
    client.post(f"{BASE}/coupons", json=body, headers=manage)
    path = f"{BASE}/coupons/WINTER_SALE/redemptions"
    first = client.post(path, json=order(customerNumber="C2859098256"), headers=on_behalf)
    assert first.status_code == 201
    again = client.post(path, json=order(customerNumber=variant), headers=on_behalf)
    assert again.status_code == status
    assert again.get_json()["type"] in ("coupon_redemptions_exceeded", "validation_failed")
    counted = client.get(f"{BASE}/coupons/WINTER_SALE", headers=manage).get_json()
    assert counted["redemptionCount"] == 1


def test_restricted_coupons_name_customers_in_their_one_form(client, manage, on_behalf):
    body = coupon_body(restrictions={"validFor": [" c42 "]})
    assert client.post(f"{BASE}/coupons", json=body, headers=manage).status_code == 201
    read = client.get(f"{BASE}/coupons/WINTER_SALE", headers=manage).get_json()
    assert read["restrictions"]["validFor"] == ["C42"]
    ok = client.post(
        f"{BASE}/coupons/WINTER_SALE/validation",
        json=order(customerNumber="C42"),
        headers=on_behalf,
    )
    assert ok.status_code == 200
    bad = coupon_body(code="ZW", restrictions={"validFor": ["C1\u200b"]})
    assert client.post(f"{BASE}/coupons", json=bad, headers=manage).status_code == 400


def test_signup_answers_the_same_whether_or_not_the_email_is_taken(client, token_for):
    headers = token_for("")
    owner = {"email": "taken@example.com", "password": "owners-password"}
    first = client.post("/customer/v1/acme/signup", json=owner, headers=headers)
    stranger = {"email": "taken@example.com", "password": "strangers-guess"}
    probes = [client.post("/customer/v1/acme/signup", json=stranger, headers=headers) for _ in "ab"]
    fresh = client.post(
        "/customer/v1/acme/signup",
        json={"email": "free@example.com", "password": "strangers-guess"},
        headers=headers,
    )
    for response in (first, *probes, fresh):
        assert response.status_code == 201
        assert set(response.get_json()) == {"customerNumber", "id"}
    # The same answer each time (a random decoy would tell), and no account's number.
    assert probes[0].get_json() == probes[1].get_json() != first.get_json()
    login = client.post("/customer/v1/acme/login", json=stranger, headers=headers)
    assert login.status_code == 401


@pytest.mark.parametrize(
    "same_inbox",
    ["ANN@example.com", "ann+coupons@example.com", "ａnn@example.com", "ann@EXAMPLE.com"],
)
def test_one_inbox_is_one_customer_account(client, token_for, same_inbox):
    headers = token_for("")
    first = client.post(
        "/customer/v1/acme/signup",
        json={"email": "ann@example.com", "password": "anns-password"},
        headers=headers,
    ).get_json()
    again = client.post(
        "/customer/v1/acme/signup",
        json={"email": same_inbox, "password": "anns-password"},
        headers=headers,
    ).get_json()
    assert again == first
    login = client.post(
        "/customer/v1/acme/login",
        json={"email": same_inbox, "password": "anns-password"},
        headers=headers,
    )
    assert login.status_code == 200


def test_an_idn_domain_and_its_punycode_are_one_inbox(client, token_for):
    headers = token_for("")
    body = {"email": "bob@exämple.com", "password": "bobs-password"}
    first = client.post("/customer/v1/acme/signup", json=body, headers=headers).get_json()
    puny = {**body, "email": "bob@xn--exmple-cua.com"}
    assert client.post("/customer/v1/acme/signup", json=puny, headers=headers).get_json() == first


@pytest.mark.parametrize("password", ["      ", "123456", "Password", "qwerty123", "aaaaaaaa"])
def test_weak_passwords_are_refused(client, token_for, password):
    response = client.post(
        "/customer/v1/acme/signup",
        json={"email": "w@example.com", "password": password},
        headers=token_for(""),
    )
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == "password"


def test_a_password_is_the_same_composed_or_decomposed(client, token_for):
    headers = token_for("")
    composed, decomposed = "caf\u00e9-123", "cafe\u0301-123"
    client.post(
        "/customer/v1/acme/signup",
        json={"email": "c@example.com", "password": composed},
        headers=headers,
    )
    login = client.post(
        "/customer/v1/acme/login",
        json={"email": "c@example.com", "password": decomposed},
        headers=headers,
    )
    assert login.status_code == 200


def test_a_client_can_be_revoked_and_its_secret_rotated(app, runner, database_url, tenant):
    import json

    from app import create_app
    from tests.conftest import BASE_CONFIG

    quick = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "CACHE_TTL_SECONDS": 0.3}
    )
    app.extensions["sqlalchemy"].session.remove()
    client = quick.test_client()

    def token(secret: str):
        return client.post(
            "/oauth2/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_id": tenant["client_id"],
                "client_secret": secret,
            },
        )

    def coupons(access: str) -> int:
        return client.get(
            f"{BASE}/coupons", headers={"Authorization": "Bearer " + access}
        ).status_code

    old = token(tenant["client_secret"]).get_json()["access_token"]
    assert coupons(old) == 200
    rotated = runner.invoke(args=["tenant", "rotate-client-secret", tenant["client_id"]])
    assert rotated.exit_code == 0, rotated.output
    secret = json.loads(rotated.output)["client_secret"]
    assert token(tenant["client_secret"]).status_code == 401
    time.sleep(0.4)
    assert coupons(old) == 401
    new = token(secret).get_json()["access_token"]
    assert coupons(new) == 200
    revoked = runner.invoke(args=["tenant", "revoke-client", tenant["client_id"]])
    assert revoked.exit_code == 0 and json.loads(revoked.output)["revoked"] is True
    time.sleep(0.4)
    assert coupons(new) == 401 and token(secret).status_code == 401
    with quick.app_context():
        quick.extensions["sqlalchemy"].engine.dispose()


def test_a_brand_token_can_be_rotated(runner, client, tenant):
    import json

    rotated = runner.invoke(args=["tenant", "rotate-token", "acme"])
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.output)["api_token"]
    assert len(new) >= 32
    assert client.get("/brands", headers={"X-API-Token": "acme-api-token-1"}).status_code == 401
    assert client.get("/brands", headers={"X-API-Token": new}).status_code == 200


def test_production_refuses_short_chosen_api_tokens(runner, app, monkeypatch):
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    short = runner.invoke(args=["tenant", "create", "shorty", "--api-token", "x" * 31])
    assert short.exit_code != 0 and "32 characters" in short.output
    made = runner.invoke(args=["tenant", "create", "longer"])
    assert made.exit_code == 0
    import json

    assert len(json.loads(made.output)["api_token"]) >= 32


@pytest.mark.parametrize("slug", ["alpha\n", "alpha ", "Alpha", "a"])
def test_a_slug_is_matched_in_full(runner, slug):
    result = runner.invoke(args=["tenant", "create", slug])
    assert result.exit_code != 0 and "slug" in result.output


def test_the_token_endpoint_takes_one_tenant_and_one_client_authentication(client, tenant):
    two = client.post(
        "/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant["client_id"],
            "client_secret": tenant["client_secret"],
            "scope": "hybris.tenant=beta hybris.tenant=acme hybris.coupon_manage",
        },
    )
    assert two.status_code == 400 and two.get_json()["error"] == "invalid_scope"
    mixed = client.post(
        "/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant["client_id"],
            "client_secret": tenant["client_secret"],
        },
        auth=(tenant["client_id"], "a-wrong-secret"),
    )
    assert mixed.status_code == 400 and mixed.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2"])
def test_a_promo_item_quantity_must_be_positive(client, manage, redeem, quantity):
    client.post(
        "/promocodes/add",
        json={"coupon": "PIZZA_GIFT", "code": "COLA", "hasProduct": "pizza"},
        headers=manage,
    )
    body = {"coupon": "PIZZA_GIFT", "order": {"items": [{"code": "pizza", "quantity": quantity}]}}
    response = client.post("/promocodes/", json=body, headers=redeem)
    assert response.status_code == 400 and response.get_json()["statusCode"] == 400


# --- activation links ------------------------------------------------------------------

FAN_DISCOUNT = {
    "name": "Fans",
    "discount_type": "PERCENT",
    "discount_amount": 10,
    "verify_email": True,
}
BRAND = {"X-API-Token": "acme-api-token-1"}


def _emails(db) -> list:
    """The queued verification emails, as rows (no ORM object outlives a request)."""
    table = OutboxMessage.__table__
    rows = db.session.execute(
        select(table.c.id, table.c.destination, table.c.payload, table.c.status)
        .where(table.c.destination == outbox.EMAIL_VERIFIER)
        .order_by(table.c.created_at)
    ).all()
    db.session.rollback()
    return rows


def test_activation_links_never_come_from_the_host_header(client, tenant, db):
    client.post("/brands/acme/discounts", json=FAN_DISCOUNT, headers=BRAND)
    fan = {"name": "Vic", "email": "vic@example.com"}
    response = client.post("/brands/acme/fans", json=fan, headers=BRAND | {"Host": "evil.example"})
    assert response.status_code == 200
    (email,) = _emails(db)
    assert email.payload["activation_url"].startswith("http://localhost:5000/fans/")
    assert "evil.example" not in str(email.payload)


def test_one_inbox_gets_one_fan_and_a_pending_one_keeps_its_first_link(client, tenant, db):
    client.post("/brands/acme/discounts", json=FAN_DISCOUNT, headers=BRAND)
    for email, name in (
        ("vic@example.com", "Vic"),
        ("vic+1@example.com", "Mallory"),
        ("VIC@example.com", "Mallory"),
    ):
        fan = {"name": name, "email": email}
        assert client.post("/brands/acme/fans", json=fan, headers=BRAND).status_code == 200
    (email,) = _emails(db)  # mailed once: the others were the same pending fan
    token = email.payload["token"]
    assert client.get(f"/fans/{token}").status_code == 200
    realized = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.destination == outbox.COUPON_REALIZER)
    ).one()
    assert realized.payload["fan_name"] == "Vic"


def test_a_pending_fan_gets_the_same_link_again_once_the_resend_window_passed(
    client, app, tenant, db, monkeypatch
):
    monkeypatch.setitem(app.config, "ACTIVATION_RESEND_SECONDS", 0)
    client.post("/brands/acme/discounts", json=FAN_DISCOUNT, headers=BRAND)
    for _ in range(2):
        client.post(
            "/brands/acme/fans", json={"name": "V", "email": "v@example.com"}, headers=BRAND
        )
    first, second = _emails(db)
    assert first.payload["token"] == second.payload["token"]


def test_a_retired_discount_issues_nothing_from_links_already_sent(client, tenant, db):
    created = client.post("/brands/acme/discounts", json=FAN_DISCOUNT, headers=BRAND).get_json()
    client.post("/brands/acme/fans", json={"name": "V", "email": "v@example.com"}, headers=BRAND)
    (email,) = _emails(db)
    client.delete(f"/brands/acme/discounts/{created['id']}", headers=BRAND)
    response = client.get(f"/fans/{email.payload['token']}")
    assert response.status_code == 410 and "code_withdrawn" in response.get_json()["type"]


def test_activation_tokens_stay_out_of_logs_and_delivered_messages(app, client, tenant, db, capsys):
    import json

    client.post("/brands/acme/discounts", json=FAN_DISCOUNT, headers=BRAND)
    client.post("/brands/acme/fans", json={"name": "V", "email": "v@example.com"}, headers=BRAND)
    (email,) = _emails(db)
    token = email.payload["token"]
    app.logger  # noqa: B018 - the access log is the app's own logger tree
    import logging

    logging.getLogger("app").setLevel("INFO")
    try:
        client.get(f"/fans/{token}")
    finally:
        logging.getLogger("app").setLevel("WARNING")
    logged = capsys.readouterr().err
    access = [json.loads(line) for line in logged.splitlines() if '"request"' in line]
    assert access and access[-1]["route"] == "/fans/<string:token>"
    assert token not in logged
    message = {
        "id": email.id,
        "destination": email.destination,
        "payload": email.payload,
        "attempts": 1,
    }
    settings = outbox.Settings.from_config(app.config)
    outbox.record_result(message, None, settings)
    delivered = _emails(db)[0]
    assert delivered.status == OutboxStatus.DELIVERED
    assert "token" not in delivered.payload and token not in json.dumps(delivered.payload)
    assert outbox.purge_finished(-1) == 1 and _emails(db) == []


# --- what the service serves -----------------------------------------------------------


def test_the_docs_load_nothing_from_another_origin(client):
    page = client.get("/docs").get_data(as_text=True)
    assert "https://" not in page and "http://" not in page.replace("http://localhost", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert f"/docs/assets/{asset}" in page
        with client.get(f"/docs/assets/{asset}") as served:
            assert served.status_code == 200


# --- a review's findings ---------------------------------------------------------------


def test_an_account_made_before_passwords_were_normalised_still_logs_in(client, token_for, db):
    from app.engine import canonical
    from app.models import Customer
    from app.security import hash_password, password_matches

    tenant_id = _tenant_id(db)
    typed = "cafe\u0301-secret"  # decomposed, hashed as typed by an older version
    db.session.add(
        Customer(
            tenant_id=tenant_id,
            customer_number="C0000000001",
            email="old@example.com",
            email_key="old@example.com",
            password_hash=hash_password(typed),
        )
    )
    db.session.commit()
    login = client.post(
        "/customer/v1/acme/login",
        json={"email": "old@example.com", "password": typed},
        headers=token_for(""),
    )
    assert login.status_code == 200
    stored = db.session.scalar(select(Customer.password_hash))
    assert password_matches(canonical.password(typed), stored)  # rehashed in its one form


def test_one_anonymous_shopper_cannot_take_anothers_hold_by_its_order_id(client, manage):
    body = coupon_body(code="GUEST", allowAnonymous=True)
    client.post(f"{BASE}/coupons", json=body, headers=manage)
    path = f"{BASE}/coupons/GUEST"
    mine = client.post(f"{path}/reservations", json=order(orderId="G-1"))
    assert mine.status_code == 201
    theirs = client.post(f"{path}/reservations", json=order(orderId="G-1", total=60))
    assert theirs.status_code == 409 and theirs.get_json()["type"] == "coupon_order_already_held"
    assert mine.get_json()["id"] not in theirs.get_data(as_text=True)
    redeemed = client.post(f"{path}/redemptions", json=order(orderId="G-1"))
    assert redeemed.status_code == 409
    # The hold's unguessable id is what an anonymous shopper confirms with.
    confirmed = client.post(f"{path}/reservations/{mine.get_json()['id']}/confirm")
    assert confirmed.status_code == 201


def test_anonymous_idempotency_keys_are_each_addresss(client, manage):
    client.post(
        f"{BASE}/coupons", json=coupon_body(code="GUEST", allowAnonymous=True), headers=manage
    )
    key = {"Idempotency-Key": "guest-1"}
    path = f"{BASE}/coupons/GUEST/redemptions"
    first = client.post(path, json=order(), headers=key, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    other = client.post(path, json=order(), headers=key, environ_base={"REMOTE_ADDR": "192.0.2.2"})
    assert first.status_code == other.status_code == 201
    assert "Idempotent-Replayed" not in other.headers
    assert other.get_json()["id"] != first.get_json()["id"]


def test_an_activation_link_spends_the_address_budget_whatever_token_comes_with_it(limited, manage):
    client = limited(RATELIMIT_GUESSING="2/minute")
    statuses = [client.get(f"/fans/guess-{n}", headers=manage).status_code for n in range(3)]
    assert statuses == [404, 404, 429]


def test_one_ipv6_host_is_one_address_for_the_budgets(limited, tenant):
    client = limited(RATELIMIT_GUESSING="2/minute")
    statuses = [
        client.get(
            f"{BASE}/coupons/GUESS", environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{n}"}
        ).status_code
        for n in range(1, 4)
    ]
    assert statuses == [404, 404, 429]


def test_an_import_that_fails_for_another_reason_fails_alone(app, client, manage, monkeypatch):
    from app.engine.catalog import bulk_codes, transfer

    campaigns_path = f"{BASE}/campaigns"
    created = client.post(
        campaigns_path, json={"name": "imports", "template": TEMPLATE}, headers=manage
    ).get_json()
    links = [
        client.post(
            f"{campaigns_path}/{created['id']}/codes",
            data=f"code\nIMPORT-{n}\n",
            content_type="text/csv",
            headers=manage,
        ).get_json()["link"]
        for n in (1, 2)
    ]
    real = bulk_codes.insert_staged
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("a defect met by the first import only")
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk_codes, "insert_staged", flaky)
    settings = campaigns.Settings.from_config(app.config)
    while transfer.import_step(owner="w", settings=settings):
        pass
    first, second = (client.get(link, headers=manage).get_json() for link in links)
    assert first["status"] == "failed" and "internal error (ValueError)" in first["failureReason"]
    assert second["status"] == "completed" and second["imported"] == 1


# --- helpers ----------------------------------------------------------------------------


def _tenant_id(db) -> int:
    from app.models import Tenant

    return db.session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))


def _tenant_ref(slug: str):
    from app.engine.tenants import get_tenant

    return get_tenant(slug)


def _status(db, campaign_id: int) -> str:
    db.session.expire_all()
    status = db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    db.session.rollback()
    return status


def _delivered(db, message_id: str) -> bool:
    db.session.expire_all()
    status = db.session.scalar(select(OutboxMessage.status).where(OutboxMessage.id == message_id))
    db.session.rollback()
    return status == OutboxStatus.DELIVERED


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class outbox_app:
    """The app's config with the downstream URLs pointed at a mock."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url

    def __enter__(self) -> dict:
        return {
            **self.app.config,
            "EMAIL_VERIFIER_URL": self.url,
            "COUPON_REALIZER_URL": self.url,
            "OUTBOX_POLL_SECONDS": 0.05,
        }

    def __exit__(self, *exc):
        return False


class running_worker:
    """`run_worker` with the campaign job, in a thread, for the length of a block."""

    def __init__(self, app, config: dict):
        self.app, self.config = app, config
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        with self.app.app_context():
            owner = jobs.new_owner()
            worker.run_worker(
                self.config,
                self.stop,
                housekeeping=lambda: None,
                jobs=(lambda: generation.work(owner, self.config),),
            )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        return False
