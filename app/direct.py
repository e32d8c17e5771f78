"""Hot statements run on the driver's own cursor (PostgreSQL).

A worker's profile under load put SQLAlchemy's per-call execution path (the
Connection and execution-context objects, parameter and result set-up, events)
at about a quarter of a validation's CPU: three times what psycopg itself spent
on the statement. A `Direct` statement is compiled once per dialect, as the
compiled cache would, and each call is then one `cursor.execute` of that same
SQL with the same processed parameters: the column types' processors run,
nothing else does. Other databases (SQLite in tests) take SQLAlchemy's ordinary
path with the same statement.

The SQL is sent with PostgreSQL's own placeholders ($1, $2...) through a raw
cursor: psycopg re-parses a `%(name)s` query on every call once it is longer than
4 KB or has more than 50 parameters (a keyed redemption's statement is both), a
third of that statement's CPU in the driver.

Autocommitted statements run on a connection each thread keeps while it lives
(`_Kept`): checking one out of the pool and back in, and switching it into autocommit
and out, for every statement was 8% of a redemption's CPU in a worker under load.

A database error leaves here as SQLAlchemy's own (`DBAPIError` and its kinds),
with the connection invalidated when the server is gone, as SQLAlchemy does it.
"""

from __future__ import annotations

import os
import re
import select
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, Row, event
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.sql.base import Executable

# Called with (dbapi_connection, sql) before each statement: what counts round trips
# (tests) listens here, as it listens to SQLAlchemy's before_cursor_execute.
TRACERS: list[Callable[[Any, str], None]] = []
# A named parameter (any name up to the parenthesis, as psycopg reads it), or an escaped
# percent sign, in SQL compiled for the psycopg dialect.
_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s|%%")


