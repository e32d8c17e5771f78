"""Delivery outlasts an outage: messages are retried on a time budget, not a count."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from app.database import set_clock_offset, utcnow
from app.engine import outbox, worker
from app.extensions import db
from app.models import OutboxMessage, OutboxStatus

MESSAGES = 5


class Downstream:
    """A real HTTP endpoint that answers 503 while `down`, else 204, and counts."""

    def __init__(self, down: bool = True):
        self.down = down
        self.received: list[str] = []
        # What arrived while up: (path, headers, body).
        self.requests: list[tuple[str, dict, bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if owner.down:
                    self.send_response(503)
                else:
                    owner.received.append(self.headers["webhook-id"])
                    owner.requests.append((self.path, dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def downstream():
    server = Downstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def clock():
    yield set_clock_offset
    set_clock_offset(0)


def _queue(count):
    for n in range(count):
        db.session.add(
            OutboxMessage(
                **outbox.message_values(tenant_id=None, destination=outbox.EVENTS, payload={"n": n})
            )
        )
    db.session.commit()


def _ride_out(app, downstream, clock, *, outage, **config):
    """Queue messages, keep the downstream down for `outage` while the worker runs on a
    moved clock (each turn jumps to the next due attempt), then bring it back and run
    until nothing is due. Returns the messages' final statuses."""
    settings = outbox.Settings.from_config({**app.config, "EVENTS_URL": downstream.url, **config})
    _queue(MESSAGES)
    start, moved = utcnow(), 0.0
    while True:
        with requests.Session() as http:
            worker.dispatch_once(settings, http)
        db.session.remove()
        due = db.session.query(OutboxMessage.next_attempt_at).filter_by(status="pending").all()
        if not due:
            break
        wait = max((min(d for (d,) in due) - utcnow()).total_seconds(), 0) + 0.001
        moved += wait
        clock(moved)
        if downstream.down and utcnow() - start >= outage:
            downstream.down = False
    return sorted(m.status for m in db.session.query(OutboxMessage))


def test_a_two_hour_outage_loses_nothing(app, downstream, clock):
    statuses = _ride_out(app, downstream, clock, outage=timedelta(hours=2))
    assert statuses == [OutboxStatus.DELIVERED] * MESSAGES
    assert len(set(downstream.received)) == MESSAGES


def test_a_count_of_ten_attempts_would_have_lost_them(app, downstream, clock):
    """The policy this replaced (10 attempts, about half an hour): the same outage kills
    every message, which is what the time budget is for."""
    statuses = _ride_out(app, downstream, clock, outage=timedelta(hours=2), OUTBOX_MAX_ATTEMPTS=10)
    assert statuses == [OutboxStatus.DEAD] * MESSAGES


def test_past_the_time_budget_a_message_is_dead_and_can_be_requeued(app, downstream, clock):
    statuses = _ride_out(
        app, downstream, clock, outage=timedelta(days=30), OUTBOX_RETRY_FOR_SECONDS=6 * 3600
    )
    assert statuses == [OutboxStatus.DEAD] * MESSAGES
    died = db.session.query(OutboxMessage.next_attempt_at).first()[0]
    # The last attempt falls at the budget's end, not an hour's backoff past it.
    created = db.session.query(OutboxMessage.created_at).first()[0]
    assert died - created < timedelta(hours=6, minutes=1)
    assert outbox.retry_dead(destination=outbox.COUPON_REALIZER) == 0
    assert outbox.retry_dead(since=utcnow() + timedelta(seconds=1)) == 0
    assert outbox.retry_dead(destination=outbox.EVENTS) == MESSAGES
    downstream.down = False
    settings = outbox.Settings.from_config({**app.config, "EVENTS_URL": downstream.url})
    with requests.Session() as http:
        worker.dispatch_once(settings, http)
    db.session.remove()
    assert {m.status for m in db.session.query(OutboxMessage)} == {OutboxStatus.DELIVERED}


def test_backoff_is_capped_and_jittered_below_the_cap():
    delays = [outbox.retry_delay(n, 2.0, 3600.0) for n in range(1, 40)]
    assert all(d <= 3600.0 for d in delays)
    assert 1.6 <= delays[0] <= 2.0 and delays[-1] >= 0.8 * 3600
