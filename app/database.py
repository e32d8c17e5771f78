"""Declarative base, column types and helpers shared by every model."""

from __future__ import annotations

import functools
import select
import time
import weakref
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    Numeric,
    Row,
    bindparam,
    cast,
    event,
    func,
    inspect,
)
from sqlalchemy import select as sql_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, registry, scoped_session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from app.direct import Direct

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# CLOCK_OFFSET_SECONDS moves the service's clock (tests and sandboxes: "an hour from now"
# without waiting). Every rule, hold and default timestamp reads the time here.
_clock_offset = timedelta(0)


def set_clock_offset(seconds: float) -> None:
    global _clock_offset
    _clock_offset = timedelta(seconds=seconds)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (moved by CLOCK_OFFSET_SECONDS, if set)."""
    return datetime.now(UTC) + _clock_offset


def wall_clock() -> datetime:
    """The real time, never moved: for credentials other parties check (JWT iat and exp)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Enough for any ISO 4217 amount (up to 3 minor digits) with room for rates.
MoneyColumn = Numeric(18, 4)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime(), Decimal: MoneyColumn, dict: JSON, list: JSON},
    )


@functools.cache
def _insert_or_ignore(dialect_name: str, model: type) -> Insert:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


def insert_or_ignore(session: Session, model: type) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` in the session's dialect (PostgreSQL or SQLite),
    built once: execute it with the row as parameters (values written into a statement
    make it a new one to key and compile, per request).

    On PostgreSQL a conflicting insert waits for the transaction that holds the
    other row, so it doubles as a lock: it returns nothing once that one commits
    and inserts once that one rolls back.
    """
    return _insert_or_ignore(session.get_bind().dialect.name, model)


def column_values(instance) -> dict:
    """The values an ORM object holds, keyed by its table's column keys (for a Core
    insert; the columns it does not hold take their defaults there)."""
    state = inspect(instance)
    return {
        prop.columns[0].key: state.dict[prop.key]
        for prop in state.mapper.column_attrs
        if prop.key in state.dict
    }


def every_column(table, held: dict, *, without: tuple[str, ...] = ("id",)) -> dict:
    """A row naming every column of `table` but `without`: the values `held` has, each other
    column's own default (None where it has none), for a statement built once that names
    them all (the columns an ORM object holds vary with what was set on it)."""
    row = {}
    for column in table.columns:
        if column.key in without:
            continue
        default = column.default
        if column.key in held:
            row[column.key] = held[column.key]
        elif default is None:
            row[column.key] = None
        elif default.is_callable:
            row[column.key] = default.arg(None)
        elif default.is_scalar:
            row[column.key] = default.arg
        else:
            raise ValueError(f"{table.name}.{column.key}: a default only the database knows")
    return row


def typed_params(table, names, prefix: str) -> list:
    """Named parameters `prefix + column`, cast to the columns' types, for a statement built
    once. `INSERT ... SELECT` needs the casts: PostgreSQL would read an untyped NULL as text."""
    return [
        cast(bindparam(prefix + name, type_=table.c[name].type), table.c[name].type)
        for name in names
    ]


# --- hot-path reads and connection liveness ---------------------------------------------


def is_disconnect(error: DBAPIError) -> bool:
    """True when the error is a dropped connection (SQLAlchemy invalidated it)."""
    return bool(getattr(error, "connection_invalidated", False))


# A primary engine's read replica (DATABASE_READ_URL), per app: see `read(replica=True)`.
_REPLICAS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
# A replica that failed is left alone this long (its reads go to the primary), so a dead
# replica costs one request its connect timeout, not every request.
REPLICA_PAUSE_SECONDS = 30.0
_PAUSED_UNTIL: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def engine_of(session: Session | scoped_session) -> Engine:
    """The session's engine, without making a session to ask (building and closing one
    per request cost a validation 2% of its CPU): Flask-SQLAlchemy's bind its `db`'s."""
    if isinstance(session, scoped_session) and not session.registry.has():
        return session.session_factory.kw["db"].engine
    return session.get_bind()


def add_replica(primary: Engine, replica: Engine) -> None:
    """Reads that may be stale (`read(..., replica=True)`) on `primary` go to `replica`."""
    _REPLICAS[primary] = replica


def standby_of(engine: Engine) -> Engine | None:
    """The engine's read replica, unless there is none or it is paused after a failure."""
    standby = _REPLICAS.get(engine)
    if standby is None or _PAUSED_UNTIL.get(standby, 0.0) > time.monotonic():
        return None
    return standby


def replica_failed(standby: Engine, error: DBAPIError) -> bool:
    """Whether `error` says the replica is unreachable (then it is paused: its reads go to
    the primary for REPLICA_PAUSE_SECONDS); False for any other error."""
    if not (is_disconnect(error) or isinstance(error, OperationalError)):
        return False
    _PAUSED_UNTIL[standby] = time.monotonic() + REPLICA_PAUSE_SECONDS
    return True


def read(
    session: Session | scoped_session,
    statement: Executable | Direct,
    params: dict | None = None,
    *,
    replica: bool = False,
) -> list[Row]:
    """Rows of a read-only statement in one round trip.

    Inside an open transaction the statement joins it. Otherwise it runs on a
    pooled connection in autocommit mode: no BEGIN, no ROLLBACK, the connection
    back in the pool at once. A connection found dead is replaced and the read
    retried once, so a database restart costs no failed request once it is back.
    A `Direct` statement answers mappings, run on the driver's cursor (see app/direct.py).
    `replica`: the caller can take a slightly stale answer (it decides nothing that
    is written), so the read goes to the read replica when there is one.
    """
    if isinstance(session, scoped_session):
        if not session.registry.has():  # no session yet, so no transaction
            return _read_outside(engine_of(session), statement, params, replica)
        session = session()
    if session.in_transaction():
        if isinstance(statement, Direct):
            return statement.rows(session.connection(), params or {})
        return session.execute(statement, params).all()
    return _read_outside(session.get_bind(), statement, params, replica)


def _read_outside(
    engine: Engine, statement: Executable | Direct, params: dict | None, replica: bool
) -> list[Row]:
    """`read` outside a transaction: autocommitted, on the replica if asked and there is one."""
    standby = standby_of(engine) if replica else None
    if standby is not None:
        try:
            return _autocommit_read(standby, statement, params)
        except DBAPIError as error:
            if not replica_failed(standby, error):
                raise
    try:
        return _autocommit_read(engine, statement, params)
    except DBAPIError as error:
        if not is_disconnect(error):
            raise
    return _autocommit_read(engine, statement, params)


def _autocommit_read(
    engine: Engine, statement: Executable | Direct, params: dict | None
) -> list[Row]:
    if isinstance(statement, Direct):
        return statement.autocommit_rows(engine, params or {})
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection.execute(statement, params).all()


def install_liveness_check(engine: Engine) -> None:
    """Discard a pooled PostgreSQL connection the server has closed, without a round trip.

    An idle connection receives nothing unless the server is ending it (restart,
    failover, idle timeout): if its socket is readable at checkout, the pool drops
    it and hands out another. This replaces `pool_pre_ping`'s `SELECT 1` per checkout.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection, _record, _proxy):
        try:
            readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            readable = True
        if readable or dbapi_connection.closed:
            raise DisconnectionError("connection closed by the server")


def paged(session: Session, query, page: int, page_size: int | None) -> tuple[list, int]:
    """One page of an ordered query (every row when `page_size` is None), and how many
    rows the whole query has."""
    total = session.scalar(sql_select(func.count()).select_from(query.order_by(None).subquery()))
    if page_size is not None:
        query = query.offset((page - 1) * page_size).limit(page_size)
    return list(session.scalars(query).all()), total or 0
