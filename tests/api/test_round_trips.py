"""Round trips to the database per hot request, counted at the driver, so they cannot creep back.

Every statement counts, and so do the BEGIN, COMMIT and ROLLBACK the driver
sends (psycopg sends BEGIN before the first statement outside autocommit, and
nothing for a COMMIT or ROLLBACK when no transaction is open; on SQLite the app
sends BEGIN IMMEDIATE itself, so it is a statement). Validation is one statement; a
redemption on PostgreSQL is two, the read and the WITH statement that bumps the counter and
inserts the redemption, its event and its webhook messages, autocommitted (one statement is
its own transaction: no BEGIN, no COMMIT), an Idempotency-Key's record inserted by that same
statement. With an order id (a taken one is given back in the same transaction) the WITH
runs between BEGIN and COMMIT; the hot coupon's row lock is taken by the last statement
before COMMIT. SQLite sends the writes one by one (the
redemption, the event, the webhook fan-out) in a transaction.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event

from app import direct
from tests.api.conftest import coupon_body, order

BASE = "/coupon/v1/acme/coupons"


def _in_transaction(dbapi_connection) -> bool:
    info = getattr(dbapi_connection, "info", None)
    if info is not None and hasattr(info, "transaction_status"):  # psycopg
        from psycopg.pq import TransactionStatus

        return info.transaction_status != TransactionStatus.IDLE
    return bool(getattr(dbapi_connection, "in_transaction", False))  # sqlite3


class RoundTrips:
    """What the app's engine sends, one label per round trip."""

    def __init__(self, engine):
        self.engine = engine
        self.sent: list[str] = []
        self.recording = False
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        event.listen(engine.pool, "reset", self._reset)
        direct.TRACERS.append(self._driver_statement)

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)
        event.remove(self.engine.pool, "reset", self._reset)
        direct.TRACERS.remove(self._driver_statement)

    def _statement(self, conn, _cursor, statement, *_):
        self._driver_statement(conn.connection.dbapi_connection, statement)

    def _driver_statement(self, dbapi, statement: str):
        """A statement sent (through SQLAlchemy, or on the driver's cursor: app/direct.py)."""
        if not self.recording:
            return
        implicit_begin = getattr(dbapi, "autocommit", True) is False
        if implicit_begin and not _in_transaction(dbapi):
            self.sent.append("BEGIN")
        self.sent.append(statement.split(None, 1)[0].upper())

    def _commit(self, conn):
        if self.recording and _in_transaction(conn.connection.dbapi_connection):
            self.sent.append("COMMIT")

    def _rollback(self, conn):
        if self.recording and _in_transaction(conn.connection.dbapi_connection):
            self.sent.append("ROLLBACK")

    def _reset(self, dbapi_connection, _record, _state):
        if self.recording and _in_transaction(dbapi_connection):
            self.sent.append("ROLLBACK")

    def during(self, call):
        """Run `call`, returning (its result, the round trips it made)."""
        self.sent, self.recording = [], True
        try:
            return call(), list(self.sent)
        finally:
            self.recording = False


@pytest.fixture
def trips(app, db):
    counter = RoundTrips(db.engine)
    yield counter
    counter.remove()


@pytest.fixture
def hot(client, manage, on_behalf):
    """A coupon created and used once, so the tenant and the token are cached."""

    def make(**overrides):
        body = coupon_body(code=overrides.pop("code", "HOT"), **overrides)
        assert client.post(BASE, json=body, headers=manage).status_code == 201
        warm = client.post(
            f"{BASE}/{body['code']}/validation", json=order(customerNumber="W"), headers=on_behalf
        )
        assert warm.status_code == 200, warm.get_json()
        return body["code"]

    return make


def expect(backend: str, postgresql: list[str], sqlite: list[str]) -> list[str]:
    return postgresql if backend == "postgresql" else sqlite


def test_validation_is_one_statement(client, on_behalf, hot, trips, backend):
    code = hot()
    response, sent = trips.during(
        lambda: client.post(
            f"{BASE}/{code}/validation", json=order(customerNumber="C1"), headers=on_behalf
        )
    )
    assert response.status_code == 200
    assert sent == ["SELECT"]


