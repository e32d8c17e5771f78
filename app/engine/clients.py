"""OAuth clients' lifecycle: which clients are live, revoking them, rotating secrets.

A client token carries the `ver` its client had when it was issued. Revoking the
client or rotating its secret moves that on, so every token issued before is
refused once the workers' cache of client versions (CACHE_TTL_SECONDS) turns.
"""

from __future__ import annotations

from sqlalchemy import select

from app.database import read, utcnow
from app.engine.cache import named_cache
from app.engine.uow import unit_of_work
from app.errors import NotFound
from app.extensions import db
from app.models import Client
from app.security import hash_token, new_token

_CLIENT = Client.__table__.c


class ClientNotFound(NotFound):
    type, message = "client_not_found", "No live client with this id"


def live_version(client_id: str) -> int:
    """The token version of a live client; 0 when it is revoked or gone (cached, the
    refusal too, so a revoked client's tokens cost no query each)."""
    return named_cache("client_version").get(client_id, lambda: _load_version(client_id))


def _load_version(client_id: str) -> int:
    rows = read(
        db.session,
        select(_CLIENT.token_version).where(
            _CLIENT.client_id == client_id, _CLIENT.revoked_at.is_(None)
        ),
    )
    return rows[0][0] if rows else 0


def _live(client_id: str) -> Client:
    client = db.session.scalar(
        select(Client).where(Client.client_id == client_id, Client.revoked_at.is_(None))
    )
    if client is None:
        raise ClientNotFound()
    return client


def revoke(*, client_id: str) -> dict:
    """Revoke a client: its secret and every token it holds stop working."""
    with unit_of_work():
        client = _live(client_id)
        client.revoked_at = utcnow()
        client.token_version += 1
        tenant = client.tenant.slug
    named_cache("client_version").clear()
    return {"tenant": tenant, "client_id": client_id, "revoked": True}


def rotate_secret(*, client_id: str) -> dict:
    """A new secret for a client (shown once); its earlier tokens stop working."""
    secret = new_token(32)
    with unit_of_work():
        client = _live(client_id)
        client.secret_hash = hash_token(secret)
        client.token_version += 1
        tenant = client.tenant.slug
    named_cache("client_version").clear()
    return {"tenant": tenant, "client_id": client_id, "client_secret": secret}
