"""The outbox worker's loop: deliveries, campaign jobs and housekeeping, outliving
database outages; webhook deliveries in slots of their own.

Messages to the operator's services are delivered one after the other. Webhook
deliveries run in a pool of slots, at most one in flight per endpoint: a dead or
hanging endpoint holds one slot for its timeout, and every other endpoint's messages
go through the other slots meanwhile (the loop claims again as soon as a slot frees).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from app.database import utcnow
from app.engine import signatures
from app.engine.outbox import Settings, claim_due, deliver, record_result
from app.engine.uow import OUTAGE_ERRORS, discard_session, unit_of_work
from app.engine.webhooks import DISABLE_AFTER, WEBHOOK, E, blocked
from app.extensions import db
from app.models import OutboxMessage, OutboxStatus, WebhookAttempt, WebhookEndpoint
from app.security import seal, unseal, unseal_with

log = logging.getLogger("app.engine.outbox")

# The worker's wait after a database error grows to this and no further.
MAX_OUTAGE_BACKOFF_SECONDS = 30.0
WEBHOOK_SLOTS = 8


class Slots:
    """Webhook deliveries in flight, each in a thread with an app context of its own."""

    def __init__(self, size: int, context: Callable[[], AbstractContextManager]):
        self.size, self.context = size, context
        self.pool = ThreadPoolExecutor(size, thread_name_prefix="webhook")
        self.busy: set[str] = set()
        self.lock = threading.Lock()
        self.freed = threading.Event()  # a slot came free: claim again at once

    def taken(self) -> frozenset[str]:
        with self.lock:
            return frozenset(self.busy)

    def room(self) -> int:
        with self.lock:
            return self.size - len(self.busy)

    def start(self, message: dict, settings: Settings) -> None:
        with self.lock:
            self.busy.add(message["endpoint_id"])
        self.pool.submit(self._run, message, settings)

    def _run(self, message: dict, settings: Settings) -> None:
        try:
            with self.context(), requests.Session() as http:
                _deliver_and_record(message, settings, http)
        except Exception:  # noqa: BLE001 - its lease runs out and it is delivered again
            log.exception("webhook delivery failed to finish", extra={"message_id": message["id"]})
        finally:
            with self.lock:
                self.busy.discard(message["endpoint_id"])
            self.freed.set()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _deliver_and_record(message: dict, settings: Settings, http: requests.Session) -> None:
    if message["destination"] == WEBHOOK:
        error = deliver_webhook(
            message,
            http,
            secret_keys=settings.secret_keys,
            allow_private=settings.allow_private,
            timeout=settings.timeout,
        )
    else:
        error = deliver(message, settings, http)
    if error:
        log.warning(
            "outbox delivery failed",
            extra={"message_id": message["id"], "error": error, "attempt": message["attempts"]},
        )
    try:
        record_result(message, error, settings)
    except SQLAlchemyError:
        # Its lease runs out and it is delivered again: at least once, never lost.
        log.error("outbox result not recorded", extra={"message_id": message["id"]})
        raise


def dispatch_once(settings: Settings, http: requests.Session, slots: Slots | None = None) -> int:
    """Deliver one batch of due messages (webhook ones into `slots`, if given); returns how
    many were claimed."""
    if slots is None:
        claimed = claim_due(settings)
    else:
        claimed = claim_due(settings, busy=slots.taken(), webhook_room=slots.room())
    for message in claimed:
        if slots is not None and message["destination"] == WEBHOOK:
            slots.start(message, settings)
        else:
            _deliver_and_record(message, settings, http)
    return len(claimed)


def deliver_due(config) -> None:
    """Deliver batches until nothing is due (`outbox dispatch --once`)."""
    settings, http = Settings.from_config(config), requests.Session()
    while dispatch_once(settings, http):
        pass


def run_worker(
    config,
    stop: threading.Event,
    housekeeping: Callable[[], object],
    jobs: tuple[Callable[[], bool], ...] = (),
    context: Callable[[], AbstractContextManager] | None = None,
) -> None:
    """Deliver until `stop` is set, outliving database outages and failing jobs.

    A database error is logged, the session is dropped (its connection may be
    dead) and the loop waits, doubling the wait up to MAX_OUTAGE_BACKOFF_SECONDS,
    before it reconnects and goes on. A job's own failure (anything but an
    outage) is logged and costs only that job's turn. `housekeeping` runs hourly. Each
    of `jobs` gets a turn between deliveries (a short step, True when it did something),
    so a long job such as a campaign's generation never holds deliveries back long.
    With `context` (an app context factory), webhook deliveries run in slots (Slots).
    """
    settings = Settings.from_config(config)
    http = requests.Session()
    slots = Slots(WEBHOOK_SLOTS, context) if context is not None else None
    outage_wait = 0.0
    next_housekeeping = time.monotonic()
    heartbeat = config.get("WORKER_HEARTBEAT_FILE")
    try:
        while not stop.is_set():
            if heartbeat:  # the container's healthcheck reads its age: the loop is turning
                Path(heartbeat).touch()
            try:
                if time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + 3600  # a failing one waits too
                    _turn(housekeeping)
                if slots is not None:
                    slots.freed.clear()
                delivered = dispatch_once(settings, http, slots)
                worked = [_turn(job) for job in jobs]
                outage_wait = 0.0
                if not delivered and not any(worked):
                    _idle(stop, slots, settings.poll_seconds)
            except Exception as error:  # noqa: BLE001 - the worker outlives every failure
                discard_session()
                outage_wait = min(
                    max(outage_wait * 2, settings.poll_seconds, 0.5), MAX_OUTAGE_BACKOFF_SECONDS
                )
                log.error(
                    "outbox worker: database error, retrying"
                    if isinstance(error, OUTAGE_ERRORS)
                    else "outbox worker: unexpected error, retrying",
                    exc_info=not isinstance(error, OUTAGE_ERRORS),
                    extra={
                        "error": type(getattr(error, "orig", error)).__name__,
                        "retry_in": round(outage_wait, 1),
                    },
                )
                stop.wait(outage_wait)
    finally:
        if slots is not None:
            slots.close()


def _idle(stop: threading.Event, slots: Slots | None, seconds: float) -> None:
    """Wait for the poll interval, or less: until a webhook slot frees (its endpoint may
    have more due) or the worker is stopped."""
    if slots is None:
        stop.wait(seconds)
        return
    deadline = time.monotonic() + seconds
    while not stop.is_set() and not slots.freed.is_set() and time.monotonic() < deadline:
        slots.freed.wait(min(0.05, seconds))


def _turn(job: Callable[[], object]) -> object:
    """One turn of a job. Its outage errors reach the worker's backoff; anything else
    is logged and the worker goes on: one tenant's bad job never stops the others."""
    try:
        return job()
    except OUTAGE_ERRORS:
        raise
    except Exception:
        log.exception("outbox worker: a job failed; going on")
        discard_session()
        return False


