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

A work whose writes are one autocommitted statement (a redemption on the hot
path) can take the request's `Offer` instead: it answers as if written, and the
record goes in with that one statement once the answer is known (both or
neither, no BEGIN, no COMMIT). The record is inserted after the work's rows and
without ON CONFLICT, so a key taken meanwhile fails the whole statement and
nothing is written; the work then runs again as above, and finds the answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.selectable import CTE

from app.database import typed_params, utcnow
from app.direct import Direct
from app.engine import observe
from app.engine.uow import delete_in_batches, in_unit_of_work, unit_of_work
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
_OFFER = "idempotency_offer"


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


class _Again(Exception):
    """An offer's write wrote nothing: the work runs again, without the offer."""


class Offer:
    """A keyed request's offer to its work: the key's record written by the work's one
    autocommitted statement. The work `take`s it with that write, still to be made, and
    answers as if it were made; the runner then makes it, with the answer's record."""

    __slots__ = ("write",)

    def __init__(self) -> None:
        self.write: Callable[[dict], bool] | None = None

    def take(self, write: Callable[[dict], bool]) -> None:
        """`write(record_params)`: the statement, with `insert_after`'s record; True when
        it wrote (False: its guard refused, nothing written)."""
        self.write = write


def offer() -> Offer | None:
    """The running keyed request's offer, while the work may take it: not taken yet, and
    no transaction begun (what it holds would not commit with the one statement)."""
    if not in_unit_of_work():
        return None
    session = db.session()
    found = session.info.get(_OFFER)
    if found is None or found.write is not None or session.in_transaction():
        return None
    return found


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
    # What the work reports (a redemption, a refusal) is told only if its answer is given.
    outcomes: list[tuple[str, str]] = []
    with observe.holding(outcomes):
        try:
            answer = _run(record, wait_seconds, work, offering=True)
        except _Again:
            outcomes.clear()
            answer = _run(record, wait_seconds, work, offering=False)
    if not answer.replayed:
        observe.tell(outcomes)
    return answer


def _run(record: dict, wait_seconds: float, work: Callable[[], Answer], offering: bool) -> Answer:
    try:
        with unit_of_work() as session:
            response = _work(session, work, record, wait_seconds) if offering else work()
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


def _work(session, work: Callable[[], Answer], record: dict, wait_seconds: float) -> Answer:
    """`work` with the offer made; a taken offer's write is made here, with the answer."""
    offered = session.info[_OFFER] = Offer()
    try:
        response = work()
    finally:
        del session.info[_OFFER]
    if offered.write is None:
        return response
    if response.status >= 300 or session.in_transaction():
        raise _Again()  # nothing of the offered write was made
    try:
        with _waiting_for_the_key():
            written = offered.write(_params(_values(record, response), wait_seconds, "k_"))
    except IntegrityError:
        # The key was taken meanwhile (nothing of ours was written): its answer, if kept,
        # else the work again (it then waits for the key, or takes it over).
        stored = _stored(session, record)
        raise (_Undo(stored) if stored is not None else _Again()) from None
    if not written:
        raise _Again()  # refused by the write's guard: decided again in a transaction
    raise _Undo(response)  # stored; the (empty) unit of work has nothing to commit


def _store(record: dict, response: Answer, wait_seconds: float) -> Answer | None:
    """Insert this answer under the key; returns the answer stored earlier instead, if any."""
    values = _values(record, response)
    session = db.session
    for _ in range(3):
        if _insert(session, values, wait_seconds):
            return None
        existing = _stored(session, record)
        if existing is not None:
            return existing
    raise IdempotencyInProgress()


