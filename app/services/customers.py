"""Customer accounts: signup, login, profile."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth import REDEEM, issue_token
from app.errors import Conflict, NotFound, Unauthorized
from app.extensions import db
from app.models import Customer
from app.security import DUMMY_PASSWORD_HASH, hash_password, password_matches
from app.services.tenants import TenantRef
from app.services.uow import end_read, unit_of_work


class CustomerExists(Conflict):
    type, message = "customer_exists", "A customer with this email already exists"


class InvalidCredentials(Unauthorized):
    type, message = "invalid_credentials", "Email or password is incorrect"


def _new_customer_number() -> str:
    return "C" + "".join(secrets.choice("0123456789") for _ in range(10))


def signup(*, tenant: TenantRef, email: str, password: str) -> Customer:
    """Create a customer with a fresh customer number."""
    customer = Customer(
        tenant_id=tenant.id,
        customer_number=_new_customer_number(),
        email=email.strip().lower(),
        password_hash=hash_password(password),
    )
    try:
        with unit_of_work(), db.session.begin_nested():
            db.session.add(customer)
    except IntegrityError:
        # A customer-number collision is ~1e-10 per pair; email is the realistic clash.
        raise CustomerExists() from None
    return customer


def login(*, tenant: TenantRef, email: str, password: str) -> dict:
    """A customer access token for valid credentials."""
    customer = db.session.scalar(
        select(Customer).where(
            Customer.tenant_id == tenant.id, Customer.email == email.strip().lower()
        )
    )
    stored = customer.password_hash if customer is not None else DUMMY_PASSWORD_HASH
    if not password_matches(password, stored) or customer is None:
        raise InvalidCredentials()
    token, ttl = issue_token(
        tenant=tenant.slug, subject=customer.customer_number, kind="customer", scopes={REDEEM}
    )
    end_read()
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


def get_by_number(*, tenant: TenantRef, customer_number: str) -> Customer:
    """The tenant's customer with this number."""
    customer = db.session.scalar(
        select(Customer).where(
            Customer.tenant_id == tenant.id, Customer.customer_number == customer_number
        )
    )
    if customer is None:
        raise NotFound("Customer not found")
    return customer
