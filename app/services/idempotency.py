"""Idempotency-Key: run a request once per (tenant, key) and replay its answer.

The key's row, the work the request does and the answer stored in that row
commit in one transaction. A duplicate that arrives meanwhile waits on the
row's unique index (PostgreSQL) or on the write lock (SQLite) and then replays
the stored answer; if the first request fails or its process dies, its
transaction rolls back with the key, so a retry runs the work instead of
finding a key claimed by nobody.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import OperationalError
from werkzeug.wrappers import Response

from app.database import insert_or_ignore, utcnow
from app.errors import IdempotencyInProgress, IdempotencyKeyReused
from app.extensions import db
from app.models import IdempotencyRecord
from app.services.uow import unit_of_work

RETENTION = timedelta(hours=24)
# Replayed headers: the ones that describe the created resource.
KEPT_HEADERS = ("Location", "Content-Type")
# Failures a retry with the same key may cure (auth, visibility, rate): not stored.
NOT_STORED = frozenset({401, 403, 404, 429})
_LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request; JSON bodies are canonicalised first."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON: the bytes as they came
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


class _Discarded(Exception):
    """Leaves the unit of work so that it rolls back, carrying the answer to give."""

    def __init__(self, response: Response):
        self.response = response


def run_once(
    *,
    tenant_id: int,
    key: str,
    fingerprint: str,
    wait_seconds: float,
    work: Callable[[], Response],
) -> Response | StoredResponse:
    """The answer of `work` for this key: computed now, or the one stored earlier.

    `work` answers instead of raising. A refusal (4xx) undoes the work's writes
    and is stored; a 5xx or an answer in NOT_STORED forgets the key.
    """
    try:
        with unit_of_work():
            record_id, stored = _claim(tenant_id, key, fingerprint, wait_seconds)
            if stored is not None:
                return stored
            response = _attempt(work)
            if response.status_code >= 500 or response.status_code in NOT_STORED:
                raise _Discarded(response)
            db.session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == record_id)
                .values(
                    status_code=response.status_code,
                    response_body=response.get_data(as_text=True),
                    response_headers={
                        h: response.headers[h] for h in KEPT_HEADERS if h in response.headers
                    },
                )
            )
            return response
    except _Discarded as discarded:
        return discarded.response


def _attempt(work: Callable[[], Response]) -> Response:
    """Run the work in a savepoint that a refusal rolls back (the key stays claimed)."""
    savepoint = db.session.begin_nested()
    response = work()
    if response.status_code >= 500:
        raise _Discarded(response)  # the whole transaction goes, savepoint included
    if response.status_code >= 400:
        savepoint.rollback()
    else:
        savepoint.commit()
    return response


def _claim(
    tenant_id: int, key: str, fingerprint: str, wait_seconds: float
) -> tuple[int | None, StoredResponse | None]:
    """Insert the key's row (this request owns it) or read the answer stored under it."""
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        # Bounds the wait for a duplicate still in flight; the setting ends with the transaction.
        session.execute(
            text("SELECT set_config('lock_timeout', :timeout, true)"),
            {"timeout": f"{max(int(wait_seconds * 1000), 1)}ms"},
        )
    for _ in range(3):
        try:
            record_id = session.scalar(
                insert_or_ignore(
                    session,
                    IdempotencyRecord,
                    tenant_id=tenant_id,
                    key=key,
                    request_hash=fingerprint,
                    created_at=utcnow(),
                ).returning(IdempotencyRecord.id)
            )
        except OperationalError as error:
            if getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise IdempotencyInProgress() from None
            raise
        if record_id is not None:
            return record_id, None
        record = session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key
            )
        )
        if record is None:
            continue  # purged between the two statements
        if record.created_at < utcnow() - RETENTION or record.status_code is None:
            # Past retention, or a claim without an answer left by an older version: take over.
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
            continue
        if record.request_hash != fingerprint:
            raise IdempotencyKeyReused()
        return None, StoredResponse(
            record.status_code, record.response_body or "", record.response_headers or {}
        )
    raise IdempotencyInProgress()


def purge_expired(*, batch: int = 1000) -> int:
    """Delete records past their retention, in batches; returns how many went."""
    cutoff = utcnow() - RETENTION
    removed = 0
    while True:
        with unit_of_work():
            ids = db.session.scalars(
                select(IdempotencyRecord.id)
                .where(IdempotencyRecord.created_at < cutoff)
                .limit(batch)
            ).all()
            if ids:
                db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
        if not ids:
            return removed
        removed += len(ids)
