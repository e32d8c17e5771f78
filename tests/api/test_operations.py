"""What an operator relies on: readiness that knows the schema, settings that refuse to
start wrong, key rotation, secrets kept out of logs, CORS, and an outbox that only
holds what can be delivered."""

import json
import os
import stat

import pytest
from flask_migrate import downgrade, upgrade

from app import create_app
from app.extensions import db
from app.models import OutboxMessage, OutboxStatus
from tests.api.conftest import coupon_body, order
from tests.conftest import BASE_CONFIG
from tests.support import ROOT

BASE = "/coupon/v1/acme/coupons"


# --- readiness ---------------------------------------------------------------------------


def test_ready_names_the_revision_it_waits_for(tmp_path):
    fresh = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/r.db"})
    never = fresh.test_client().get("/ready")
    assert never.status_code == 503
    body = never.get_json()
    assert body["database"] == "not_migrated" and body["revision"] is None
    head = body["expected"]
    newest = sorted((ROOT / "migrations" / "versions").glob("0*.py"))[-1]
    assert newest.name.startswith(head + "_")  # the newest migration in the tree
    assert fresh.test_client().get("/health").status_code == 200  # liveness does not care
    with fresh.app_context():
        upgrade()
        assert fresh.test_client().get("/ready").get_json() == {
            "status": "ok",
            "database": "ok",
            "revision": head,
            "expected": head,
        }
        downgrade(revision="-1")
        behind = fresh.test_client().get("/ready")
        assert behind.status_code == 503 and behind.get_json()["revision"] not in (None, head)
        db.engine.dispose()


def test_a_draining_host_is_not_ready_but_still_serves(client, monkeypatch, tmp_path):
    from app import draining

    server = _FakeMaster()
    monkeypatch.setenv(draining.FLAG_VARIABLE, "")  # restored after the test
    monkeypatch.setattr(draining.tempfile, "mkdtemp", lambda prefix: str(tmp_path))
    draining.install(server, 0.01)
    monkeypatch.setattr(draining.time, "sleep", lambda _: server.answers.append(ready()))

    def ready():
        answer = client.get("/ready")
        return answer.status_code, answer.get_json()["status"]

    assert ready() == (200, "ok")
    server.handle_term()  # SIGTERM: drain (asked /ready meanwhile), then the real stop
    assert server.answers == [(503, "draining")] and server.stopped
    assert ready() == (200, "ok")  # the marker is gone with the stop
    assert client.get("/health").status_code == 200


class _FakeMaster:
    """What `draining.install` uses of gunicorn's arbiter."""

    def __init__(self):
        self.answers, self.stopped = [], False
        self.log = type("Log", (), {"info": staticmethod(lambda *args: None)})()

    def handle_term(self):
        self.stopped = True


# --- settings that refuse to start -------------------------------------------------------


@pytest.mark.parametrize("typo", ["prod", "Production", "staging", ""])
def test_an_unknown_app_env_refuses_to_start(typo):
    with pytest.raises(SystemExit, match="development, testing, production"):
        create_app({**BASE_CONFIG, "APP_ENV": typo})


PRODUCTION = {
    **BASE_CONFIG,
    "APP_ENV": "production",
    "TESTING": False,
    "SECRET_KEY": "k" * 32,
    "PUBLIC_BASE_URL": "https://coupons.example.com",
    "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none",
    "CORS_ORIGINS": [],
}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SQLALCHEMY_DATABASE_URI": "sqlite:///coupons.db"}, "not SQLite"),
        ({"SECRET_KEY": "k" * 31}, "at least 32 characters"),
        ({"SECRET_KEY_FALLBACKS": ["short"]}, "SECRET_KEY_FALLBACKS"),
        ({"CORS_ORIGINS": ["*"]}, "CORS_ORIGINS"),
        ({"WEBHOOK_ALLOW_PRIVATE": True}, "WEBHOOK_ALLOW_PRIVATE"),
    ],
)
def test_production_refuses_what_cannot_be_safe(change, named):
    with pytest.raises(SystemExit, match=named):
        create_app({**PRODUCTION, **change})


def test_production_refuses_the_development_api_token(app):
    from app.engine.tenants import create_tenant
    from app.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        create_tenant(slug="shop", api_token="secret123", production=True)
    assert create_tenant(slug="shop", api_token="secret123", production=False)["tenant"] == "shop"


def test_tenant_secrets_go_to_a_private_file_not_the_log(app, runner, tmp_path):
    target = tmp_path / "tenant.json"
    result = runner.invoke(args=["tenant", "create", "shop", "--output", str(target)])
    assert result.exit_code == 0, result.output
    secrets = json.loads(target.read_text())
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert secrets["client_secret"] not in result.output
    assert secrets["api_token"] not in result.output and str(target) in result.output


