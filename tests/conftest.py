"""Fixtures: `app`, `client`, `db`, `runner` on SQLite and, with TEST_DATABASE_URL, PostgreSQL.

The schema is built once per backend by the real migrations; every test then
runs against emptied tables.
"""

from __future__ import annotations

import os

import pytest
from flask.globals import _cv_app
from flask.testing import FlaskClient
from flask_migrate import upgrade
from hypothesis import settings
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db as _db

# Properties are proven by their examples, not timed: on a shared 2-core machine an
# example can take longer than Hypothesis's 200 ms deadline, which fails a sound property.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

BASE_CONFIG = {
    "APP_ENV": "testing",
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    "RATELIMIT_ENABLED": False,
    # Somewhere events could go (nothing delivers in these tests), so they are written.
    "EVENTS_URL": "http://127.0.0.1:9/events",
    "LOG_LEVEL": "WARNING",
}


def pytest_terminal_summary(terminalreporter):
    """The fuzzer's figures, when it ran."""
    import sys

    fuzz = sys.modules.get("tests.api.test_fuzz")
    line = fuzz.summary() if fuzz else None
    if line:
        terminalreporter.write_line(line)


def pytest_report_header(config):
    return f"databases: {', '.join(BACKENDS)}" + ("" if PG_URL else " (set TEST_DATABASE_URL)")


def reset_postgres_schema(url: str) -> None:
    """Empty the public schema so the migrations start from nothing."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    """A migrated database per backend, shared by the session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    else:
        url = PG_URL
        reset_postgres_schema(url)
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    return url


def _empty_tables() -> None:
    tables = [t for t in reversed(_db.metadata.sorted_tables)]
    if _db.engine.dialect.name == "postgresql":
        names = ", ".join(t.name for t in tables)
        _db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            _db.session.execute(table.delete())
    _db.session.commit()


class RequestInItsOwnContext(FlaskClient):
    """A test client whose every request runs in an app context of its own, as under a
    server, though the test itself holds one (to read the database between requests).

    The test's session is ended first, so the request sees what was committed and no
    transaction of the test's waits on the request's (SQLite locks the whole file).
    """

    def open(self, *args, **kwargs):
        # A streamed answer is read to the end within the request, unless a test asks for
        # it unbuffered (and then closes it: its context lives until then).
        kwargs.setdefault("buffered", True)
        _db.session.remove()
        outer = _cv_app.set(None)  # the request pushes its own app context
        try:
            response = super().open(*args, **kwargs)
        except BaseException:
            _cv_app.reset(outer)
            raise
        if _cv_app.get(None) is None:
            _cv_app.reset(outer)
        else:  # a stream_with_context answer keeps its context until it is read and closed
            response.call_on_close(lambda: _cv_app.reset(outer))
        return response


@pytest.fixture
def app(database_url):
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    app.test_client_class = RequestInItsOwnContext
    with app.app_context():
        yield app
        _db.session.rollback()
        _db.session.remove()
        _empty_tables()
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def backend(database_url) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def tenant(app):
    """A tenant `acme` with its secrets."""
    from app.engine.tenants import create_tenant

    return create_tenant(slug="acme", api_token="acme-api-token-1", currency="USD")
