"""OAuth2 token endpoint and customer accounts."""

import pytest

from app.extensions import limiter


def token_request(client, tenant, **overrides):
    data = {
        "grant_type": "client_credentials",
        "client_id": tenant["client_id"],
        "client_secret": tenant["client_secret"],
        "scope": "hybris.tenant=acme hybris.coupon_manage",
        **overrides,
    }
    return data


def test_token_form_json_and_basic(client, tenant):
    form = client.post("/oauth2/v1/token", data=token_request(client, tenant))
    assert form.status_code == 200
    body = form.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "hybris.tenant=acme hybris.coupon_manage"
    assert form.headers["Cache-Control"] == "no-store"
    as_json = client.post("/oauth2/v1/token", json=token_request(client, tenant))
    assert as_json.status_code == 200
    basic = client.post(
        "/oauth2/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(tenant["client_id"], tenant["client_secret"]),
    )
    assert basic.status_code == 200
    assert "coupon_redeem_on_behalf" in basic.get_json()["scope"]


@pytest.mark.parametrize(
    "overrides,status,error",
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "cl_nobody"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"scope": "hybris.tenant=other hybris.coupon_manage"}, 400, "invalid_scope"),
        ({"scope": "hybris.tenant=acme hybris.admin"}, 400, "invalid_scope"),
    ],
)
def test_token_errors_are_rfc6749(client, tenant, overrides, status, error):
    response = client.post("/oauth2/v1/token", data=token_request(client, tenant, **overrides))
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert "error_description" in response.get_json()


def test_token_bad_bodies(client, tenant):
    for raw, content_type in (
        ("{bad", "application/json"),
        ("[1]", "application/json"),
        ("x", "text/plain"),
    ):
        response = client.post("/oauth2/v1/token", data=raw, content_type=content_type)
        assert response.status_code in (400, 415)
        assert response.get_json()["error"] == "invalid_request"


def test_signup_login_me(client, token_for):
    tenant_token = token_for("")
    credentials = {"email": "Ann@Example.com", "password": "secret"}
    signup = client.post("/customer/v1/acme/signup", json=credentials, headers=tenant_token)
    assert signup.status_code == 201
    number = signup.get_json()["customerNumber"]
    assert number.startswith("C") and len(number) == 11
    # Signing up again with the account's own password answers the same (no 409 that would
    # tell a stranger the email has an account: see test_abuse).
    again = client.post("/customer/v1/acme/signup", json=credentials, headers=tenant_token)
    assert again.status_code == 201 and again.get_json()["customerNumber"] == number
    login = client.post(
        "/customer/v1/acme/login",
        json={"email": "ann@example.com", "password": "secret"},
        headers=tenant_token,
    )
    assert login.status_code == 200
    customer = {"Authorization": "Bearer " + login.get_json()["accessToken"]}
    me = client.get("/customer/v1/acme/me", headers=customer).get_json()
    assert me == {
        "customerNumber": number,
        "email": "Ann@Example.com",
        "createdAt": me["createdAt"],
    }
    wrong = client.post(
        "/customer/v1/acme/login",
        json={"email": "ann@example.com", "password": "nope-nope"},
        headers=tenant_token,
    )
    assert wrong.status_code == 401 and wrong.get_json()["type"] == "invalid_credentials"
    assert client.get("/customer/v1/acme/me", headers=tenant_token).status_code == 401
    assert client.post("/customer/v1/acme/signup", json=credentials).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": "secret"},
        {"email": "a@b.co", "password": "123"},
        {"email": "a@b.co"},
        {"email": 5, "password": []},
    ],
)
def test_signup_validation(client, token_for, body):
    response = client.post("/customer/v1/acme/signup", json=body, headers=token_for(""))
    assert response.status_code == 400 and response.get_json()["type"] == "validation_failed"


def test_passwords_are_hashed(client, token_for, db):
    from sqlalchemy import select

    from app.models import Customer

    credentials = {"email": "hash@example.com", "password": "plaintext-pw"}
    client.post("/customer/v1/acme/signup", json=credentials, headers=token_for(""))
    stored = db.session.scalar(select(Customer.password_hash))
    assert stored.startswith("$argon2id$") and "plaintext-pw" not in stored


def test_rate_limits_guessing_and_login(app, tenant, database_url):
    from app import create_app
    from tests.conftest import BASE_CONFIG

    limited_app = create_app(
        {
            **BASE_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_GUESSING": "3/minute",
            "RATELIMIT_AUTH": "2/minute",
        }
    )
    client = limited_app.test_client()
    app.extensions["sqlalchemy"].session.remove()  # SQLite: release the outer lock
    try:
        statuses = [client.get("/coupon/v1/acme/coupons/GUESS").status_code for _ in range(5)]
        assert statuses == [404, 404, 404, 429, 429]
        limited = client.get("/coupon/v1/acme/coupons/GUESS")
        assert limited.get_json()["type"] == "rate_limited"
        assert "Retry-After" in limited.headers or "X-RateLimit-Reset" in limited.headers
        bad = token_request(client, tenant, client_secret="guess")
        codes = [client.post("/oauth2/v1/token", data=bad).status_code for _ in range(4)]
        assert codes == [401, 401, 429, 429]
        assert client.post("/oauth2/v1/token", data=bad).get_json()["error"] == "slow_down"
    finally:
        with limited_app.app_context():
            limiter.reset()
            from app.extensions import db

            db.engine.dispose()


def test_openapi_documents_every_route_with_errors(client, app):
    import re

    spec = client.get("/openapi.json").get_json()
    rules = {
        re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        # The console's pages are HTML for people, not API operations (test_console.py).
        if not rule.rule.startswith(("/static", "/docs", "/openapi", "/admin"))
    }
    assert rules <= set(spec["paths"]), rules - set(spec["paths"])
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("responses"), (path, method)
            if not path.startswith(("/health", "/ready")):
                assert any(code.startswith("4") for code in operation["responses"]), (path, method)


@pytest.mark.parametrize(
    "asked",
    [
        "hybris.coupon_redeem hybris.tenant=acme hybris.coupon_manage",
        "hybris.coupon_manage",
        "coupon_manage coupon_redeem",
        "hybris.tenant=acme",
    ],
)
def test_granted_scope_is_echoed_as_asked(client, tenant, asked):
    """requests-oauthlib raises when the scope comes back changed; nothing is added."""
    response = client.post("/oauth2/v1/token", data=token_request(client, tenant, scope=asked))
    assert response.status_code == 200
    assert response.get_json()["scope"] == asked


def test_scope_without_a_request_is_everything_in_a_fixed_order(client, tenant):
    data = token_request(client, tenant)
    del data["scope"]
    scopes = {client.post("/oauth2/v1/token", data=data).get_json()["scope"] for _ in range(3)}
    assert scopes == {
        "hybris.tenant=acme hybris.coupon_manage hybris.coupon_redeem "
        "hybris.coupon_redeem_on_behalf"
    }
