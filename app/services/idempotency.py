"""Idempotency-Key bookkeeping: claim a key, store the response, replay it.

The unique (tenant, key) row is the lock: the first request inserts it and
commits at once; concurrent duplicates fail to insert, then wait for the
stored response and replay it, so the work runs once.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.database import utcnow
from app.errors import IdempotencyInProgress, IdempotencyKeyReused
from app.extensions import db
from app.models import IdempotencyRecord

RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict


@dataclass(frozen=True)
class Claim:
    """Either this request owns the key (record_id) or it must replay `stored`."""

    record_id: int | None = None
    stored: StoredResponse | None = None


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request; JSON bodies are canonicalised first."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def claim(*, tenant_id: int, key: str, fingerprint: str, wait_seconds: float) -> Claim:
    """Own the key, or get the response stored under it (waiting while it is in flight)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        record = db.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key
            )
        )
        if record is not None and record.created_at < utcnow() - RETENTION:
            db.session.delete(record)
            db.session.commit()
            continue
        if record is None:
            record = IdempotencyRecord(tenant_id=tenant_id, key=key, request_hash=fingerprint)
            db.session.add(record)
            try:
                db.session.commit()
                return Claim(record_id=record.id)
            except IntegrityError:
                db.session.rollback()
                continue
        if record.request_hash != fingerprint:
            db.session.rollback()
            raise IdempotencyKeyReused()
        if record.status_code is not None:
            stored = StoredResponse(
                record.status_code, record.response_body or "", record.response_headers or {}
            )
            db.session.rollback()
            return Claim(stored=stored)
        db.session.rollback()
        if time.monotonic() >= deadline:
            raise IdempotencyInProgress()
        time.sleep(0.05)


def complete(*, record_id: int, status: int, body: str, headers: dict) -> None:
    """Store the response of the request that owned the key."""
    db.session.rollback()
    db.session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(status_code=status, response_body=body, response_headers=headers)
    )
    db.session.commit()


def release(*, record_id: int) -> None:
    """Forget the key (the request failed in a way a retry may fix)."""
    db.session.rollback()
    db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    db.session.commit()


def purge_expired(*, batch: int = 1000) -> int:
    """Delete records past their retention, in batches; returns how many went."""
    cutoff = utcnow() - RETENTION
    removed = 0
    while True:
        ids = db.session.scalars(
            select(IdempotencyRecord.id).where(IdempotencyRecord.created_at < cutoff).limit(batch)
        ).all()
        if not ids:
            db.session.rollback()
            return removed
        db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
        db.session.commit()
        removed += len(ids)
