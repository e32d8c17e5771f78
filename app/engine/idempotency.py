"""Idempotency-Key: run a request once per (tenant, caller, key) and replay its answer.

Keys are the caller's (a client, a customer, a brand), as Stripe scopes them to
the account: another caller sending the same key and body is a request of its
own, never handed the first caller's answer.

The work runs first; its answer is then inserted under the key in the same
transaction (`INSERT ... ON CONFLICT DO NOTHING`), and one COMMIT makes both
durable: a keyed request costs one more statement than an unkeyed one. If the
key already holds an answer, the work is rolled back and that answer replayed.
A duplicate in flight is waited for at the insert (PostgreSQL waits on the
uncommitted row, for at most IDEMPOTENCY_WAIT_SECONDS, then 409); if the first
request fails or its process dies, its transaction rolls back with the key, so
nothing is ever left claimed by nobody.

A refusal (4xx) is stored too, but without the work's writes: the transaction
is rolled back and the answer stored alone. 5xx answers and those a retry may
cure (401, 403, 404, 429) are not stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from app.database import typed_params, utcnow
from app.direct import Direct
from app.engine.uow import delete_in_batches, unit_of_work
from app.errors import IdempotencyInProgress, IdempotencyKeyReused
from app.extensions import db
from app.models import IdempotencyRecord

RETENTION = timedelta(hours=24)
# Replayed headers: the ones that describe the created resource.
KEPT_HEADERS = ("Location", "Content-Type")
# Failures a retry with the same key may cure (auth, visibility, rate): not stored.
NOT_STORED = frozenset({401, 403, 404, 429})
_LOCK_NOT_AVAILABLE = "55P03"
_RECORDS = IdempotencyRecord.__table__


@dataclass(frozen=True)
class Answer:
    """A request's answer as the key keeps it; `replayed` when it is the stored one."""

    status: int
    body: str
    headers: dict
    replayed: bool = False


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request; JSON bodies are canonicalised first."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON: the bytes as they came
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


class _Undo(Exception):
    """Leaves the unit of work so that it rolls back, carrying what to answer."""

    def __init__(self, answer: Answer | None = None):
        self.answer = answer


def run_once(
    *,
    tenant_id: int,
    caller: str,
    key: str,
    fingerprint: str,
    wait_seconds: float,
    work: Callable[[], Answer],
) -> Answer:
    """The answer of `work` for this key: computed now, or the one stored earlier
    (`replayed`). `work` answers instead of raising."""
    record = {"tenant_id": tenant_id, "caller": caller, "key": key, "request_hash": fingerprint}
    try:
        with unit_of_work():
            response = work()
            status = response.status
            if status >= 500 or status in NOT_STORED:
                raise _Undo(response)
            if status >= 400:
                raise _Undo()  # stored below, without the work's writes
            stored = _store(record, response, wait_seconds)
            if stored is not None:
                raise _Undo(stored)  # answered before: ours goes
            return response
    except _Undo as undone:
        if undone.answer is not None:
            return undone.answer
    with unit_of_work():
        return _store(record, response, wait_seconds) or response


def _store(record: dict, response: Answer, wait_seconds: float) -> Answer | None:
    """Insert this answer under the key; returns the answer stored earlier instead, if any."""
    values = {
        **record,
        "status_code": response.status,
        "response_body": response.body,
        "response_headers": {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers},
        "created_at": utcnow(),
    }
    session = db.session
    for _ in range(3):
        if _insert(session, values, wait_seconds):
            return None
        existing = session.execute(
            select(_RECORDS).where(
                _RECORDS.c.tenant_id == record["tenant_id"],
                _RECORDS.c.caller == record["caller"],
                _RECORDS.c.key == record["key"],
            )
        ).first()
        if existing is None:
            continue  # purged between the two statements
        if existing.created_at < utcnow() - RETENTION or existing.status_code is None:
            # Past retention, or a claim without an answer left by an older version: take over.
            session.execute(delete(_RECORDS).where(_RECORDS.c.id == existing.id))
            continue
        if existing.request_hash != record["request_hash"]:
            raise IdempotencyKeyReused()
        return Answer(
            existing.status_code,
            existing.response_body or "",
            existing.response_headers or {},
            replayed=True,
        )
    raise IdempotencyInProgress()


_FIELDS = (
    "tenant_id",
    "caller",
    "key",
    "request_hash",
    "status_code",
    "response_body",
    "response_headers",
    "created_at",
)


@functools.cache
def _insert_statement(dialect: str):
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, built once.

    On PostgreSQL (parameters v_<column>) the wait for a duplicate in flight is
    bounded by lock_timeout, set for the rest of the transaction by the row source
    itself: no extra round trip. SQLite serializes writers and never waits here.
    """
    if dialect != "postgresql":
        return sqlite.insert(_RECORDS).on_conflict_do_nothing().returning(_RECORDS.c.id)
    setting = select(
        func.set_config("lock_timeout", bindparam("lock_timeout"), True).label("lock_timeout")
    ).subquery("settings")
    # Referencing the setting makes it evaluated before the row is inserted.
    source = select(*typed_params(_RECORDS, _FIELDS, "v_")).where(
        setting.c.lock_timeout.is_not(None)
    )
    return (
        postgresql.insert(_RECORDS)
        .from_select(list(_FIELDS), source)
        .on_conflict_do_nothing()
        .returning(_RECORDS.c.id)
    )


@functools.cache
def _direct_insert() -> Direct:
    """PostgreSQL's insert run on the driver (every keyed request makes one)."""
    return Direct(_insert_statement("postgresql"))


def _insert(session, values: dict, wait_seconds: float) -> bool:
    """Insert the record unless the key is taken; True when this request's row went in."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        params = {"v_" + name: values[name] for name in _FIELDS}
        params["lock_timeout"] = f"{max(int(wait_seconds * 1000), 1)}ms"
    else:
        params = values
    try:
        if dialect == "postgresql":
            return bool(_direct_insert().rows(session.connection(), params))
        return session.execute(_insert_statement(dialect), params).first() is not None
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise IdempotencyInProgress() from None
        raise


def purge_expired(*, batch: int = 1000) -> int:
    """Delete records past their retention, in batches; returns how many went."""
    return delete_in_batches(
        IdempotencyRecord, IdempotencyRecord.created_at < utcnow() - RETENTION, batch=batch
    )
