"""Transactional outbox: messages are added in the caller's transaction, and a
worker delivers them at least once (leases, SKIP LOCKED, backoff, dead letters)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from sqlalchemy import select, update

from app.database import utcnow
from app.extensions import db
from app.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

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


# --- delivery (the worker) --------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What the worker needs from the app config, read once per batch."""

    urls: dict[str, str]
    events_secret: str | None
    retry_base: float
    max_attempts: int
    lease_seconds: float
    timeout: float

    @classmethod
    def from_config(cls, config) -> Settings:
        urls = {
            name: config[key].rstrip("/")
            for name, key in DESTINATION_SETTINGS.items()
            if config.get(key)
        }
        return cls(
            urls=urls,
            events_secret=config.get("EVENTS_SECRET"),
            retry_base=config["OUTBOX_RETRY_BASE_SECONDS"],
            max_attempts=config["OUTBOX_MAX_ATTEMPTS"],
            lease_seconds=config["OUTBOX_LEASE_SECONDS"],
            timeout=config["OUTBOX_HTTP_TIMEOUT_SECONDS"],
        )


def retry_delay(attempts: int, base: float) -> float:
    """Exponential backoff from `base`, with +-20% jitter, capped at an hour."""
    return min(base * 2 ** max(attempts - 1, 0), 3600.0) * random.uniform(0.8, 1.2)


def sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `id.timestamp.body`, hex."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def claim_due(settings: Settings, *, limit: int = 20) -> list[dict]:
    """Lease due messages to this worker (SKIP LOCKED lets several workers share)."""
    now = utcnow()
    if not settings.urls:
        return []
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.destination.in_(list(settings.urls)),
        )
        .order_by(OutboxMessage.next_attempt_at)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for message in db.session.scalars(query):
        # The lease: if this worker dies, the message is due again when it ends.
        message.next_attempt_at = now + timedelta(seconds=settings.lease_seconds)
        message.attempts += 1
        claimed.append(
            {
                "id": message.id,
                "destination": message.destination,
                "path": message.path,
                "topic": message.topic,
                "payload": message.payload,
                "attempts": message.attempts,
            }
        )
    db.session.commit()
    return claimed


def deliver(message: dict, settings: Settings, http: requests.Session) -> str | None:
    """POST one message; returns None on success, else the error text."""
    body = json.dumps(message["payload"], separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Message-Id": message["id"]}
    if message["topic"]:
        headers["X-Event-Topic"] = message["topic"]
    if message["destination"] == EVENTS and settings.events_secret:
        timestamp = str(int(time.time()))
        headers["X-Signature-Timestamp"] = timestamp
        headers["X-Signature"] = "sha256=" + sign(
            settings.events_secret, message["id"], timestamp, body
        )
    url = settings.urls[message["destination"]] + message["path"]
    try:
        response = http.post(url, data=body, headers=headers, timeout=settings.timeout)
    except requests.RequestException as error:
        return f"{type(error).__name__}: {error}"[:1000]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def record_result(message: dict, error: str | None, settings: Settings) -> None:
    """Mark delivered, schedule the retry, or declare the message dead."""
    values: dict
    if error is None:
        values = {"status": OutboxStatus.DELIVERED, "delivered_at": utcnow(), "last_error": None}
    elif message["attempts"] >= settings.max_attempts:
        values = {"status": OutboxStatus.DEAD, "last_error": error}
    else:
        delay = retry_delay(message["attempts"], settings.retry_base)
        values = {"next_attempt_at": utcnow() + timedelta(seconds=delay), "last_error": error}
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message["id"], OutboxMessage.status == OutboxStatus.PENDING)
        .values(**values)
    )
    db.session.commit()


def dispatch_once(config, http: requests.Session | None = None) -> int:
    """Deliver one batch of due messages; returns how many were attempted."""
    settings = Settings.from_config(config)
    claimed = claim_due(settings)
    http = http or requests.Session()
    for message in claimed:
        error = deliver(message, settings, http)
        if error:
            log.warning("outbox delivery failed", extra={"path": message["path"]})
        record_result(message, error, settings)
    return len(claimed)


def list_messages(*, dead: bool = False, limit: int = 100) -> list[OutboxMessage]:
    """Pending (or dead) messages, oldest first."""
    status = OutboxStatus.DEAD if dead else OutboxStatus.PENDING
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == status)
            .order_by(OutboxMessage.created_at)
            .limit(limit)
        )
    )


def retry(message_id: str) -> bool:
    """Make a dead (or pending) message due now with a fresh attempt budget."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status != OutboxStatus.DELIVERED)
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1
