"""Transactional outbox: messages are added in the caller's transaction, and a
worker delivers them at least once (leases, SKIP LOCKED, backoff, dead letters).

Every delivery carries the Standard Webhooks headers `webhook-id` (the stable
message id, for deduplication) and `webhook-timestamp`; events are sent as a
Standard Webhooks envelope `{type, timestamp, data}` and, with EVENTS_SECRET
(`whsec_...`), signed in `webhook-signature`, so subscribers verify them with
any `standardwebhooks` library.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy import and_, insert, or_, select, update

from app.database import utcnow
from app.engine.signatures import secret_key, sign
from app.engine.uow import delete_in_batches, unit_of_work
from app.engine.webhooks import WEBHOOK
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
# Payload fields that are secrets (an activation link's token): a delivered message
# keeps its payload without them, so neither the table nor a backup can activate a fan.
SECRET_FIELDS = {EMAIL_VERIFIER: ("token", "activation_url")}


# Whether events have anywhere to go (EVENTS_URL): with nowhere, none are written, so
# the outbox does not fill with messages no worker can deliver.
_events_wanted = True


def configure(*, events_url: str | None) -> None:
    """Set from the app's settings at start."""
    global _events_wanted
    _events_wanted = bool(events_url)


def events_wanted() -> bool:
    """True when redemption events have a destination."""
    return _events_wanted


def enqueue(
    *,
    tenant_id: int | None,
    destination: str,
    payload: dict,
    path: str = "",
    topic: str | None = None,
) -> str:
    """Insert a message in the current transaction (the caller commits); its id.

    A Core insert, sent now: an ORM object would cost a flush's bookkeeping at commit."""
    values = message_values(
        tenant_id=tenant_id, destination=destination, payload=payload, path=path, topic=topic
    )
    db.session.execute(insert(OutboxMessage.__table__), values)
    return values["id"]


