"""Migrations build the schema from nothing and agree with the models."""

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect

from app import create_app
from app.extensions import db
from tests.conftest import BASE_CONFIG, PG_URL
from tests.support import ROOT, new_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    """An empty database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set")
    with new_postgres_database(PG_URL, "coupon_migr") as url:
        yield url


def test_flask_db_upgrade_command_builds_schema(fresh_url):
    env = {**os.environ, "DATABASE_URL": fresh_url, "APP_ENV": "testing"}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    engine = create_engine(fresh_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"tenants", "clients", "alembic_version"} <= tables


def test_models_and_migrations_agree(fresh_url):
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": fresh_url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        assert diff == []
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
