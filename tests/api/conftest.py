"""Helpers for the tenant coupon dialect: tokens per scope."""

import pytest

from app import create_app
from app.extensions import db
from tests.conftest import BASE_CONFIG, RequestInItsOwnContext


@pytest.fixture
def token_for(client, tenant):
    """Authorization headers for a client token with the given scope string."""

    def make(scope: str | None = "hybris.coupon_manage", creds: dict | None = None) -> dict:
        creds = creds or tenant
        data = {
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        }
        if scope is not None:
            data["scope"] = f"hybris.tenant={creds['tenant']} {scope}".strip()
        response = client.post("/oauth2/v1/token", data=data)
        assert response.status_code == 200, response.get_json()
        return {"Authorization": "Bearer " + response.get_json()["access_token"]}

    return make


@pytest.fixture
def manage(token_for):
    return token_for("hybris.coupon_manage")


@pytest.fixture
def on_behalf(token_for):
    return token_for("hybris.coupon_redeem_on_behalf")


@pytest.fixture
def redeem(token_for):
    return token_for("hybris.coupon_redeem")


@pytest.fixture
def customer_token(client, token_for):
    """Sign up and log in a customer; returns (headers, customer number)."""

    def make(email="shopper@example.com"):
        tenant_token = token_for("")
        body = {"email": email, "password": "secret"}
        signup = client.post("/customer/v1/acme/signup", json=body, headers=tenant_token)
        assert signup.status_code == 201, signup.get_json()
        login = client.post("/customer/v1/acme/login", json=body, headers=tenant_token)
        token = login.get_json()["accessToken"]
        return {"Authorization": "Bearer " + token}, signup.get_json()["customerNumber"]

    return make


def coupon_body(code="WINTER_SALE", **overrides):
    body = {
        "code": code,
        "name": "Winter Sale",
        "discountType": "ABSOLUTE",
        "discountAbsolute": {"amount": 25, "currency": "USD"},
        "allowAnonymous": False,
        "maxRedemptions": -1,
        "maxRedemptionsPerCustomer": -1,
        "restrictions": {"minOrderValue": {"amount": 50, "currency": "USD"}},
    }
    body.update(overrides)
    return body


def order(total=50, discount=25, currency="USD", discount_currency=None, **extra):
    return {
        "orderTotal": {"amount": total, "currency": currency},
        "discount": {"amount": discount, "currency": discount_currency or currency},
        **extra,
    }


@pytest.fixture
def another_app(app):
    """Other apps on the test's database, with their own settings; their requests run in
    contexts of their own, and their connections are closed after the test."""
    made = []

    def make(**config):
        other = create_app(
            {
                **BASE_CONFIG,
                "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                **config,
            }
        )
        other.test_client_class = RequestInItsOwnContext
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


@pytest.fixture
def limited(app, database_url):
    """A test client of an app with rate limits on (shared counters, reset afterwards)."""
    from app import create_app
    from app.extensions import db as database
    from app.extensions import limiter
    from tests.conftest import BASE_CONFIG

    made = []

    def make(**settings):
        limited_app = create_app(
            {
                **BASE_CONFIG,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "RATELIMIT_ENABLED": True,
                **settings,
            }
        )
        made.append(limited_app)
        app.extensions["sqlalchemy"].session.remove()  # SQLite: release the outer lock
        return limited_app.test_client()

    yield make
    limiter.reset()
    for limited_app in made:
        with limited_app.app_context():
            database.engine.dispose()
