"""Tenants (brands, merchant projects) and their OAuth2 clients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import utcnow
from app.extensions import db


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    # SHA-256 hex of the brand's X-API-Token; the token itself is never stored.
    api_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # How many codes one cart may combine.
    max_codes_per_order: Mapped[int] = mapped_column(default=5, server_default="5")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    clients: Mapped[list[Client]] = relationship(back_populates="tenant")


class Client(db.Model):
    """An OAuth2 client (client credentials grant) bound to one tenant."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    # Space-separated scope names without the "hybris." prefix.
    scopes: Mapped[str] = mapped_column(String(255))
    # Tokens carry the version they were issued under; rotating the secret or revoking
    # the client makes every earlier token worthless (within CACHE_TTL_SECONDS).
    token_version: Mapped[int] = mapped_column(default=1, server_default="1")
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tenant: Mapped[Tenant] = relationship(back_populates="clients")

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class ConsoleSession(db.Model):
    """A console sign-in: the cookie holds its token, this row its SHA-256 and what it is
    bound to, so signing out (or its expiry) ends it on the server, whatever cookie
    copies are left."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # "brand" | "client"
    name: Mapped[str] = mapped_column(String(64))  # the tenant's slug, or the client id
    # What still has to hold: a digest of the brand's token hash, or the client's version.
    proof: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
