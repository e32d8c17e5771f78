"""Messages to downstream services, written in the transaction that causes them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import utcnow
from app.extensions import db


class OutboxStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


def _message_id() -> str:
    return uuid.uuid4().hex


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    # Stable across retries: sent as X-Message-Id so receivers can deduplicate.
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_message_id)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"), index=True
    )
    # Which configured base URL receives it (email_verifier, coupon_realizer, events).
    destination: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(255), default="")
    topic: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict]
    # A webhook delivery's endpoint (destination "webhook"): its URL and secret are read
    # at delivery time.
    endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Start of the retry budget (OUTBOX_RETRY_FOR_SECONDS): a re-queued dead message
    # gets a fresh one; NULL: since created_at.
    retrying_since: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
