"""docs/operations.md, tried where it can be: a backup restored into a fresh database
serves as the original did."""

import os
import shutil

import pytest
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from tests.conftest import BASE_CONFIG, PG_URL
from tests.docs.conftest import fenced, run_shell
from tests.support import new_postgres_database


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as pg_dump and pg_restore take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL not set: backups are PostgreSQL's")
@pytest.mark.skipif(not shutil.which("pg_dump"), reason="pg_dump is not installed")
def test_a_restored_backup_serves(tmp_path):
    from flask_migrate import upgrade

    with (
        new_postgres_database(PG_URL, "coupon_backup") as source,
        new_postgres_database(PG_URL, "coupon_restored") as target,
    ):
        app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": source})
        with app.app_context():
            upgrade()
            from app.engine.tenants import create_tenant

            secrets = create_tenant(slug="acme", currency="USD")
            db.engine.dispose()
        client = app.test_client()
        token = client.post(
            "/oauth2/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_id": secrets["client_id"],
                "client_secret": secrets["client_secret"],
            },
        ).get_json()["access_token"]
        manage = {"Authorization": f"Bearer {token}"}
        body = {"code": "KEPT", "discountType": "PERCENT", "discountPercentage": 10}
        assert client.post("/coupon/v1/acme/coupons", json=body, headers=manage).status_code == 201
        with app.app_context():
            db.engine.dispose()

        result = run_shell(
            fenced("docs/operations.md", "backup-restore"),
            env={
                **os.environ,
                "SOURCE_URL": _libpq(source),
                "TARGET_URL": _libpq(target),
                "BACKUP_FILE": str(tmp_path / "coupons.dump"),
            },
        )
        assert result.returncode == 0, result.stderr

        restored = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": target})
        served = restored.test_client()
        assert served.get("/ready").status_code == 200
        # The same token (same key) reads the same coupon; the restored copy takes writes.
        coupon = served.get("/coupon/v1/acme/coupons/KEPT", headers=manage)
        assert coupon.status_code == 200 and coupon.get_json()["discountPercentage"] == 10
        body = {**body, "code": "AFTER"}
        made = served.post("/coupon/v1/acme/coupons", json=body, headers=manage)
        assert made.status_code == 201
        with restored.app_context():
            db.engine.dispose()
