"""Webhook endpoints per tenant: managed over the API, fed in the transaction of each
change, delivered by the outbox worker to a real HTTP server, verified with the
Standard Webhooks reference library; rotation, the delivery log, SSRF refusals."""

import time

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from app.database import set_clock_offset
from app.engine import outbox, worker
from app.extensions import db
from app.models import OutboxMessage, WebhookEndpoint
from tests.api.conftest import coupon_body, order
from tests.api.test_campaigns import create, run_jobs
from tests.api.test_outbox_retries import Downstream

BASE = "/coupon/v1/acme"


@pytest.fixture
def receiver():
    server = Downstream(down=False)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def sandbox(another_app):
    """The app as the sandbox runs it: webhooks may call private addresses."""
    return another_app(WEBHOOK_ALLOW_PRIVATE=True)


def _deliver(app, **config):
    settings = outbox.Settings.from_config({**app.config, **config})
    with requests.Session() as http:
        while worker.dispatch_once(settings, http):
            pass
    db.session.remove()


def _endpoint(client, manage, url, events=("*",), **extra):
    made = client.post(
        f"{BASE}/webhooks", json={"url": url, "events": list(events), **extra}, headers=manage
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def _verified(secret, request):
    _, headers, body = request
    return Webhook(secret).verify(body, headers)


def test_endpoints_are_managed_and_their_secret_shown_once(client, manage, db):
    made = _endpoint(
        client, manage, "https://hooks.example.com/a", ["coupon.created"], description="shop"
    )
    assert made["secret"].startswith("whsec_") and made["events"] == ["coupon.created"]
    stored = db.session.get(WebhookEndpoint, made["id"]).secret
    assert made["secret"].encode() not in stored and made["secret"][6:].encode() not in stored
    listed = client.get(f"{BASE}/webhooks", headers=manage).get_json()
    assert [e["id"] for e in listed] == [made["id"]] and "secret" not in listed[0]
    link = f"{BASE}/webhooks/{made['id']}"
    assert "secret" not in client.get(link, headers=manage).get_json()
    changed = client.patch(link, json={"events": ["*"], "active": False}, headers=manage)
    assert changed.get_json()["events"] == ["*"] and changed.get_json()["active"] is False
    assert client.delete(link, headers=manage).status_code == 204
    gone = client.get(link, headers=manage)
    assert (gone.status_code, gone.get_json()["type"]) == (404, "webhook_endpoint_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/x", "events": ["*"]},
        {"url": "https:///nohost", "events": ["*"]},
        {"url": "https://user:pw@example.com/", "events": ["*"]},
        {"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]},
        {"url": "http://127.0.0.1:8080/", "events": ["*"]},
        {"url": "http://[::ffff:10.0.0.1]/", "events": ["*"]},
        {"url": "https://example.com/", "events": ["no.such.event"]},
        {"url": "https://example.com/", "events": []},
    ],
)
def test_bad_endpoints_are_refused(client, manage, body):
    refused = client.post(f"{BASE}/webhooks", json=body, headers=manage)
    assert (refused.status_code, refused.get_json()["type"]) == (400, "validation_failed")


def test_at_most_twenty_endpoints(client, manage):
    for n in range(20):
        _endpoint(client, manage, f"https://hooks.example.com/{n}")
    refused = client.post(
        f"{BASE}/webhooks",
        json={"url": "https://hooks.example.com/x", "events": ["*"]},
        headers=manage,
    )
    assert refused.status_code == 400


def test_events_reach_each_subscriber_signed_with_its_secret(
    app, sandbox, manage, on_behalf, receiver
):
    client = sandbox.test_client()
    everything = _endpoint(client, manage, receiver.url + "/all")
    redemptions = _endpoint(client, manage, receiver.url + "/redemptions", ["redemption.created"])
    assert (
        client.post(f"{BASE}/coupons", json=coupon_body(code="HOOKED"), headers=manage).status_code
        == 201
    )
    made = client.post(
        f"{BASE}/coupons/HOOKED/redemptions",
        json=order(customerNumber="C1", orderId="o-1"),
        headers=on_behalf,
    )
    assert made.status_code == 201
    _deliver(sandbox, WEBHOOK_ALLOW_PRIVATE=True)
    by_path = {}
    for request in receiver.requests:
        by_path.setdefault(request[0], []).append(request)
    assert sorted(_verified(everything["secret"], r)["type"] for r in by_path["/events/all"]) == [
        "coupon.created",
        "redemption.created",
    ]
    [only] = by_path["/events/redemptions"]
    event = _verified(redemptions["secret"], only)
    assert event["type"] == "redemption.created"
    assert (
        event["data"]["couponCode"] == "HOOKED"
        and event["data"]["redemptionId"] == made.get_json()["id"]
    )
    log = client.get(f"{BASE}/webhooks/{everything['id']}/deliveries", headers=manage).get_json()
    assert sorted((a["eventType"], a["statusCode"], a["error"]) for a in log) == [
        ("coupon.created", 204, None),
        ("redemption.created", 204, None),
    ]


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(app, sandbox, manage, receiver):
    client = sandbox.test_client()
    made = _endpoint(client, manage, receiver.url + "/r")
    link = f"{BASE}/webhooks/{made['id']}"
    rotated = client.post(f"{link}/rotate-secret", headers=manage).get_json()
    assert rotated["secret"] != made["secret"] and rotated["previousSecretUntil"]
    assert client.post(f"{link}/test", headers=manage).status_code == 202
    _deliver(sandbox)
    [ping] = receiver.requests
    assert len(ping[1]["webhook-signature"].split(" ")) == 2
    for secret in (made["secret"], rotated["secret"]):
        assert _verified(secret, ping)["type"] == "ping"
    try:
        set_clock_offset(25 * 3600)  # the day is over: the new secret alone
        client.post(f"{link}/test", headers=manage)
        _deliver(sandbox)
    finally:
        set_clock_offset(0)
    assert len(receiver.requests[-1][1]["webhook-signature"].split(" ")) == 1
    assert _verified(rotated["secret"], receiver.requests[-1])["type"] == "ping"