def _stored(session, record: dict) -> Answer | None:
    """The answer stored under the key, `replayed`; None when there is none (or it was past
    retention, or a claim without an answer left by an older version: removed, to take over)."""
    existing = session.execute(
        select(_RECORDS).where(
            _RECORDS.c.tenant_id == record["tenant_id"],
            _RECORDS.c.caller == record["caller"],
            _RECORDS.c.key == record["key"],
        )
    ).first()
    if existing is None:
        return None  # purged between the two statements
    if existing.created_at < utcnow() - RETENTION or existing.status_code is None:
        session.execute(delete(_RECORDS).where(_RECORDS.c.id == existing.id))
        return None
    if existing.request_hash != record["request_hash"]:
        raise IdempotencyKeyReused()
    return Answer(
        existing.status_code,
        existing.response_body or "",
        existing.response_headers or {},
        replayed=True,
    )


def _values(record: dict, response: Answer) -> dict:
    """The record's columns for this answer."""
    return {
        **record,
        "status_code": response.status,
        "response_body": response.body,
        "response_headers": {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers},
        "created_at": utcnow(),
    }


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


def _record_source(after: CTE | None, prefix: str):
    """The record's row (parameters <prefix><column>), with PostgreSQL's lock_timeout set
    for the rest of the transaction by the row source itself (no extra round trip): it
    bounds the wait for a duplicate in flight. With `after`, one row per row of that CTE,
    the setting made once those rows exist (the work's waits are not the key's)."""
    setting = select(
        func.set_config("lock_timeout", bindparam("lock_timeout"), True).label("lock_timeout")
    )
    if after is not None:
        setting = setting.select_from(after)
    settings = setting.subquery("settings")
    # Referencing the setting makes it evaluated before the row is inserted.
    return select(*typed_params(_RECORDS, _FIELDS, prefix)).where(
        settings.c.lock_timeout.is_not(None)
    )


def insert_after(rows: CTE):
    """The key's record inserted by the work's own statement (PostgreSQL), after `rows`: one
    record per row there (none: nothing stored). No ON CONFLICT: a key taken meanwhile
    fails the whole statement. Parameters: k_<column> and lock_timeout (see `Offer`)."""
    return insert(_RECORDS).from_select(list(_FIELDS), _record_source(rows, "k_"))


@functools.cache
def _insert_statement(dialect: str):
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, built once (PostgreSQL: parameters
    v_<column> and lock_timeout). SQLite serializes writers and never waits here."""
    if dialect != "postgresql":
        return sqlite.insert(_RECORDS).on_conflict_do_nothing().returning(_RECORDS.c.id)
    return (
        postgresql.insert(_RECORDS)
        .from_select(list(_FIELDS), _record_source(None, "v_"))
        .on_conflict_do_nothing()
        .returning(_RECORDS.c.id)
    )


@functools.cache
def _direct_insert() -> Direct:
    """PostgreSQL's insert run on the driver (every keyed request makes one)."""
    return Direct(_insert_statement("postgresql"))


def _params(values: dict, wait_seconds: float, prefix: str) -> dict:
    """A PostgreSQL record statement's parameters."""
    params = {prefix + name: values[name] for name in _FIELDS}
    params["lock_timeout"] = f"{max(int(wait_seconds * 1000), 1)}ms"
    return params


@contextmanager
def _waiting_for_the_key() -> Iterator[None]:
    """A statement that may wait for a duplicate in flight: its lock timeout is the 409."""
    try:
        yield
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise IdempotencyInProgress() from None
        raise


def _insert(session, values: dict, wait_seconds: float) -> bool:
    """Insert the record unless the key is taken; True when this request's row went in."""
    with _waiting_for_the_key():
        if session.get_bind().dialect.name == "postgresql":
            params = _params(values, wait_seconds, "v_")
            return bool(_direct_insert().rows(session.connection(), params))
        return session.execute(_insert_statement("sqlite"), values).first() is not None


def purge_expired(*, batch: int = 1000) -> int:
    """Delete records past their retention, in batches; returns how many went."""
    return delete_in_batches(
        IdempotencyRecord, IdempotencyRecord.created_at < utcnow() - RETENTION, batch=batch
    )
