"""Migrations build the schema from nothing and agree with the models."""

import os
import re
import subprocess
import sys
from pathlib import Path

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


def _at_0005(url: str):
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(revision="0005")
    return app


def test_0006_refuses_a_tenant_slug_that_is_not_a_slug(fresh_url):
    from sqlalchemy import text

    app = _at_0005(fresh_url)
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO tenants (slug, currency, api_token_hash, max_codes_per_order, "
                    "created_at) VALUES (:slug, 'USD', 'h', 5, CURRENT_TIMESTAMP)"
                ),
                {"slug": "alpha\n"},
            )
        with pytest.raises(SystemExit):  # flask-migrate logs the reason, then exits 1
            upgrade()
        with db.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).one()
        assert version == ("0005",)
        db.engine.dispose()


def test_0006_brings_old_rows_to_their_canonical_forms(fresh_url):
    from sqlalchemy import text

    app = _at_0005(fresh_url)
    with app.app_context():
        with db.engine.begin() as connection:
            run = lambda sql, **p: connection.execute(text(sql), p)  # noqa: E731
            run(
                "INSERT INTO tenants (id, slug, currency, api_token_hash, max_codes_per_order, "
                "created_at) VALUES (1, 'acme', 'USD', 'h', 5, CURRENT_TIMESTAMP)"
            )
            run(
                "INSERT INTO coupons (id, tenant_id, code, code_key, discount_type, currency, "
                "free_products, free_shipping, valid_for, allow_anonymous, max_redemptions, "
                "max_redemptions_per_customer, active, deleted, redemption_count, exclusive, "
                "stacking_priority, origin, created_at, updated_at) VALUES (1, 1, :code, :key, "
                "'PERCENT', NULL, '[]', false, :valid_for, false, -1, -1, true, false, 1, false, "
                "0, 'coupon', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                code="ıNFO",
                key="ınfo",
                valid_for='[" c42 "]',
            )
            run(
                "INSERT INTO redemptions (id, tenant_id, coupon_id, customer_number, redeemed_at) "
                "VALUES ('r1', 1, 1, 'c42 ', CURRENT_TIMESTAMP)"
            )
            run(
                "INSERT INTO customers (tenant_id, customer_number, email, password_hash, "
                "created_at) VALUES (1, 'C1', 'Ann+x@Example.com', 'x', CURRENT_TIMESTAMP)"
            )
        upgrade()
        with db.engine.connect() as connection:
            one = lambda sql: connection.execute(text(sql)).one()  # noqa: E731
            assert one("SELECT code_key FROM coupons") == ("info",)
            assert one("SELECT code_key FROM codes") == ("info",)
            assert one("SELECT customer_number FROM redemptions") == ("C42",)
            assert one("SELECT email_key FROM customers") == ("ann@example.com",)
            assert "C42" in str(one("SELECT valid_for FROM coupons")[0])
        db.engine.dispose()


def test_0006_refuses_codes_that_now_look_alike_and_names_them(fresh_url, capfd):
    from sqlalchemy import text

    app = _at_0005(fresh_url)
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO tenants (id, slug, currency, api_token_hash, max_codes_per_order,"
                    " created_at) VALUES (1, 'acme', 'USD', 'h', 5, CURRENT_TIMESTAMP)"
                )
            )
            for code in ("INFO", "ＩＮＦＯ"):  # one code from 0006 on, two before it
                connection.execute(
                    text("INSERT INTO codes (tenant_id, code_key, code) VALUES (1, :k, :c)"),
                    {"k": code.casefold(), "c": code},
                )
        with pytest.raises(SystemExit):
            upgrade()
        logged = capfd.readouterr().err
        assert "ＩＮＦＯ" in logged and "collide" in logged
        db.engine.dispose()


# What breaks the previous release's code when done in one release: it still reads or
# writes what is dropped or renamed, and inserts without a new NOT NULL column.
_BREAKING = (
    re.compile(r"\b(drop_column|drop_table|rename_table)\("),
    re.compile(r"\balter_column\(.*nullable=False"),
    re.compile(r"\balter_column\(.*new_column_name="),
    re.compile(r"\badd_column\((?!.*server_default).*nullable=False"),
)
# Migrations after this one keep the previous release's code working (docs/operations.md,
# "Upgrading"); 0006 itself needs the old API stopped while it runs.
LAST_ONE_STEP_MIGRATION = "0006"


def breaking_changes(migration: Path) -> list[str]:
    """The lines of a migration's upgrade() that the previous release's code cannot run on."""
    source = migration.read_text()
    upgrade = source[source.index("def upgrade") : source.index("def downgrade")]
    return [
        line.strip()
        for line in upgrade.splitlines()
        if any(pattern.search(line) for pattern in _BREAKING)
    ]


def test_migrations_keep_the_previous_release_working():
    versions = sorted((ROOT / "migrations" / "versions").glob("0*.py"))
    one_step = next(v for v in versions if v.name.startswith(LAST_ONE_STEP_MIGRATION + "_"))
    assert breaking_changes(one_step), "the check must see 0006's one-step changes"
    for migration in versions:
        if migration.name > one_step.name:
            assert breaking_changes(migration) == [], migration.name
