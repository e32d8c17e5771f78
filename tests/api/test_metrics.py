"""GET /metrics: request durations by route template, redemption outcomes, outbox gauges."""

from __future__ import annotations

import re

import pytest

from app import create_app
from tests.api.conftest import coupon_body, order
from tests.conftest import BASE_CONFIG

BASE = "/coupon/v1/acme/coupons"


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_redemptions_are_counted_by_outcome_and_dialect(client, manage, on_behalf):
    assert client.post(BASE, json=coupon_body(code="M1", maxRedemptions=1), headers=manage)
    assert client.post(BASE, json=coupon_body(code="M2"), headers=manage)
    before = client.get("/metrics").get_data(as_text=True)
    labels = {"dialect": "tenant"}
    client.post(f"{BASE}/M1/redemptions", json=order(customerNumber="A"), headers=on_behalf)
    client.post(f"{BASE}/M1/redemptions", json=order(customerNumber="B"), headers=on_behalf)
    client.post(f"{BASE}/M2/redemptions", json=order(total=10), headers=on_behalf)
    after = client.get("/metrics").get_data(as_text=True)

    def delta(outcome):
        name = "coupon_redemptions_total"
        return sample(after, name, outcome=outcome, **labels) - sample(
            before, name, outcome=outcome, **labels
        )

    assert delta("redeemed") == 1
    assert delta("coupon_redemptions_exceeded") == 1
    assert delta("coupon_order_total_too_low") == 1


def test_durations_are_labelled_by_route_template_never_the_code(client, manage, on_behalf):
    client.post(BASE, json=coupon_body(code="SECRET_CODE_42"), headers=manage)
    client.post(f"{BASE}/SECRET_CODE_42/validation", json=order(), headers=on_behalf)
    text = client.get("/metrics").get_data(as_text=True)
    assert "SECRET_CODE_42" not in text
    route = "/coupon/v1/<string:tenant>/coupons/<string:code>/validation"
    count = sample(
        text, "http_request_duration_seconds_count", method="POST", route=route, status="200"
    )
    assert count >= 1


def test_made_up_methods_share_one_label(client):
    """A client cannot grow the label set with a method per request (any token is a
    method to the server)."""
    for method in ("FOO1", "FOO2", "FOO3"):
        assert client.open("/health", method=method).status_code == 405
    client.open("/health", method="FOO4")
    text = client.get("/metrics").get_data(as_text=True)
    assert "FOO" not in text
    count = sample(text, "http_request_duration_seconds_count", method="OTHER", route="unmatched")
    assert count >= 4
    assert sample(text, "http_request_duration_seconds_count", method="GET") >= 1


def test_outbox_gauges_read_the_database(client, manage, on_behalf, db):
    from app.models import OutboxMessage, OutboxStatus

    client.post(BASE, json=coupon_body(code="EVT", allowAnonymous=True), headers=manage)
    # Events are written (tests set an EVENTS_URL) and kept pending: nothing delivers here.
    client.post(f"{BASE}/EVT/redemptions", json=order(customerNumber="C"), headers=on_behalf)
    pending = db.session.query(OutboxMessage).filter_by(status=OutboxStatus.PENDING).count()
    text = client.get("/metrics").get_data(as_text=True)
    assert pending >= 1
    assert sample(text, "outbox_pending_messages") == pending
    assert sample(text, "outbox_oldest_pending_age_seconds") >= 0
    assert sample(text, "outbox_dead_messages") == 0


@pytest.mark.parametrize("enabled", [False])
def test_metrics_can_be_kept_off_the_api(database_url, enabled):
    app = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "METRICS_ENABLED": enabled}
    )
    response = app.test_client().get("/metrics")
    assert response.status_code == 404


def test_holds_are_counted_by_outcome(client, manage, on_behalf):
    assert client.post(BASE, json=coupon_body(code="H1", maxRedemptions=1), headers=manage)
    before = client.get("/metrics").get_data(as_text=True)
    held = client.post(
        f"{BASE}/H1/reservations", json=order(customerNumber="A"), headers=on_behalf
    ).get_json()["id"]
    client.post(f"{BASE}/H1/reservations", json=order(customerNumber="B"), headers=on_behalf)
    client.delete(f"{BASE}/H1/reservations/{held}", headers=manage)
    again = client.post(
        f"{BASE}/H1/reservations", json=order(customerNumber="B"), headers=on_behalf
    ).get_json()["id"]
    client.post(f"{BASE}/H1/reservations/{again}/confirm", headers=manage)
    after = client.get("/metrics").get_data(as_text=True)

    def delta(outcome):
        name = "coupon_reservations_total"
        return sample(after, name, outcome=outcome, dialect="tenant") - sample(
            before, name, outcome=outcome, dialect="tenant"
        )

    assert [delta(o) for o in ("held", "coupon_redemptions_exceeded", "released")] == [2, 1, 1]
    assert delta("confirmed") == 1
