"""Customer accounts: signup, login, profile."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth import REDEEM, issue_token
from app.engine import canonical
from app.engine.passwords import COMMON_PASSWORDS
from app.engine.tenants import TenantRef
from app.engine.uow import end_read, unit_of_work
from app.errors import NotFound, Unauthorized, ValidationFailed
from app.extensions import db
from app.models import Customer
from app.security import DUMMY_PASSWORD_HASH, hash_password, password_matches


class InvalidCredentials(Unauthorized):
    type, message = "invalid_credentials", "Email or password is incorrect"


def _new_customer_number() -> str:
    return "C" + "".join(secrets.choice("0123456789") for _ in range(10))


def _decoy_number(tenant: TenantRef, key: str, secret: str) -> str:
    """The number a signup answers for an email that is taken by someone else: the same
    every time (a random one would tell the two cases apart), unguessable without
    `secret`, and no account's."""
    digest = hmac.new(secret.encode(), f"{tenant.id}:{key}".encode(), hashlib.sha256).digest()
    return "C" + str(int.from_bytes(digest[:8], "big") % 10**10).zfill(10)


def _weak_password(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if not password.strip():
        return "Must not be only spaces"
    if len(set(password)) == 1:
        return "Must not be one character repeated"
    if password.casefold() in COMMON_PASSWORDS:
        return "Too common: it is among the passwords tried first"
    return None


def signup(*, tenant: TenantRef, email: str, password: str, decoy_secret: str) -> str:
    """Register a customer; returns the customer number.

    The answer is the same whether or not the email was free, so signup cannot tell
    which emails have accounts: for a taken email it is the account's own number when
    the password is the account's (a repeated signup), else a decoy number that is no
    account's. The password is hashed or verified either way (the same time spent).
    """
    password = canonical.password(password)
    problem = _weak_password(password)
    if problem:
        raise ValidationFailed(
            details=[{"field": "password", "type": "invalid", "message": problem}]
        )
    key = canonical.email_key(email)
    existing = _by_email_key(tenant, key)
    if existing is None:
        customer = Customer(
            tenant_id=tenant.id,
            customer_number=_new_customer_number(),
            email=email.strip(),
            email_key=key,
            password_hash=hash_password(password),
        )
        try:
            with unit_of_work(), db.session.begin_nested():
                db.session.add(customer)
            return customer.customer_number
        except IntegrityError:
            # A signup of the same inbox won the race (a number collision is ~1e-10).
            existing = _by_email_key(tenant, key)
            if existing is None:
                raise
    if password_matches(password, existing.password_hash):
        return existing.customer_number
    return _decoy_number(tenant, key, decoy_secret)


def _by_email_key(tenant: TenantRef, key: str) -> Customer | None:
    return db.session.scalar(
        select(Customer).where(Customer.tenant_id == tenant.id, Customer.email_key == key)
    )


def login(*, tenant: TenantRef, email: str, password: str) -> dict:
    """A customer access token for valid credentials."""
    customer = _by_email_key(tenant, canonical.email_key(email))
    stored = customer.password_hash if customer is not None else DUMMY_PASSWORD_HASH
    normalised = canonical.password(password)
    matches = password_matches(normalised, stored)
    if not matches and normalised != password and password_matches(password, stored):
        # Hashed as typed, before passwords were normalised: hash its one form from now on.
        matches = True
        with unit_of_work():
            customer.password_hash = hash_password(normalised)
    if not matches or customer is None:
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
