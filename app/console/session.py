"""Who is signed in to the console, and the CSRF token of their forms.

The signed session cookie (Flask's, under SECRET_KEY) carries a session token and the
CSRF token; the session itself is kept on the server (`engine.console_sessions`, only
the token's SHA-256 stored), so signing out ends it for every copy of the cookie. Each
request checks it is live (8 hours from sign-in) and that what it was bound to still
stands: for a brand, a digest of its API token's hash (a rotated token ends every
session); for a client, its token version (a revoked client or a rotated secret ends
them).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import session
from sqlalchemy import select

from app.auth import MANAGE, Caller
from app.database import read
from app.dialects.brands.adapter import authenticate
from app.engine import console_sessions, tokens
from app.engine.clients import live_version
from app.engine.tenants import TenantRef, find_tenant
from app.errors import Forbidden
from app.extensions import db
from app.models import Client, Tenant
from app.security import hash_token

LIFETIME_SECONDS = 8 * 3600
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Admin:
    """A signed-in console user: a brand (by its API token) or a tenant's client."""

    tenant: TenantRef
    kind: str  # "brand" | "client"
    name: str

    @property
    def caller(self) -> Caller:
        """The engine's caller for what this admin does: a manager of the tenant."""
        return Caller(kind="client", tenant=self.tenant.slug, scopes=frozenset({MANAGE}))


def _brand_proof(api_token_hash: str) -> str:
    """What a brand's session is bound to: its token's, so a rotated token ends it."""
    return hashlib.sha256(b"console:" + api_token_hash.encode()).hexdigest()[:32]


def sign_in_brand(api_token: str) -> Admin:
    """Sign in with a brand's API token (Unauthorized when it is nobody's). The token is
    the tenant's own credential (made with it, as its first client is), so a brand
    manages the whole tenant here, its coupons and webhooks included."""
    tenant = authenticate(api_token=api_token)
    _start(tenant, "brand", tenant.slug, proof=_brand_proof(hash_token(api_token)))
    return Admin(tenant, "brand", tenant.slug)


def sign_in_client(client_id: str, client_secret: str) -> Admin:
    """Sign in with a tenant client's id and secret; it must hold coupon_manage."""
    tokens.client_credentials(
        grant_type="client_credentials",
        client_id=client_id,
        client_secret=client_secret,
        scope=None,
    )  # raises InvalidClient (a 401) for a wrong pair
    rows = read(
        db.session,
        select(Client.scopes, Tenant.slug).join(Tenant).where(Client.client_id == client_id),
    )
    scopes, slug = rows[0]
    if MANAGE not in str(scopes).split():
        raise Forbidden("This client cannot manage coupons (it lacks coupon_manage)")
    tenant = find_tenant(slug)
    _start(tenant, "client", client_id, proof=str(live_version(client_id)))
    return Admin(tenant, "client", client_id)


def _start(tenant: TenantRef, kind: str, name: str, proof: str) -> None:
    token = console_sessions.start(
        tenant_id=tenant.id,
        kind=kind,
        name=name,
        proof=proof,
        lifetime=timedelta(seconds=LIFETIME_SECONDS),
    )
    session.clear()  # nothing from before the sign-in survives it (session fixation)
    session.permanent = True
    session.update(session=token, csrf=secrets.token_urlsafe(32))


def current_admin() -> Admin | None:
    """The signed-in admin, if the session is live and what it was bound to stands."""
    token = session.get("session")
    found = console_sessions.find(token) if isinstance(token, str) else None
    if found is None:
        return None
    tenant = find_tenant(found.tenant)
    if tenant is None:
        return None
    if found.kind == "brand":
        stands = _brand_proof(found.api_token_hash) == found.proof
    else:
        stands = str(live_version(found.name)) == found.proof
    return Admin(tenant, found.kind, found.name) if stands else None


def sign_out() -> None:
    """End the session on the server, then forget the cookie."""
    token = session.get("session")
    if isinstance(token, str):
        console_sessions.end(token)
    session.clear()


def csrf_token() -> str:
    """This session's CSRF token (made on first use: the sign-in form has one too)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_valid(sent: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and sent) and hmac.compare_digest(expected, sent)
