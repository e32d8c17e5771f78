"""DATABASE_READ_URL: which reads go to the replica (the rest of the proof, with a real
streaming replica whose replay is paused, is tests/system/test_replica.py)."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from app import database
from app.extensions import db


def test_only_reads_that_may_be_stale_go_to_the_replica(app, tmp_path):
    replica = create_engine(f"sqlite:///{tmp_path}/replica.db")
    with replica.begin() as connection:
        connection.execute(text("CREATE TABLE marker (side TEXT)"))
        connection.execute(text("INSERT INTO marker VALUES ('replica')"))
    marker = text("SELECT side FROM marker")
    database.add_replica(db.engine, replica)
    try:
        assert [tuple(r) for r in database.read(db.session, marker, replica=True)] == [("replica",)]
        with pytest.raises(DBAPIError):  # the primary has no such table
            database.read(db.session, marker)
    finally:
        del database._REPLICAS[db.engine]
        replica.dispose()


def test_a_dead_replica_is_left_alone_and_the_primary_answers(app, tmp_path):
    dead = create_engine(f"sqlite:///{tmp_path}/no/such/dir/replica.db")
    database.add_replica(db.engine, dead)
    one = text("SELECT 1")
    try:
        assert [tuple(r) for r in database.read(db.session, one, replica=True)] == [(1,)]
        assert database._PAUSED_UNTIL[dead] > 0  # not asked again for a while
    finally:
        del database._REPLICAS[db.engine]
        dead.dispose()
