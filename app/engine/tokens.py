"""OAuth2 client credentials grant."""

from __future__ import annotations

from sqlalchemy import select

from app.auth import format_scope, issue_token, parse_scope
from app.engine.uow import end_read
from app.errors import DomainError, Unauthorized, ValidationFailed
from app.extensions import db
from app.models import Client
from app.security import DUMMY_PASSWORD_HASH, hash_token, token_matches


class InvalidClient(Unauthorized):
    type, message = "invalid_client", "Client authentication failed"


class InvalidScope(DomainError):
    status, type, message = 400, "invalid_scope", "The requested scope is not allowed"


class UnsupportedGrantType(DomainError):
    status, type = 400, "unsupported_grant_type"
    message = "Only grant_type=client_credentials is supported"


def client_credentials(
    *, grant_type: str | None, client_id: str | None, client_secret: str | None, scope: str | None
) -> dict:
    """Exchange client credentials for a tenant-bound access token."""
    if not grant_type:
        raise ValidationFailed("grant_type is required")
    if grant_type != "client_credentials":
        raise UnsupportedGrantType()
    if not client_id or not client_secret:
        raise InvalidClient()
    client = db.session.scalar(
        select(Client).where(Client.client_id == client_id, Client.revoked_at.is_(None))
    )
    # Compare against a dummy hash for unknown ids so timing does not reveal them.
    stored = client.secret_hash if client is not None else hash_token(DUMMY_PASSWORD_HASH)
    if not token_matches(client_secret, stored) or client is None:
        raise InvalidClient()
    tenant_slug = client.tenant.slug
    try:
        requested_tenant, requested = parse_scope(scope)
    except ValueError as error:
        raise InvalidScope(str(error)) from None
    if requested_tenant is not None and requested_tenant != tenant_slug:
        raise InvalidScope("The client does not belong to the requested tenant")
    allowed = client.scope_set
    # No scope parameter: everything the client may have. A scope parameter: exactly that.
    granted = requested if scope is not None else set(allowed)
    if not granted <= allowed:
        raise InvalidScope(f"Unknown or not allowed scope: {' '.join(sorted(granted - allowed))}")
    token, ttl = issue_token(
        tenant=tenant_slug,
        subject=client.client_id,
        kind="client",
        scopes=granted,
        version=client.token_version,
    )
    end_read()
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        # Granted as asked: echo the request (clients such as requests-oauthlib compare it);
        # nothing asked: everything the client may have, in a fixed order.
        "scope": _as_asked(scope) if scope is not None else format_scope(tenant_slug, granted),
    }


def _as_asked(scope: str) -> str:
    """The requested scope items in the order given, each once."""
    return " ".join(dict.fromkeys(scope.split()))
