"""Hot statements on the driver's cursor (app/direct.py) answer what SQLAlchemy answers,
leave pooled connections as they found them, and fail as SQLAlchemy's own errors."""

from __future__ import annotations

import gc
import os
import threading
import time
from datetime import UTC, timedelta

import pytest
from sqlalchemy import Integer, String, bindparam, cast, create_engine, func, literal, select, text
from sqlalchemy.exc import DataError, InvalidRequestError, OperationalError
from sqlalchemy.pool import NullPool

from app.database import read, utcnow
from app.direct import Direct, positional
from app.engine.usage import state


def _params(shop, code: str, customer: str | None, order_id: str | None) -> dict:
    return {
        "tenant_id": shop.id,
        "code_key": code.casefold(),
        "customer": customer,
        "order_id": order_id,
        "order_owner": "",
        "now": utcnow() + timedelta(seconds=1),
    }


@pytest.mark.parametrize("customer, order_id", [(None, None), ("C1", "o-1")])
def test_the_state_read_answers_what_sqlalchemy_answers(db, shop, coupon, customer, order_id):
    code = coupon("DIRECT", valid_until=utcnow() + timedelta(days=1), max_redemptions=5)
    statement = state.state_query(customer is not None, order_id is not None)
    params = _params(shop, code, customer, order_id)
    db.session.remove()  # SQLite: the factories' read transaction would hold its lock
    direct = statement.autocommit_rows(db.engine, params)
    with db.engine.connect() as connection:
        expected = [dict(row) for row in connection.execute(statement.statement, params).mappings()]
    assert [dict(row) for row in direct] == expected
    # Same values of the same types (enum members, not their names; aware datetimes).
    assert [{k: type(v) for k, v in row.items()} for row in direct] == [
        {k: type(v) for k, v in row.items()} for row in expected
    ]
    assert direct[0]["valid_until"].tzinfo is UTC  # the column's own processor ran
    assert state.CouponState(**direct[0]).max_redemptions == 5


def _assert_the_pool_hands_out_transactions(engine) -> None:
    """The pool's own connections are never left in autocommit."""
    pooled = engine.raw_connection()
    try:
        assert pooled.dbapi_connection.autocommit is False
    finally:
        pooled.close()


def test_a_pooled_connection_goes_back_out_of_autocommit(db, backend):
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    Direct(select(literal(1).label("one"))).autocommit_rows(db.engine, {})
    _assert_the_pool_hands_out_transactions(db.engine)


def test_a_refused_statement_raises_sqlalchemys_error(db, backend):
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    with pytest.raises(DataError) as raised:
        Direct(select(cast(literal("x"), Integer).label("n"))).autocommit_rows(db.engine, {})
    assert not raised.value.connection_invalidated


def test_a_connection_killed_under_a_read_is_invalidated_and_the_pool_recovers(db, backend):
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    killer = Direct(select(func.pg_terminate_backend(func.pg_backend_pid()).label("killed")))
    with pytest.raises(OperationalError) as raised:
        read(db.session, killer)  # retried once on a new connection, which dies too
    assert raised.value.connection_invalidated
    assert read(db.session, Direct(select(literal(2).label("two"))))[0]["two"] == 2


def test_a_server_that_cannot_be_reached_is_sqlalchemys_operational_error():
    # The pool's own connect (no server on port 1): answered 503 by the app, never 500.
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with pytest.raises(OperationalError):
        Direct(select(literal(1).label("one"))).autocommit_rows(engine, {})
    engine.dispose()


def test_a_killed_connection_marks_the_pools_older_connections_too(db, backend):
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    killer = Direct(select(func.pg_terminate_backend(func.pg_backend_pid()).label("killed")))
    before = db.engine.pool._invalidate_time
    with pytest.raises(OperationalError):
        killer.autocommit_rows(db.engine, {})
    assert db.engine.pool._invalidate_time > before  # as SQLAlchemy's own path does
    with db.engine.connect() as connection:
        with pytest.raises(OperationalError) as raised:
            killer.rows(connection, {})  # inside a transaction
        assert raised.value.connection_invalidated and connection.invalidated


def test_a_parameter_not_given_is_refused_not_bound_as_null(db, backend):
    statement = Direct(select(literal(1).label("one")).where(bindparam("limit") > 0))
    with pytest.raises(InvalidRequestError, match="limit"):
        statement.compiled(db.engine.dialect).parameters({})
    assert statement.autocommit_rows(db.engine, {"limit": 1}) == [{"one": 1}]


