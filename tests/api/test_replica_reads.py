"""DATABASE_READ_URL: lists and qualifications read the replica (they decide nothing that is
written); reads by id and every decision stay on the primary; an unreachable replica is
paused and the primary answers. The "replica" here is the same PostgreSQL database under
another connection name (a streaming replica that lags: tests/system/test_replica.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from app import create_app, database
from app.extensions import db as _db
from tests.api.conftest import coupon_body, order
from tests.conftest import BASE_CONFIG, RequestInItsOwnContext

BASE = "/coupon/v1/acme"


def _app_reading(database_url: str, read_url: str):
    app = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "DATABASE_READ_URL": read_url}
    )
    app.test_client_class = RequestInItsOwnContext
    return app


@pytest.fixture
def app(app, database_url, backend):
    """The suite's app (its cleanup included), and beside it one that reads a replica."""
    if backend != "postgresql":
        pytest.skip("a read replica is PostgreSQL's")
    yield app


@pytest.fixture
def reading(app, database_url):
    """(client, statements sent to the replica) of an app whose replica is the database."""
    replica_app = _app_reading(database_url, database_url + "?application_name=replica")
    with replica_app.app_context():
        replica = database._REPLICAS[_db.engine]
    sent: list[str] = []
    event.listen(replica, "before_cursor_execute", lambda *a: sent.append(a[2].split()[0]))
    yield replica_app.test_client(), sent
    replica.dispose()
    with replica_app.app_context():
        _db.engine.dispose()


def test_lists_and_qualifications_read_the_replica(client, manage, on_behalf, reading):
    body = coupon_body(code="LISTED", listable=True)
    assert client.post(f"{BASE}/coupons", json=body, headers=manage).status_code == 201
    replica_client, sent = reading
    redeemed = replica_client.post(
        f"{BASE}/coupons/LISTED/redemptions", json=order(customerNumber="C1"), headers=on_behalf
    )
    assert redeemed.status_code == 201 and sent == []  # decided on the primary
    assert replica_client.get(f"{BASE}/coupons/LISTED", headers=manage).status_code == 200
    assert sent == []  # a read by code sees what was just written: the primary's
    for path in ("/coupons", "/coupons/LISTED/redemptions"):
        listed = replica_client.get(BASE + path, headers=manage)
        assert listed.status_code == 200 and len(listed.get_json()) == 1
        assert "SELECT" in sent
        sent.clear()
    shopper = {"orderTotal": {"amount": 100, "currency": "USD"}, "customerNumber": "C2"}
    offered = replica_client.post(f"{BASE}/qualifications", json=shopper, headers=on_behalf)
    assert offered.status_code == 200, offered.get_json()
    assert [q["code"] for q in offered.get_json()] == ["LISTED"]
    assert "SELECT" in sent


def test_an_unreachable_replica_is_paused_and_the_primary_answers(client, manage, database_url):
    assert client.post(f"{BASE}/coupons", json=coupon_body(code="A"), headers=manage)
    down = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
    replica_app = _app_reading(database_url, down)
    replica_client = replica_app.test_client()
    for _ in range(3):
        listed = replica_client.get(f"{BASE}/coupons", headers=manage)
        assert listed.status_code == 200 and [c["code"] for c in listed.get_json()] == ["A"]
    with replica_app.app_context():
        assert database.standby_of(_db.engine) is None  # paused after the first failure
        _db.engine.dispose()
