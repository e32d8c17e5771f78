"""Transactional outbox: messages are added in the caller's transaction."""

from __future__ import annotations

from app.extensions import db
from app.models import OutboxMessage

EMAIL_VERIFIER = "email_verifier"
COUPON_REALIZER = "coupon_realizer"
EVENTS = "events"

# Where each destination's base URL is configured.
DESTINATION_SETTINGS = {
    EMAIL_VERIFIER: "EMAIL_VERIFIER_URL",
    COUPON_REALIZER: "COUPON_REALIZER_URL",
    EVENTS: "EVENTS_URL",
}


def enqueue(
    *,
    tenant_id: int | None,
    destination: str,
    payload: dict,
    path: str = "",
    topic: str | None = None,
) -> OutboxMessage:
    """Add a message to the current transaction; the caller commits."""
    if destination not in DESTINATION_SETTINGS:
        raise ValueError(f"unknown outbox destination {destination!r}")
    message = OutboxMessage(
        tenant_id=tenant_id, destination=destination, path=path, topic=topic, payload=payload
    )
    db.session.add(message)
    return message