def test_a_failed_statement_hides_its_parameters_as_the_engine_does(db, backend):
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    secret = "jane.doe@example.com"  # 20 characters: the statement divides by zero
    email = bindparam("email", type_=String)
    statement = Direct(select((literal(1) / (func.length(email) - 20)).label("n")))
    with pytest.raises(DataError) as raised:
        statement.autocommit_rows(db.engine, {"email": secret})
    assert secret not in str(raised.value) and "parameters hidden" in str(raised.value)


def test_placeholders_become_positional_once_per_name():
    sql = "SELECT %(a)s, %(b)s, %(a)s WHERE x LIKE 'p%%' AND y = %(c_1)s"
    assert positional(sql) == (b"SELECT $1, $2, $1 WHERE x LIKE 'p%' AND y = $3", ("a", "b", "c_1"))


def test_a_long_statement_with_many_repeated_parameters_answers_as_sqlalchemy(db, backend):
    """Past psycopg's 4 KB / 50 parameters its own conversion is skipped: the positional
    SQL must bind every name, repeated ones included, and keep a literal percent sign."""
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    parts = [cast(bindparam(f"p{i}", type_=Integer), Integer) + bindparam("p0") for i in range(60)]
    statement = select(
        func.concat(*[cast(p, String) for p in parts]).label("joined"),
        literal("100%").label("percent"),
    ).where(cast(bindparam("p0"), String).like("%" + "0" * 4200 + "%%") | literal(True))
    params = {f"p{i}": i for i in range(60)}
    direct = Direct(statement).autocommit_rows(db.engine, params)
    with db.engine.connect() as connection:
        expected = [dict(row) for row in connection.execute(statement, params).mappings()]
    assert direct == expected
    assert direct[0]["joined"] == "".join(str(i) for i in range(60))


def test_a_parameter_named_with_any_character_is_bound(db, backend):
    """SQLAlchemy leaves names like `a-b` as they are; psycopg read any name up to the
    parenthesis, and so must the positional conversion."""
    assert positional("SELECT %(a-b)s, %(a$b)s, %(a-b)s") == (b"SELECT $1, $2, $1", ("a-b", "a$b"))
    if backend != "postgresql":
        return
    statement = select(bindparam("a-b", type_=Integer).label("v"))
    assert Direct(statement).autocommit_rows(db.engine, {"a-b": 7}) == [{"v": 7}]


def _backend(engine) -> int:
    return Direct(select(func.pg_backend_pid().label("pid"))).autocommit_rows(engine, {})[0]["pid"]


def test_a_thread_keeps_its_autocommit_connection(db, backend):
    """No checkout, checkin or autocommit switch per statement: the same backend answers."""
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    assert _backend(db.engine) == _backend(db.engine)
    _assert_the_pool_hands_out_transactions(db.engine)


def test_a_kept_connection_the_server_ended_is_replaced_before_use(db, backend):
    """As after a restart: the idle connection was ended; the next statement runs on a new
    one instead of failing."""
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    first = _backend(db.engine)
    with db.engine.connect() as other:
        other.execute(select(func.pg_terminate_backend(first)))
    gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
    for _ in range(100):  # the backend ends a moment after it is told to
        with db.engine.connect() as other:
            if other.execute(gone, {"pid": first}).scalar():
                break
        time.sleep(0.05)
    assert _backend(db.engine) != first


def test_disposing_the_engine_closes_the_kept_connections(db, backend):
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    engine = create_engine(db.engine.url)
    kept = _backend(engine)
    engine.dispose()
    with db.engine.connect() as other:
        alive = other.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": kept}
        ).scalar()
    assert alive == 0


def test_a_threads_kept_connection_goes_back_to_the_pool_when_the_thread_ends(db, backend):
    """Threads that come and go (a server with a thread per request) must not drain the
    pool: each one's kept connection returns, out of autocommit."""
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    _backend(db.engine)  # this thread's own, kept for the test's length
    before = db.engine.pool.checkedout()
    for _ in range(3):
        threads = [threading.Thread(target=_backend, args=(db.engine,)) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    gc.collect()
    assert db.engine.pool.checkedout() == before
    _assert_the_pool_hands_out_transactions(db.engine)


def test_a_forked_child_leaves_its_parents_kept_connection_alone(db, backend):
    """The child shares the parent's socket: it must neither check that connection into
    its pool (where a transaction would run on it in autocommit) nor close it."""
    if backend != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    engine = create_engine(db.engine.url, poolclass=NullPool)  # a checkin closes
    try:
        parent = _backend(engine)
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through its exit code
            try:
                mine = _backend(engine)
                gc.collect()
                os._exit(0 if mine != parent else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _backend(engine) == parent  # still open: the child did not end it
    finally:
        engine.dispose()