def positional(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """`sql` with $n placeholders (one per name, however often it appears), and the names
    in their order."""
    order: dict[str, int] = {}

    def number(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in order:
            order[name] = len(order) + 1
        return f"${order[name]}"

    return _PLACEHOLDER.sub(number, sql).encode(), tuple(order)


class _Compiled:
    """One statement compiled for one dialect, with its processors."""

    __slots__ = (
        "binds",
        "defaults",
        "entries",
        "keys",
        "names",
        "raw",
        "required",
        "results",
        "sql",
    )

    def __init__(self, statement: Executable, dialect: Dialect):
        compiled = statement.compile(dialect=dialect)
        if (
            compiled.post_compile_params
            or compiled.literal_execute_params
            or compiled.escaped_bind_names
        ):
            raise ValueError("a direct statement takes no expanding or escaped parameters")
        # Parameters with no value of their own: a call must give each (as SQLAlchemy
        # refuses a call without one, instead of binding NULL).
        self.required = frozenset(
            name for bind, name in compiled.bind_names.items() if bind.required
        )
        self.sql: str = compiled.string
        self.raw, self.names = positional(self.sql) if dialect.name == "postgresql" else (b"", ())
        self.defaults: dict = compiled.construct_params(_check=False)
        self.binds = tuple(compiled._bind_processors.items())
        self.entries = tuple(compiled._result_columns)
        self.keys = tuple(entry.keyname for entry in self.entries)
        self.results: tuple | None = None  # known once a row description is seen

    def parameters(self, given: dict) -> list:
        """The values in placeholder order, processed as their types say."""
        missing = self.required.difference(given)
        if missing:
            raise InvalidRequestError(f"A value is required for {', '.join(sorted(missing))}")
        values = {**self.defaults, **given}
        for name, process in self.binds:
            values[name] = process(values[name])
        return [values[name] for name in self.names]

    def processors(self, description, dialect: Dialect) -> tuple:
        if self.results is None:
            self.results = tuple(
                entry.type._cached_result_processor(dialect, column.type_code)
                for entry, column in zip(self.entries, description, strict=True)
            )
        return self.results


class Direct:
    """A statement that returns rows, run on the driver's cursor where the dialect allows."""

    def __init__(self, statement: Executable):
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return found

    def rows(self, connection: Connection, params: dict) -> Sequence[Row] | list[dict]:
        """Rows as mappings (`row["name"]`), on the connection's open transaction."""
        dialect = connection.dialect
        if dialect.name != "postgresql":
            return [row._mapping for row in connection.execute(self.statement, params)]
        engine = connection.engine
        try:
            return self._run(connection.connection.dbapi_connection, engine, params)
        except DBAPIError as error:
            if error.connection_invalidated:
                # As SQLAlchemy does: the pool's older connections are suspect too.
                engine.pool._invalidate(connection.connection, error.orig, _checkin=False)
                connection.invalidate(error.orig)
            raise

    def autocommit_rows(self, engine: Engine, params: dict) -> list[dict]:
        """Rows as mappings, in autocommit mode (one round trip: no BEGIN, no ROLLBACK), on
        the connection this thread keeps for that (see `_Kept`)."""
        if engine.dialect.name != "postgresql":
            with engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                return [row._mapping for row in connection.execute(self.statement, params)]
        kept = _Kept.of(engine)
        pooled = kept.connection()
        try:
            return self._run(pooled.dbapi_connection, engine, params)
        except DBAPIError as error:
            if error.connection_invalidated:
                kept.forget()
                engine.pool._invalidate(pooled, error.orig)  # older ones too, and this one
            raise

    def _run(self, driver, engine: Engine, params: dict) -> list[dict]:
        dialect = engine.dialect
        compiled = self.compiled(dialect)
        values = compiled.parameters(params)
        for tracer in TRACERS:
            tracer(driver, compiled.sql)
        try:
            with psycopg.RawCursor(driver) as cursor:
                cursor.execute(compiled.raw, values)
                # psycopg builds the description anew on each access: read it once only.
                processors = compiled.results or compiled.processors(cursor.description, dialect)
                keys = compiled.keys
                return [
                    dict(
                        zip(
                            keys,
                            [
                                value if process is None else process(value)
                                for process, value in zip(processors, row, strict=True)
                            ],
                            strict=True,
                        )
                    )
                    for row in cursor.fetchall()
                ]
        except psycopg.Error as error:
            raise _wrapped(error, compiled.sql, values, engine, driver) from error


class _Holder:
    """One thread's kept connection to one engine."""

    __slots__ = ("__weakref__", "finalizer", "pid", "pooled", "since")


# Connections a forked child inherited from its parent: never used, returned or closed
# (returning one would hand the parent's session to the child's pool; closing it would
# end the parent's), only kept referenced so that nothing checks them in.
_INHERITED: list = []


def _give_back(pooled, pid: int) -> None:
    """A kept connection whose thread ended: back to the pool, out of autocommit."""
    if pid != os.getpid():
        _INHERITED.append(pooled)
        return
    driver = pooled.dbapi_connection
    if driver is None:
        return  # invalidated already
    try:
        if driver.closed:
            raise psycopg.OperationalError("the connection is closed")
        driver.autocommit = False
    except psycopg.Error:
        pooled.invalidate()  # never back in the pool in autocommit
        return
    pooled.close()


class _Kept:
    """A thread's connection for autocommitted statements on one engine: checked out of the
    pool once, switched into autocommit once, and kept while the thread lives (then it
    goes back to the pool). Before each use it is checked as the pool checks a
    connection at checkout (an idle connection's socket turns readable only when the
    server ends it): a dead one, or one older than the pool's recycle age, is
    invalidated and another checked out. A forked child leaves its parent's alone.
    Disposing of the engine closes them all.

    A sync gunicorn worker so holds two connections at most: this one and, for a
    transaction, the session's."""

    _local = threading.local()
    _engines: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[_Holder]] = (
        weakref.WeakKeyDictionary()
    )
    _lock = threading.Lock()

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def of(cls, engine: Engine) -> _Kept:
        if engine not in cls._engines:
            with cls._lock:
                if engine not in cls._engines:
                    cls._engines[engine] = weakref.WeakSet()
                    event.listen(engine, "engine_disposed", cls._close_all)
        return cls(engine)

    def _holders(self) -> weakref.WeakKeyDictionary[Engine, _Holder]:
        holders = getattr(self._local, "holders", None)
        if holders is None:
            holders = self._local.holders = weakref.WeakKeyDictionary()
        return holders

    def connection(self):
        holder = self._holders().get(self.engine)
        if holder is not None:
            recycle = self.engine.pool._recycle  # the pool's pool_recycle, -1 for none
            fresh = recycle < 0 or time.monotonic() - holder.since < recycle
            driver = holder.pooled.dbapi_connection
            if holder.pid == os.getpid() and fresh and _alive(driver):
                return holder.pooled
            _invalidate(self.forget())  # ended by the server, or as old as the pool recycles
        try:
            pooled = self.engine.raw_connection()
        except psycopg.Error as error:  # the pool's connect: SQLAlchemy's engine would wrap it
            raise _wrapped(error, None, None, self.engine, None) from error
        driver = pooled.dbapi_connection
        try:
            driver.autocommit = True
        except psycopg.Error as error:
            pooled.invalidate()
            raise _wrapped(error, None, None, self.engine, driver) from error
        holder = _Holder()
        holder.pid, holder.since, holder.pooled = os.getpid(), time.monotonic(), pooled
        holder.finalizer = weakref.finalize(holder, _give_back, pooled, holder.pid)
        holder.finalizer.atexit = False
        self._holders()[self.engine] = holder
        with self._lock:
            self._engines[self.engine].add(holder)
        return pooled

    def forget(self):
        """Stop keeping this thread's connection; returns it for the caller to invalidate
        (None when there is none, or it is an inherited one, never to be touched)."""
        holder = self._holders().pop(self.engine, None)
        return None if holder is None else _let_go(holder)

    @classmethod
    def _close_all(cls, engine: Engine) -> None:
        # Never back in a pool in autocommit: closed (they were the disposed pool's).
        with cls._lock:
            holders = list(cls._engines.get(engine, ()))
        for holder in holders:
            _invalidate(_let_go(holder))


def _let_go(holder: _Holder):
    """Stop keeping a holder's connection: it, for the caller to invalidate; None when it
    was let go already (given back, or closed) or is a forked parent's (kept referenced)."""
    if holder.finalizer.detach() is None:
        return None
    if holder.pid != os.getpid():
        _INHERITED.append(holder.pooled)
        return None
    return holder.pooled


def _invalidate(pooled) -> None:
    """Close a connection let go of, unless there is none or it is closed already."""
    if pooled is not None and pooled.dbapi_connection is not None:
        pooled.invalidate()


def _alive(driver) -> bool:
    """Whether a kept connection is still open: the server has sent it nothing (it sends an
    idle connection something only to end it)."""
    if driver is None or driver.closed:
        return False
    try:
        readable, _, _ = select.select([driver.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _wrapped(error: psycopg.Error, sql, values, engine: Engine, driver) -> DBAPIError:
    """The driver's error as SQLAlchemy's own, parameters hidden as the engine hides them."""
    return DBAPIError.instance(
        sql,
        values,
        error,
        psycopg.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=engine.dialect.is_disconnect(error, driver, None),
        dialect=engine.dialect,
    )