# --- rotating SECRET_KEY -----------------------------------------------------------------


def test_tokens_of_a_previous_key_live_while_it_is_a_fallback(app, tenant, manage, another_app):
    old = app.config["SECRET_KEY"]
    new = "n" * 40
    rotated = another_app(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[old])
    assert rotated.test_client().get(BASE, headers=manage).status_code == 200
    dropped = another_app(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[])
    refused = dropped.test_client().get(BASE, headers=manage)
    assert refused.status_code == 401 and refused.get_json()["type"] == "invalid_token"
    # New tokens are signed with the new key only.
    fresh = rotated.test_client().post(
        "/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant["client_id"],
            "client_secret": tenant["client_secret"],
        },
    )
    token = {"Authorization": "Bearer " + fresh.get_json()["access_token"]}
    assert dropped.test_client().get(BASE, headers=token).status_code == 200
    assert another_app(SECRET_KEY=old).test_client().get(BASE, headers=token).status_code == 401


# --- CORS --------------------------------------------------------------------------------


def test_browsers_get_cors_answers_in_development(app, client, manage, another_app):
    cors = another_app(CORS_ORIGINS=["*"]).test_client()
    preflight = cors.options(
        BASE,
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "idempotency-key", "content-type"} <= set(allowed.split(", "))
    real = cors.post(
        BASE,
        json=coupon_body(code="CORS1"),
        headers={**manage, "Origin": "https://shop.example"},
    )
    assert real.status_code == 201 and real.headers["Access-Control-Allow-Origin"] == "*"
    exposed = set(real.headers["Access-Control-Expose-Headers"].split(", "))
    assert {"Location", "Idempotent-Replayed", "Retry-After", "X-Total-Count"} <= exposed
    # A server calling (no Origin) is not a browser: no CORS headers to read.
    server = cors.get(BASE, headers=manage)
    assert server.status_code == 200 and "Access-Control-Allow-Origin" not in server.headers
    assert "Origin" in server.headers["Vary"]  # so no cache serves it to a page


def test_only_listed_origins_in_production_style_settings(app, manage, another_app):
    listed = another_app(CORS_ORIGINS=["https://shop.example"]).test_client()
    asked = {"Access-Control-Request-Method": "POST"}
    ok = listed.options(BASE, headers={"Origin": "https://shop.example", **asked})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    other = listed.options(BASE, headers={"Origin": "https://evil.example", **asked})
    assert "Access-Control-Allow-Origin" not in other.headers
    closed = another_app(CORS_ORIGINS=[]).test_client()
    none = closed.get(BASE, headers={**manage, "Origin": "https://shop.example"})
    assert none.status_code == 200 and "Access-Control-Allow-Origin" not in none.headers


# --- events and the outbox ---------------------------------------------------------------


def test_events_with_nowhere_to_go_are_not_queued(app, manage, on_behalf, another_app):
    quiet = another_app(EVENTS_URL=None).test_client()
    assert quiet.post(BASE, json=coupon_body(code="QUIET"), headers=manage).status_code == 201
    redeemed = quiet.post(f"{BASE}/QUIET/redemptions", json=order(), headers=on_behalf)
    assert redeemed.status_code == 201
    assert db.session.query(OutboxMessage).count() == 0
    loud = another_app(EVENTS_URL="http://127.0.0.1:9/events").test_client()
    again = loud.post(f"{BASE}/QUIET/redemptions", json=order(orderId="o-2"), headers=on_behalf)
    assert again.status_code == 201
    assert db.session.query(OutboxMessage).count() == 1


def test_housekeeping_purges_delivered_and_dead_messages(app):
    from datetime import timedelta

    from app.database import utcnow
    from app.engine import outbox

    old = utcnow() - timedelta(days=8)
    for status, delivered in [
        (OutboxStatus.DELIVERED, old),
        (OutboxStatus.DEAD, None),
        (OutboxStatus.PENDING, None),
    ]:
        db.session.add(
            OutboxMessage(
                **{
                    **outbox.message_values(
                        tenant_id=None, destination=outbox.EVENTS, payload={"n": status}
                    ),
                    "status": status,
                    "delivered_at": delivered,
                    "next_attempt_at": old,
                }
            )
        )
    db.session.commit()
    assert outbox.purge_finished(7 * 24 * 3600) == 2
    assert [m.status for m in db.session.query(OutboxMessage)] == [OutboxStatus.PENDING]
