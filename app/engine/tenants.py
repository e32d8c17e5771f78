"""Tenant bootstrap and lookup.

Requests name their tenant by slug (path, token) or by API token; the lookup is
cached per worker for CACHE_TTL_SECONDS, so a checkout does not pay a query for
it. Tenants are never deleted or renamed through the API, so the cache cannot
serve a wrong tenant, only a missing one late.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.database import read
from app.engine.cache import named_cache
from app.engine.money import is_currency
from app.engine.uow import unit_of_work
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import Client, Tenant
from app.security import hash_token, new_token

# Matched in full (`fullmatch`: `$` alone would let "alpha\n" through).
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{1,62}")
# API tokens made by the service are 32 characters; a chosen one must be as long in
# production (the development tenant's `secret123` is for sandboxes).
MIN_API_TOKEN = 32
MIN_API_TOKEN_OUTSIDE_PRODUCTION = 8
ALL_SCOPES = ("coupon_manage", "coupon_redeem", "coupon_redeem_on_behalf")


class TenantExists(Conflict):
    type, message = "tenant_exists", "A tenant with this slug or API token already exists"


def create_tenant(
    *, slug: str, api_token: str | None = None, currency: str = "EUR", production: bool = False
) -> dict:
    """Create a tenant with its first OAuth client; returns the secrets, shown once."""
    if not SLUG_PATTERN.fullmatch(slug):
        raise ValidationFailed(
            "slug must be 2-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
        )
    currency = currency.upper()
    if not is_currency(currency):
        raise ValidationFailed(f"unknown ISO 4217 currency: {currency}")
    if api_token is not None:
        check_api_token(api_token, production=production)
    api_token = api_token or new_token()
    tenant = Tenant(slug=slug, currency=currency, api_token_hash=hash_token(api_token))
    client, client_secret = _new_client()
    created = {
        "tenant": slug,
        "api_token": api_token,
        "client_id": client.client_id,
        "client_secret": client_secret,
    }
    tenant.clients.append(client)
    try:
        with unit_of_work(), db.session.begin_nested():
            db.session.add(tenant)
    except IntegrityError:
        raise TenantExists() from None
    return created


def check_api_token(api_token: str, *, production: bool) -> None:
    """Refuse a chosen API token that is too short to withstand guessing."""
    floor = MIN_API_TOKEN if production else MIN_API_TOKEN_OUTSIDE_PRODUCTION
    if len(api_token) < floor or api_token != api_token.strip() or " " in api_token:
        raise ValidationFailed(
            f"api token must be at least {floor} characters, without spaces"
            + ("" if production else f" ({MIN_API_TOKEN} in production)")
        )


def rotate_api_token(*, slug: str) -> dict:
    """A new X-API-Token for a brand (shown once); the old one stops working within
    CACHE_TTL_SECONDS (the workers' tenant cache)."""
    api_token = new_token()
    with unit_of_work():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise NotFound("Tenant not found")
        tenant.api_token_hash = hash_token(api_token)
    named_cache("tenant_by_token").clear()
    return {"tenant": slug, "api_token": api_token}


@dataclass(frozen=True)
class TenantRef:
    """What services need of a tenant (the ORM model has the same attributes)."""

    id: int
    slug: str
    currency: str
    # How many codes one cart may combine.
    max_codes_per_order: int = 5


_TENANT = Tenant.__table__.c


def configure(*, slug: str, max_codes_per_order: int | None = None) -> dict:
    """Change a tenant's settings; returns them. Workers see the change within
    CACHE_TTL_SECONDS (their tenant cache)."""
    if max_codes_per_order is not None and not 1 <= max_codes_per_order <= 100:
        raise ValidationFailed("max codes per order must be between 1 and 100")
    with unit_of_work():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise NotFound("Tenant not found")
        if max_codes_per_order is not None:
            tenant.max_codes_per_order = max_codes_per_order
        settings = {"tenant": slug, "max_codes_per_order": tenant.max_codes_per_order}
    named_cache("tenant").clear()
    return settings


def add_client(*, slug: str) -> dict:
    """Another OAuth client for an existing tenant; returns its secret, shown once."""
    with unit_of_work():
        tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            raise NotFound("Tenant not found")
        client, client_secret = _new_client()
        tenant.clients.append(client)
    return {"tenant": slug, "client_id": client.client_id, "client_secret": client_secret}


def _new_client() -> tuple[Client, str]:
    secret = new_token(32)
    client = Client(
        client_id="cl_" + secrets.token_hex(8),
        secret_hash=hash_token(secret),
        scopes=" ".join(ALL_SCOPES),
    )
    return client, secret


def _load(condition) -> TenantRef | None:
    rows = read(
        db.session,
        select(_TENANT.id, _TENANT.slug, _TENANT.currency, _TENANT.max_codes_per_order).where(
            condition
        ),
    )
    return TenantRef(*rows[0]) if rows else None


def find_tenant(slug: str) -> TenantRef | None:
    """The tenant with this slug, if any (cached)."""
    return named_cache("tenant").get(slug, lambda: _load(_TENANT.slug == slug))


def get_tenant(slug: str) -> TenantRef:
    """The tenant with this slug, or NotFound."""
    tenant = find_tenant(slug)
    if tenant is None:
        raise NotFound("Tenant not found")
    return tenant


def tenant_for_api_token(token_hash: str) -> TenantRef | None:
    """The tenant whose API token has this SHA-256 (cached)."""
    return named_cache("tenant_by_token").get(
        token_hash, lambda: _load(_TENANT.api_token_hash == token_hash)
    )