MESSAGE_FIELDS = (
    "id",
    "tenant_id",
    "destination",
    "path",
    "topic",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def message_values(
    *,
    tenant_id: int | None,
    destination: str,
    payload: dict,
    path: str = "",
    topic: str | None = None,
) -> dict:
    """Every column of a new message, for callers that insert it with Core."""
    if destination not in DESTINATION_SETTINGS:
        raise ValueError(f"unknown outbox destination {destination!r}")
    now = utcnow()
    return {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant_id,
        "destination": destination,
        "path": path,
        "topic": topic,
        "payload": payload,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


# --- delivery (the worker) --------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What the worker needs from the app config, read once per batch."""

    urls: dict[str, str]
    events_key: bytes | None
    retry_base: float
    retry_max_delay: float
    retry_for: timedelta
    max_attempts: int  # 0: only the time budget ends retries
    lease_seconds: float
    timeout: float
    poll_seconds: float
    # Webhook endpoints: the keys their secrets are sealed under, and whether private
    # addresses may be called.
    secret_keys: tuple[str, ...] = ()
    allow_private: bool = False

    @classmethod
    def from_config(cls, config) -> Settings:
        urls = {
            name: config[key].rstrip("/")
            for name, key in DESTINATION_SETTINGS.items()
            if config.get(key)
        }
        secret = config.get("EVENTS_SECRET")
        return cls(
            urls=urls,
            events_key=secret_key(secret) if secret else None,
            retry_base=config["OUTBOX_RETRY_BASE_SECONDS"],
            retry_max_delay=config["OUTBOX_RETRY_MAX_DELAY_SECONDS"],
            retry_for=timedelta(seconds=config["OUTBOX_RETRY_FOR_SECONDS"]),
            max_attempts=config["OUTBOX_MAX_ATTEMPTS"],
            lease_seconds=config["OUTBOX_LEASE_SECONDS"],
            timeout=config["OUTBOX_HTTP_TIMEOUT_SECONDS"],
            poll_seconds=config["OUTBOX_POLL_SECONDS"],
            secret_keys=(config["SECRET_KEY"], *config.get("SECRET_KEY_FALLBACKS", ())),
            allow_private=config.get("WEBHOOK_ALLOW_PRIVATE", False),
        )


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff from `base`, capped at `cap`, less up to 20% of jitter (so
    messages failed together spread out, and none waits longer than `cap`)."""
    return min(base * 2 ** max(attempts - 1, 0), cap) * random.uniform(0.8, 1.0)


def claim_due(
    settings: Settings,
    *,
    limit: int = 20,
    busy: frozenset[str] = frozenset(),
    webhook_room: int | None = None,
) -> list[dict]:
    """Lease due messages to this worker (SKIP LOCKED lets several workers share).

    With `webhook_room` (the worker's free webhook slots), at most that many webhook
    messages, one per endpoint, none for an endpoint in `busy` (one in flight already)."""
    now = utcnow()
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
            # Webhook endpoints carry their own URLs.
            OutboxMessage.destination.in_([*settings.urls, WEBHOOK]),
        )
        .order_by(OutboxMessage.next_attempt_at)
        .limit(limit)
    )
    if busy:
        query = query.where(
            or_(OutboxMessage.endpoint_id.is_(None), OutboxMessage.endpoint_id.not_in(busy))
        )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    endpoints: set[str] = set()
    with unit_of_work():
        for message in db.session.scalars(query):
            if message.endpoint_id is not None and webhook_room is not None:
                if message.endpoint_id in endpoints or len(endpoints) >= webhook_room:
                    continue  # left due: its endpoint's turn comes after this one
                endpoints.add(message.endpoint_id)
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
                    "created_at": message.created_at,
                    "attempts": message.attempts,
                    "retrying_since": message.retrying_since or message.created_at,
                    "endpoint_id": message.endpoint_id,
                }
            )
    return claimed


def wire_body(message: dict) -> bytes:
    """What is POSTed: the payload as is, or an event in the Standard Webhooks envelope."""
    document = message["payload"]
    if message["destination"] == EVENTS:
        document = {
            "type": message["topic"],
            "timestamp": message["created_at"].isoformat().replace("+00:00", "Z"),
            "data": message["payload"],
        }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def deliver(message: dict, settings: Settings, http: requests.Session) -> str | None:
    """POST one message; returns None on success, else the error text."""
    body = wire_body(message)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message["id"],
        "webhook-timestamp": timestamp,
    }
    if message["destination"] == EVENTS and settings.events_key:
        headers["webhook-signature"] = sign(settings.events_key, message["id"], timestamp, body)
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
        values = {
            "status": OutboxStatus.DELIVERED,
            "delivered_at": utcnow(),
            "last_error": None,
            "payload": without_secrets(message["destination"], message["payload"]),
        }
    elif out_of_retries(message, settings, now := utcnow()):
        # next_attempt_at becomes when it died: its retention counts from there.
        values = {"status": OutboxStatus.DEAD, "last_error": error, "next_attempt_at": now}
    else:
        delay = retry_delay(message["attempts"], settings.retry_base, settings.retry_max_delay)
        # The last attempt falls on the budget's end, not a backoff step past it.
        due = min(now + timedelta(seconds=delay), message["retrying_since"] + settings.retry_for)
        values = {"next_attempt_at": due, "last_error": error}
    with unit_of_work():
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message["id"], OutboxMessage.status == OutboxStatus.PENDING)
            .values(**values)
        )


def out_of_retries(message: dict, settings: Settings, now: datetime) -> bool:
    """Dead once its time budget is spent (or OUTBOX_MAX_ATTEMPTS, when set)."""
    if settings.max_attempts and message["attempts"] >= settings.max_attempts:
        return True
    return now >= message["retrying_since"] + settings.retry_for


def without_secrets(destination: str, payload: dict) -> dict:
    """The payload as kept once delivered: its secret fields dropped."""
    secret = SECRET_FIELDS.get(destination, ())
    return {key: value for key, value in payload.items() if key not in secret}


def purge_finished(retention_seconds: float, *, batch: int = 1000) -> int:
    """Delete messages delivered, or dead, more than `retention_seconds` ago, in batches
    (the worker's housekeeping); pending ones stay. Returns how many went."""
    cutoff = utcnow() - timedelta(seconds=retention_seconds)
    m = OutboxMessage
    return delete_in_batches(
        m,
        or_(
            and_(m.status == OutboxStatus.DELIVERED, m.delivered_at < cutoff),
            and_(m.status == OutboxStatus.DEAD, m.next_attempt_at < cutoff),
        ),
        batch=batch,
    )


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
    """Make a dead (or pending) message due now with a fresh retry budget."""
    undelivered = OutboxMessage.status != OutboxStatus.DELIVERED
    return _requeue(OutboxMessage.id == message_id, undelivered) == 1


def retry_dead(*, destination: str | None = None, since: datetime | None = None) -> int:
    """Make every dead message (of `destination`, dead since `since`) due now with a fresh
    retry budget; returns how many."""
    m = OutboxMessage
    where = [m.status == OutboxStatus.DEAD]
    if destination:
        where.append(m.destination == destination)
    if since:
        where.append(m.next_attempt_at >= since)  # a dead message's next_attempt_at: its death
    return _requeue(*where)


def _requeue(*where) -> int:
    now = utcnow()
    with unit_of_work():
        result = db.session.execute(
            update(OutboxMessage)
            .where(*where)
            .values(
                status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, retrying_since=now
            )
        )
    return result.rowcount