def test_a_name_resolving_to_a_private_address_is_refused_when_delivering(
    app, client, manage, receiver
):
    # "localhost" is a name: accepted when saved, refused by what it resolves to.
    made = _endpoint(client, manage, f"http://localhost:{receiver.server.server_port}/x")
    client.post(f"{BASE}/webhooks/{made['id']}/test", headers=manage)
    _deliver(app)
    assert receiver.requests == []
    [attempt] = client.get(f"{BASE}/webhooks/{made['id']}/deliveries", headers=manage).get_json()
    assert attempt["statusCode"] is None
    assert "resolves to 127.0.0.1" in attempt["error"] or "resolves to ::1" in attempt["error"]


def test_an_endpoint_failing_for_three_days_is_switched_off(app, sandbox, manage):
    client = sandbox.test_client()
    made = _endpoint(client, manage, "http://127.0.0.1:9/down")  # nobody listens
    link = f"{BASE}/webhooks/{made['id']}"
    client.post(f"{link}/test", headers=manage)
    _deliver(sandbox)
    assert client.get(link, headers=manage).get_json()["active"] is True
    try:
        set_clock_offset(3 * 24 * 3600 + 60)
        client.post(f"{link}/test", headers=manage)
        _deliver(sandbox)
    finally:
        set_clock_offset(0)
    endpoint = client.get(link, headers=manage).get_json()
    assert endpoint["active"] is False and "3 days" in endpoint["disabledReason"]
    # Switched on again by hand: its streak starts afresh.
    again = client.patch(link, json={"active": True}, headers=manage).get_json()
    assert again["active"] is True and again["disabledReason"] is None


def test_a_dead_delivery_is_retried_by_hand(app, sandbox, manage, receiver):
    client = sandbox.test_client()
    receiver.down = True
    made = _endpoint(client, manage, receiver.url + "/d")
    link = f"{BASE}/webhooks/{made['id']}"
    message = client.post(f"{link}/test", headers=manage).get_json()["messageId"]
    _deliver(sandbox, OUTBOX_MAX_ATTEMPTS=1)
    assert db.session.get(OutboxMessage, message).status == "dead"
    receiver.down = False
    assert client.post(f"{link}/deliveries/{message}/retry", headers=manage).status_code == 202
    _deliver(sandbox)
    assert [r[1]["webhook-id"] for r in receiver.requests] == [message]
    again = client.post(f"{link}/deliveries/{message}/retry", headers=manage)
    assert (again.status_code, again.get_json()["type"]) == (404, "webhook_delivery_not_found")


def test_every_event_type_arrives_verified_under_both_secrets(
    app, sandbox, manage, on_behalf, receiver
):
    """Every kind of change, delivered during a rotation: each verifies with the old
    secret and with the new one (the Standard Webhooks reference library)."""
    client = sandbox.test_client()
    made = _endpoint(client, manage, receiver.url + "/all")
    new = client.post(f"{BASE}/webhooks/{made['id']}/rotate-secret", headers=manage)
    body = coupon_body(
        code="EVENTS", budget={"maxDiscountTotal": {"amount": 25, "currency": "USD"}}
    )
    client.post(f"{BASE}/coupons", json=body, headers=manage)
    client.patch(f"{BASE}/coupons/EVENTS", json={"name": "Renamed"}, headers=manage)
    held = client.post(
        f"{BASE}/coupons/EVENTS/reservations",
        json=order(customerNumber="C1", orderId="h-1"),
        headers=on_behalf,
    )
    client.delete(held.headers["Location"], headers=on_behalf)
    kept = client.post(
        f"{BASE}/coupons/EVENTS/reservations",
        json=order(customerNumber="C3", orderId="h-2"),
        headers=on_behalf,
    )
    client.post(f"{kept.headers['Location']}/confirm", headers=on_behalf)
    redeemed = client.get(f"{BASE}/coupons/EVENTS/redemptions", headers=manage).get_json()[0]["id"]
    client.post(
        f"{BASE}/coupons/EVENTS/redemptions",
        json=order(customerNumber="C2", orderId="o-2"),
        headers=on_behalf,
    )
    client.post(f"{BASE}/redemptions/{redeemed}/rollback", json={"reason": "back"}, headers=manage)
    client.post(
        f"{BASE}/coupons/EVENTS/redemptions",
        json=order(customerNumber="C2", orderId="o-3"),
        headers=on_behalf,
    )
    client.delete(f"{BASE}/coupons/EVENTS", headers=manage)
    create(client, manage, count=2)
    run_jobs(sandbox)
    client.post(f"{BASE}/webhooks/{made['id']}/test", headers=manage)
    _deliver(sandbox)
    types = []
    for request in receiver.requests:
        for secret in (made["secret"], new.get_json()["secret"]):
            event = _verified(secret, request)
        types.append(event["type"])
    assert sorted(types) == sorted(
        [
            "coupon.created",
            "coupon.updated",
            "hold.created",
            "hold.released",
            "hold.created",
            "hold.confirmed",
            "redemption.created",  # the hold confirmed
            "budget.exhausted",  # o-2: the budget was held, then used by the hold
            "redemption.rolled_back",
            "redemption.created",  # o-3, with the budget given back
            "coupon.deleted",
            "campaign.completed",
            "ping",
        ]
    ), types


