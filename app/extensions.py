"""Extension singletons, bound to the app in create_app."""

from __future__ import annotations

import sqlite3

from flask import request
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.database import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
api = Api()
# No generic "default" error: each operation documents its statuses in its dialect's shape.
api.DEFAULT_ERROR_RESPONSE_NAME = None


# Flask-Limiter provides the counters' storage and strategy; the budgets themselves
# (who is charged what, on which routes) are app/ratelimits.py. No decorator limits
# and no headers of its own: Retry-After is sent with a 429, never with a 200.
limiter = Limiter(key_func=lambda: request.remote_addr or "unknown", headers_enabled=False)


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, _record):
    """SQLite: enforce foreign keys, wait for locks, and let us issue BEGIN ourselves."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction
    # (redemption limits) is serialized instead of failing on lock upgrade.
    if (
        connection.dialect.name == "sqlite"
        and connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
    ):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
