"""Customer accounts: /customer/v1/{tenant}/signup, login, me."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from app import ratelimits
from app.auth import current_caller, require_client, require_customer
from app.dialects.common import Blueprint, before_body, idempotent
from app.dialects.tenant.schemas.accounts import (
    CredentialsSchema,
    CustomerSchema,
    LoginResultSchema,
    SignupResultSchema,
)
from app.dialects.tenant.schemas.coupons import CouponErrorSchema
from app.engine import canonical, customers, tenants

blp = Blueprint(
    "customers",
    __name__,
    dialect="tenant",
    error_schema=CouponErrorSchema,
    url_prefix="/customer/v1/<string:tenant>",
    description="Customer accounts; a customer token redeems as that customer.",
)


# Signup and login are called by the tenant's client: checked before the body is parsed.
clients_only = before_body(lambda tenant, **_: require_client(current_caller(tenant)))


def _client_tenant(tenant: str):
    require_client(current_caller(tenant))
    return tenants.get_tenant(tenant)


@blp.route("/signup")
class Signup(MethodView):
    @clients_only
    @idempotent(lambda tenant, **_: tenants.get_tenant(tenant).id)
    @blp.arguments(CredentialsSchema())
    @blp.response(201, SignupResultSchema)
    @blp.errors(400, 401, 404, 409, 422, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, data, tenant):
        """Register a customer (with a client token of the tenant).

        Answers the same whether or not the email already has an account: log in to
        find out. Limited per calling client and per address (429 with Retry-After).
        """
        _flood_guard(tenant, ratelimits.SIGNUP)
        number = customers.signup(
            tenant=_client_tenant(tenant),
            decoy_secret=current_app.config["SECRET_KEY"],
            **data,
        )
        return {"customer_number": number, "id": number}


@blp.route("/login")
class Login(MethodView):
    @clients_only
    @blp.arguments(CredentialsSchema())
    @blp.response(200, LoginResultSchema)
    @blp.errors(400, 401, 404, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, data, tenant):
        """Log a customer in; returns a customer access token.

        Failed logins are limited per (tenant, email): one account guessed at is refused
        (429), not the shop; each client and address has a ceiling only a flood meets.
        """
        _flood_guard(tenant, ratelimits.FLOOD)
        email = canonical.email_key(data["email"])
        with ratelimits.credentials_attempt("login", tenant, email):
            return customers.login(tenant=_client_tenant(tenant), **data)


def _flood_guard(tenant: str, per_client: ratelimits.Budget) -> None:
    """Charge the calling client's budget and the address's ceiling (argon2 is costly)."""
    caller = current_caller(tenant)
    ratelimits.spend(per_client, "client", tenant, caller.subject or "")
    ratelimits.spend(ratelimits.FLOOD, "address", ratelimits.client_address())


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, CustomerSchema)
    @blp.errors(401, 404)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, tenant):
        """The logged-in customer's account."""
        caller = current_caller(tenant)
        require_customer(caller)
        return customers.get_by_number(
            tenant=tenants.get_tenant(tenant), customer_number=caller.customer_number
        )