def test_switched_off_endpoints_get_nothing(client, manage, db):
    made = _endpoint(client, manage, "https://hooks.example.com/off")
    client.patch(f"{BASE}/webhooks/{made['id']}", json={"active": False}, headers=manage)
    client.post(f"{BASE}/coupons", json=coupon_body(code="QUIET"), headers=manage)
    assert db.session.query(OutboxMessage).filter_by(endpoint_id=made["id"]).count() == 0


def test_secrets_sealed_under_a_rotated_key_are_sealed_anew(
    app, sandbox, manage, receiver, another_app
):
    client = sandbox.test_client()
    made = _endpoint(client, manage, receiver.url + "/k")
    client.post(f"{BASE}/webhooks/{made['id']}/test", headers=manage)
    old_key = app.config["SECRET_KEY"]
    rotated = {"SECRET_KEY": "n" * 40, "SECRET_KEY_FALLBACKS": [old_key]}
    _deliver(sandbox, **rotated)
    assert _verified(made["secret"], receiver.requests[-1])["type"] == "ping"
    # Sealed anew under the new key: the old one can leave the fallbacks.
    client.post(f"{BASE}/webhooks/{made['id']}/test", headers=manage)
    _deliver(sandbox, SECRET_KEY="n" * 40, SECRET_KEY_FALLBACKS=[])
    assert len(receiver.requests) == 2
    assert _verified(made["secret"], receiver.requests[-1])["type"] == "ping"


class Hanging(Downstream):
    """An endpoint that takes far longer than the delivery timeout to answer."""

    def __init__(self, seconds: float):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                owner.hits += 1
                time.sleep(seconds)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_hanging_endpoint_holds_one_slot_and_delays_no_other(sandbox, manage, receiver):
    """Three pings to an endpoint that hangs past the 2 s timeout, queued first, then
    five to a healthy one: the healthy ones arrive while the hanging one still holds its
    slot (one after the other, they would wait 3 timeouts)."""
    import threading

    hanging = Hanging(seconds=5)
    client = sandbox.test_client()
    slow = _endpoint(client, manage, hanging.url)
    fast = _endpoint(client, manage, receiver.url + "/fast")
    for _ in range(3):
        client.post(f"{BASE}/webhooks/{slow['id']}/test", headers=manage)
    for _ in range(5):
        client.post(f"{BASE}/webhooks/{fast['id']}/test", headers=manage)
    config = {**sandbox.config, "OUTBOX_HTTP_TIMEOUT_SECONDS": 2.0, "OUTBOX_POLL_SECONDS": 0.05}
    stop = threading.Event()

    def run():
        with sandbox.app_context():
            worker.run_worker(config, stop, lambda: None, context=sandbox.app_context)

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        while len(receiver.requests) < 5 and time.monotonic() - started < 10:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=30)
        hanging.server.shutdown()
        hanging.server.server_close()
    assert len(receiver.requests) == 5
    assert elapsed < 2.0, elapsed  # before the hanging endpoint's first timeout
    assert hanging.hits == 1  # one in flight per endpoint: its other two waited their turn


def test_reseal_seals_every_secret_under_the_new_key(app, client, manage, runner):
    from app.security import unseal

    made = _endpoint(client, manage, "https://hooks.example.com/r")
    old = app.config["SECRET_KEY"]
    app.config.update(SECRET_KEY="n" * 40, SECRET_KEY_FALLBACKS=[old])
    try:
        result = runner.invoke(args=["webhooks", "reseal"])
        assert result.output.strip() == "1 secrets sealed under the current SECRET_KEY"
        db.session.expire_all()
        sealed = db.session.get(WebhookEndpoint, made["id"]).secret
        assert unseal(sealed, ["n" * 40]) == made["secret"]
    finally:
        app.config.update(SECRET_KEY=old, SECRET_KEY_FALLBACKS=[])
