"""Console sign-ins kept on the server: started at sign-in, looked up on every page,
ended at sign-out or by their expiry. Only the token's SHA-256 is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from app.database import read, wall_clock
from app.engine.uow import unit_of_work
from app.extensions import db
from app.models import ConsoleSession, Tenant
from app.security import hash_token, new_token

_SESSIONS = ConsoleSession.__table__


@dataclass(frozen=True)
class Found:
    tenant: str  # the slug
    kind: str
    name: str
    proof: str
    api_token_hash: str  # the tenant's now: a brand's proof is checked against it


def start(*, tenant_id: int, kind: str, name: str, proof: str, lifetime: timedelta) -> str:
    """A new session's token (for the cookie); sessions past their expiry go meanwhile."""
    token = new_token()
    now = wall_clock()
    with unit_of_work() as session:
        session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        session.add(
            ConsoleSession(
                token_hash=hash_token(token),
                tenant_id=tenant_id,
                kind=kind,
                name=name,
                proof=proof,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token


def find(token: str) -> Found | None:
    """The live session of this token (not ended, not expired), if any."""
    rows = read(
        db.session,
        select(
            Tenant.slug,
            _SESSIONS.c.kind,
            _SESSIONS.c.name,
            _SESSIONS.c.proof,
            Tenant.api_token_hash,
        )
        .join(Tenant, Tenant.id == _SESSIONS.c.tenant_id)
        .where(
            _SESSIONS.c.token_hash == hash_token(token),
            _SESSIONS.c.ended_at.is_(None),
            _SESSIONS.c.expires_at > wall_clock(),
        ),
    )
    return Found(*rows[0]) if rows else None


def end(token: str) -> None:
    """End the session of this token (signing out): every copy of its cookie is dead."""
    with unit_of_work() as session:
        session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == hash_token(token))
            .values(ended_at=wall_clock())
        )