# --- webhook deliveries -----------------------------------------------------------------


def refusal(url: str, allow_private: bool) -> str | None:
    """Why the URL may not be called now (what its host resolves to), or None."""
    if allow_private:
        return None
    parts = urlsplit(url)
    try:
        found = socket.getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), 0, 1
        )
    except (socket.gaierror, UnicodeError):
        return f"cannot resolve {parts.hostname}"
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if blocked(address):
            return f"refused: {parts.hostname} resolves to {address}, not a public address"
    return None


def deliver_webhook(message: dict, http: requests.Session, *, secret_keys, allow_private, timeout):
    """POST one message to its endpoint; returns None on success, else the error text.
    Logs the attempt, keeps the endpoint's failing streak, switches it off after 3 days."""
    endpoint = db.session.execute(
        select(E.id, E.url, E.active, E.secret, E.previous_secret, E.previous_until).where(
            E.id == message["endpoint_id"]
        )
    ).first()
    db.session.rollback()  # read only: the attempt is recorded in a transaction of its own
    if endpoint is None:
        return "endpoint removed"
    now = utcnow()
    if not endpoint.active:
        _finish_dead(message["id"], "endpoint switched off")
        return "endpoint switched off"
    status, error = None, refusal(endpoint.url, allow_private)
    resealed = None
    if error is None:
        body = json.dumps(
            {
                "type": message["topic"],
                "timestamp": message["created_at"].isoformat().replace("+00:00", "Z"),
                "data": message["payload"],
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        current, opened_with = unseal_with(endpoint.secret, secret_keys)
        if opened_with:  # sealed under a key now only a fallback: seal it anew
            resealed = (endpoint.secret, seal(current, secret_keys[0]))
        keys = [current]
        if endpoint.previous_secret is not None and (endpoint.previous_until or now) > now:
            keys.append(unseal(endpoint.previous_secret, secret_keys))
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message["id"],
            "webhook-timestamp": timestamp,
            "webhook-signature": " ".join(
                signatures.sign(signatures.secret_key(k), message["id"], timestamp, body)
                for k in keys
            ),
        }
        try:
            response = http.post(
                endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except requests.RequestException as failure:
            error = f"{type(failure).__name__}: {failure}"[:300]
    _record(endpoint.id, message, status, error, now, resealed)
    return error


def _record(endpoint_id: str, message: dict, status, error, now, resealed=None) -> None:
    with unit_of_work() as session:
        session.add(
            WebhookAttempt(
                endpoint_id=endpoint_id,
                message_id=message["id"],
                event_type=message["topic"] or "",
                attempt=message["attempts"],
                status_code=status,
                error=error,
                at=now,
            )
        )
        endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None:
            return
        # SECRET_KEY was rotated: sealed anew (unless the secret was rotated meanwhile),
        # so the old key can leave SECRET_KEY_FALLBACKS.
        if resealed is not None and endpoint.secret == resealed[0]:
            endpoint.secret = resealed[1]
        if error is None:
            endpoint.failing_since = None
        else:
            endpoint.failing_since = endpoint.failing_since or now
            if now - endpoint.failing_since >= DISABLE_AFTER:
                endpoint.active = False
                endpoint.disabled_reason = f"every delivery failed for 3 days; last: {error}"[:200]


def _finish_dead(message_id: str, error: str) -> None:
    with unit_of_work() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.DEAD, last_error=error, next_attempt_at=utcnow())
        )