def test_validation_with_a_per_customer_limit_is_still_one_statement(client, on_behalf, hot, trips):
    code = hot(maxRedemptionsPerCustomer=1)
    response, sent = trips.during(
        lambda: client.post(
            f"{BASE}/{code}/validation", json=order(customerNumber="C1"), headers=on_behalf
        )
    )
    assert response.status_code == 200
    assert sent == ["SELECT"]


def test_redemption_is_two_round_trips(client, on_behalf, hot, trips, backend):
    code = hot()
    response, sent = trips.during(
        lambda: client.post(
            f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=on_behalf
        )
    )
    assert response.status_code == 201
    # The WITH (guarded UPDATE + INSERTs) is its own transaction.
    assert sent == expect(
        backend,
        ["SELECT", "WITH"],
        ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "INSERT", "COMMIT"],
    )


def test_a_redemption_with_an_order_id_is_four_round_trips(client, on_behalf, hot, trips, backend):
    code = hot()
    body = order(customerNumber="C1", orderId="trip-order-1")
    response, sent = trips.during(
        lambda: client.post(f"{BASE}/{code}/redemptions", json=body, headers=on_behalf)
    )
    assert response.status_code == 201
    # The lock is taken by the WITH and held until COMMIT: a taken order id gives back.
    assert sent == expect(
        backend,
        ["SELECT", "BEGIN", "WITH", "COMMIT"],
        ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "INSERT", "COMMIT"],
    )


def test_keyed_redemption_is_two_round_trips(client, on_behalf, hot, trips, backend):
    code = hot()
    headers = {**on_behalf, "Idempotency-Key": "trip-1"}
    body = order(customerNumber="C1")
    response, sent = trips.during(
        lambda: client.post(f"{BASE}/{code}/redemptions", json=body, headers=headers)
    )
    assert response.status_code == 201
    assert sent == expect(
        backend,
        # The key's record goes in with the redemption, in the one statement.
        ["SELECT", "WITH"],
        ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "INSERT", "INSERT", "COMMIT"],
    )
    replay, sent = trips.during(
        lambda: client.post(f"{BASE}/{code}/redemptions", json=body, headers=headers)
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == response.get_json()
    # The taken key fails the statement (nothing written); the stored answer is read.
    assert sent == expect(
        backend,
        ["SELECT", "WITH", "BEGIN", "SELECT", "ROLLBACK"],
        ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "INSERT", "INSERT", "SELECT", "ROLLBACK"],
    )


def test_per_customer_limit_locks_before_counting(client, on_behalf, hot, trips, backend):
    code = hot(maxRedemptionsPerCustomer=2)
    response, sent = trips.during(
        lambda: client.post(
            f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=on_behalf
        )
    )
    assert response.status_code == 201
    # The guard's count is read by a statement that starts after the lock is held.
    assert sent == expect(
        backend,
        ["SELECT", "BEGIN", "SELECT", "WITH", "COMMIT"],
        ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "INSERT", "COMMIT"],
    )


def test_a_refusal_opens_no_transaction(client, on_behalf, hot, trips):
    code = hot()
    response, sent = trips.during(
        lambda: client.post(f"{BASE}/{code}/redemptions", json=order(total=10), headers=on_behalf)
    )
    assert response.get_json()["type"] == "coupon_order_total_too_low"
    assert sent == ["SELECT"]


def test_promo_check_is_one_statement(client, manage, redeem, trips):
    promo = {"coupon": "GIFT", "code": "FREE_PIZZA", "fullPrice": 500, "hasProduct": "pizza"}
    assert client.post("/promocodes/add", json=promo, headers=manage).status_code == 201
    body = {
        "coupon": "GIFT",
        "notGiftsAndNotDeliveryTotal": 600,
        "order": {"items": [{"code": "pizza"}]},
    }
    assert client.post("/promocodes/", json=body, headers=redeem).status_code == 200
    response, sent = trips.during(lambda: client.post("/promocodes/", json=body, headers=redeem))
    assert response.get_json()["freeProducts"] == ["FREE_PIZZA"]
    assert sent == ["SELECT"]


