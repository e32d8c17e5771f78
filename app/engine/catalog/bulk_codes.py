"""Many codes into the `codes` registry at once.

Fast path (PostgreSQL): COPY straight into `codes` inside a savepoint; the
primary key refuses the whole batch if one code is taken. Safe path (a batch
that collided, and SQLite): candidates go to a per-connection temporary table,
then one `INSERT ... SELECT` copies those whose code is free, skipping taken
codes by an anti-join and by `ON CONFLICT DO NOTHING` (a code taken by a
concurrent transaction). The primary key guarantees uniqueness either way;
this module only makes respecting it cheap.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from functools import cache

import psycopg
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, bindparam, exists
from sqlalchemy import select as sql_select
from sqlalchemy.dialects import postgresql, sqlite

from app.engine.canonical import code_key
from app.models import Code

STAGING = Table(
    "code_staging",
    MetaData(),
    Column("line", Integer),
    Column("code", String),
    Column("code_key", String),
)
_CREATE_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS code_staging (line INTEGER, code TEXT, code_key TEXT)"
)
_COPY_CHUNK = 1 << 20


def _copy(connection: Connection, statement: str, lines: Iterable[str]) -> None:
    """Send text-format lines to a COPY ... FROM STDIN, a megabyte at a time."""
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            if buffer.tell() > _COPY_CHUNK:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def copy_codes(
    connection: Connection, tenant_id: int, campaign_id: int, first: int, codes: Sequence[str]
) -> bool:
    """COPY these codes (distinct keys) as positions first, first+1, ...; False, with
    nothing written, when one of them is taken. PostgreSQL only."""
    # Codes are letters, digits, '_', '.', '-': nothing to escape in COPY's text format.
    lines = (
        f"{tenant_id}\t{code_key(code)}\t{code}\t{campaign_id}\t{position}\n"
        for position, code in enumerate(codes, first)
    )
    try:
        with connection.begin_nested():
            _copy(
                connection,
                "COPY codes (tenant_id, code_key, code, campaign_id, position) FROM STDIN",
                lines,
            )
    except psycopg.errors.UniqueViolation:
        return False
    return True


def stage(connection: Connection, candidates: Iterable[tuple[int, str, str]]) -> None:
    """Replace the staged candidates with these (line, code, code_key) rows."""
    connection.exec_driver_sql(_CREATE_STAGING)
    connection.exec_driver_sql("DELETE FROM code_staging")
    if connection.dialect.name == "postgresql":
        lines = (f"{line}\t{code}\t{key}\n" for line, code, key in candidates)
        _copy(connection, "COPY code_staging FROM STDIN", lines)
    else:
        rows = [{"line": line, "code": code, "code_key": key} for line, code, key in candidates]
        if rows:
            connection.execute(STAGING.insert(), rows)


def insert_staged(
    connection: Connection, tenant_id: int, campaign_id: int, base: int, limit: int | None
) -> list[str]:
    """Register up to `limit` free staged codes (all if None) for the campaign, in line
    order, as positions base + line; returns the keys registered."""
    params = {
        "tenant": tenant_id,
        "campaign": campaign_id,
        "base": base,
        "limit": limit if limit is not None else 2**31 - 1,
    }
    if connection.dialect.name == "postgresql":
        # The ORDER BY ... LIMIT sorts a batch of candidates: in memory, not on disk.
        connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    return list(connection.execute(_insert_statement(connection.dialect.name), params).scalars())


@cache
def _insert_statement(dialect: str):
    table = Code.__table__
    taken = exists().where(
        table.c.tenant_id == bindparam("tenant"), table.c.code_key == STAGING.c.code_key
    )
    source = (
        sql_select(
            bindparam("tenant", type_=Integer),
            STAGING.c.code_key,
            STAGING.c.code,
            bindparam("campaign", type_=Integer),
            bindparam("base", type_=Integer) + STAGING.c.line,
        )
        .where(~taken)
        .order_by(STAGING.c.line)
        .limit(bindparam("limit"))
    )
    return (
        (postgresql if dialect == "postgresql" else sqlite)
        .insert(table)
        .from_select(["tenant_id", "code_key", "code", "campaign_id", "position"], source)
        .on_conflict_do_nothing(index_elements=["tenant_id", "code_key"])
        .returning(table.c.code_key)
    )
