"""Units of work: every service call is one transaction, and calls compose.

The outermost `unit_of_work()` commits when its block ends and rolls back when
it raises. An inner one joins the transaction already open, so a caller (a
service calling another, or the Idempotency-Key runner storing its answer with
the work) makes several calls commit together or not at all. Code that expects
an IntegrityError and recovers from it wraps the statement in
`db.session.begin_nested()`, so the failure undoes only that savepoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from sqlalchemy import delete, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.database import engine_of, replica_failed, standby_of
from app.extensions import db

T = TypeVar("T")

# What a database failure raises: SQLAlchemy's errors, and psycopg's own (COPY runs on the
# driver's cursor).
DATABASE_ERRORS = (SQLAlchemyError, psycopg.Error)
# The ones that say "not now" (connection lost, server restarting), not "not this":
# a job retries those after its lease; the others are the job's own data.
OUTAGE_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)

_DEPTH = "unit_of_work_depth"
_REPLICA_SESSION = "replica_session"


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: commit at the end of the outermost block, roll back on error."""
    session = db.session()
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info[_DEPTH] = depth


def in_unit_of_work() -> bool:
    """True inside a `unit_of_work()` block (none before this request's session exists)."""
    return db.session.registry.has() and db.session().info.get(_DEPTH, 0) > 0


def stale_reads(reading: Callable[[Session], T]) -> T:
    """`reading(session)` on a session of the read replica (DATABASE_READ_URL) when there is
    one: for reads that may be a little stale because they decide nothing that is written
    (lists, qualifications). The primary's session when there is no replica, it is paused,
    or a unit of work is open (its own writes must be seen). A replica that cannot be
    reached is paused, and `reading` runs again on the primary.

    The replica's session lives until the request ends, as the primary's does, so what
    it loaded can still be read while the answer is rendered."""
    standby = None if in_unit_of_work() else standby_of(engine_of(db.session))
    if standby is None:
        return reading(db.session())
    info = db.session().info
    replica = info.get(_REPLICA_SESSION)
    if replica is None or replica.get_bind() is not standby:
        replica = info[_REPLICA_SESSION] = Session(bind=standby)
    try:
        return reading(replica)
    except DBAPIError as error:
        if not replica_failed(standby, error):
            raise
        replica.close()
    return reading(db.session())


def discard_session() -> None:
    """Close and forget the session, even when its connection died under it.

    Closing rolls back on the connection; after a database restart that raises,
    though the connection is already invalidated and will not be reused. Said at
    the end of every app context (instead of letting the error escape the app,
    where gunicorn answers 500) and by the worker after a database error.
    """
    if db.session.registry.has():
        replica = db.session().info.pop(_REPLICA_SESSION, None)
        if replica is not None:
            try:
                replica.close()
            except SQLAlchemyError:
                pass  # its connection is gone: nothing of it is reused
    try:
        db.session.remove()
    except SQLAlchemyError:
        db.session.registry.clear()


def end_read(*keep: object) -> None:
    """End a read-only transaction now (SQLite holds its lock until then).

    Inside a unit of work the transaction is the unit's and stays open. Objects
    in `keep` stay usable afterwards, detached with the values they had.
    """
    if in_unit_of_work():
        return
    session = db.session()
    for instance in keep:
        session.expunge(instance)
    session.rollback()


def delete_in_batches(model, *conditions, batch: int = 1000) -> int:
    """Delete the rows of `model` matching `conditions`, `batch` rows per transaction (so
    housekeeping never holds long locks); returns how many went."""
    removed = 0
    while True:
        with unit_of_work():
            ids = db.session.scalars(select(model.id).where(*conditions).limit(batch)).all()
            if ids:
                db.session.execute(delete(model).where(model.id.in_(ids)))
        if not ids:
            return removed
        removed += len(ids)