def held_coupon(client, on_behalf, hot, *customers: str) -> tuple[str, list[str]]:
    """A hot coupon limited to 5 uses with a live hold per customer; the code and hold ids."""
    code = hot(maxRedemptions=5)
    ids = []
    for customer in customers:
        held = client.post(
            f"{BASE}/{code}/reservations", json=order(customerNumber=customer), headers=on_behalf
        )
        assert held.status_code == 201, held.get_json()
        ids.append(held.get_json()["id"])
    return code, ids


def redeem_trips(client, on_behalf, trips, code, route="redemptions"):
    return trips.during(
        lambda: client.post(
            f"{BASE}/{code}/{route}", json=order(customerNumber="C1"), headers=on_behalf
        )
    )


def test_a_held_coupon_still_validates_in_one_statement(client, on_behalf, hot, trips):
    code, _ = held_coupon(client, on_behalf, hot, "H")
    response, sent = redeem_trips(client, on_behalf, trips, code, "validation")
    assert response.status_code == 200
    assert sent == ["SELECT"]  # live holds are counted inside the one statement


def test_a_held_coupon_redeems_under_its_lock_at_once(client, on_behalf, hot, trips, backend):
    code, _ = held_coupon(client, on_behalf, hot, "H")
    response, sent = redeem_trips(client, on_behalf, trips, code)
    assert response.status_code == 201
    # No optimistic attempt the guard would refuse: lock, read with holds counted, write.
    assert sent == expect(
        backend,
        ["SELECT", "BEGIN", "SELECT", "SELECT", "WITH", "COMMIT"],
        ["SELECT", "BEGIN", "SELECT", "SELECT", "UPDATE", "INSERT", "INSERT", "INSERT", "COMMIT"],
    )


def test_a_coupon_whose_holds_ended_takes_the_hot_path_again(
    client, manage, on_behalf, hot, trips, backend
):
    code, (released, confirmed) = held_coupon(client, on_behalf, hot, "H", "I")
    path = f"{BASE}/{code}/reservations"
    assert client.delete(f"{path}/{released}", headers=manage).status_code == 204
    assert client.post(f"{path}/{confirmed}/confirm", headers=manage).status_code == 201
    response, sent = redeem_trips(client, on_behalf, trips, code)
    assert response.status_code == 201
    assert sent == expect(
        backend,
        ["SELECT", "WITH"],
        ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "INSERT", "COMMIT"],
    )


def test_a_redemption_that_cannot_be_inserted_takes_no_use(client, on_behalf, hot, backend, db):
    """Only a taken order id is skipped; any other conflict (here the redemptions' sequence
    set behind its rows, as after a careless restore) fails the statement, bump and all."""
    if backend != "postgresql":
        pytest.skip("a sequence set back is PostgreSQL's")
    from sqlalchemy import text

    code = hot()
    first = client.post(
        f"{BASE}/{code}/redemptions", json=order(customerNumber="C1"), headers=on_behalf
    )
    assert first.status_code == 201
    behind = text(
        "SELECT setval(pg_get_serial_sequence('redemptions', 'seq'),"
        " (SELECT max(seq) FROM redemptions), false)"  # the next one is taken
    )
    for body in (order(customerNumber="C2"), order(customerNumber="C3", orderId="O-3")):
        with db.engine.begin() as connection:
            connection.execute(behind)
        failed = client.post(f"{BASE}/{code}/redemptions", json=body, headers=on_behalf)
        assert failed.status_code == 500
    with db.engine.connect() as connection:
        counter, rows = connection.execute(
            text(
                "SELECT c.redemption_count, (SELECT count(*) FROM redemptions r"
                " WHERE r.coupon_id = c.id) FROM coupons c WHERE c.code = :code"
            ),
            {"code": code},
        ).one()
    assert counter == rows == 1


def test_a_keyed_redemption_refused_by_its_guard_runs_again_in_a_transaction(
    client, on_behalf, hot, trips, backend, db, monkeypatch
):
    """The coupon changes between the read and the keyed statement: the guard refuses,
    nothing is written, and the request is decided again in a transaction, its record
    committed with that work; the redemption is counted once."""
    if backend != "postgresql":
        pytest.skip("the one keyed statement is PostgreSQL's")
    from sqlalchemy import text

    from app.engine import idempotency
    from tests.api.test_metrics import sample

    code = hot()
    taken = idempotency.Offer.take

    def changed_meanwhile(offer, write):
        with db.engine.begin() as connection:  # another request edits the coupon
            connection.execute(
                text("UPDATE coupons SET updated_at = now() + interval '1 second' WHERE code = :c"),
                {"c": code},
            )
        taken(offer, write)

    monkeypatch.setattr(idempotency.Offer, "take", changed_meanwhile)
    headers = {**on_behalf, "Idempotency-Key": "guarded-1"}
    body = order(customerNumber="C1")
    before = client.get("/metrics").get_data(as_text=True)
    response, sent = trips.during(
        lambda: client.post(f"{BASE}/{code}/redemptions", json=body, headers=headers)
    )
    after = client.get("/metrics").get_data(as_text=True)
    assert response.status_code == 201, response.get_json()
    # The refused statement, then the work again: its read and write in a transaction.
    # The read, the edit (this test's), the refused statement, then the work again: its
    # read, and its write with the record in a transaction.
    assert sent == ["SELECT", "BEGIN", "UPDATE", "COMMIT", "WITH"] + [
        "SELECT",
        "BEGIN",
        "WITH",
        "INSERT",
        "COMMIT",
    ]
    counted = {"outcome": "redeemed", "dialect": "tenant"}
    assert (
        sample(after, "coupon_redemptions_total", **counted)
        - sample(before, "coupon_redemptions_total", **counted)
        == 1
    )
    replay = client.post(f"{BASE}/{code}/redemptions", json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == response.get_json()
    with db.engine.connect() as connection:
        counter, rows, records = connection.execute(
            text(
                "SELECT c.redemption_count, (SELECT count(*) FROM redemptions r"
                " WHERE r.coupon_id = c.id), (SELECT count(*) FROM idempotency_records"
                " WHERE key = 'guarded-1') FROM coupons c WHERE c.code = :code"
            ),
            {"code": code},
        ).one()
    assert counter == rows == records == 1


def _redemptions_counted(client, outcome: str) -> float:
    from tests.api.test_metrics import sample

    text = client.get("/metrics").get_data(as_text=True)
    return sample(text, "coupon_redemptions_total", outcome=outcome, dialect="tenant")


def test_a_replayed_key_counts_nothing_again(client, on_behalf, hot):
    """The work a replay runs (and rolls back) is not counted: neither its redemption
    (a per-customer limit takes the transaction) nor a refusal the stored answer replaces."""
    code = hot(maxRedemptionsPerCustomer=5, maxRedemptions=1)
    headers = {**on_behalf, "Idempotency-Key": "counted-1"}
    body = order(customerNumber="C1")
    redeemed = _redemptions_counted(client, "redeemed")
    exceeded = _redemptions_counted(client, "coupon_redemptions_exceeded")
    for _ in range(3):
        answer = client.post(f"{BASE}/{code}/redemptions", json=body, headers=headers)
        assert answer.status_code == 201
    assert _redemptions_counted(client, "redeemed") - redeemed == 1
    # The coupon is used up now: the replayed 201 is no refusal.
    assert _redemptions_counted(client, "coupon_redemptions_exceeded") == exceeded


def test_a_new_fan_is_two_round_trips(client, tenant, trips, backend):
    """The discount's read, then the fan, its coupon and the realizer post in one
    statement; an inbox registered before takes the general path under its lock."""
    token = {"X-API-Token": "acme-api-token-1"}
    discount = {"name": "d", "discount_type": "PERCENT", "discount_amount": 10}
    assert client.post("/brands/acme/discounts", json=discount, headers=token).status_code == 200
    fan = {"name": "Fan", "email": "fan@example.com"}
    response, sent = trips.during(lambda: client.post("/brands/acme/fans", json=fan, headers=token))
    assert response.status_code == 200
    assert sent == expect(
        backend,
        ["SELECT", "WITH"],
        ["SELECT", "BEGIN", "INSERT", "SELECT", "INSERT", "UPDATE", "INSERT", "COMMIT"],
    )
    again, sent = trips.during(
        lambda: client.post(
            "/brands/acme/fans", json={**fan, "email": "FAN@example.com"}, headers=token
        )
    )
    assert again.status_code == 200
    assert sent[:4] == expect(
        backend, ["SELECT", "WITH", "BEGIN", "INSERT"], ["SELECT", "BEGIN", "INSERT", "SELECT"]
    )
