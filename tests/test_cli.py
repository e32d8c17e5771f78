"""`flask tenant create`: output, failures, and secrets hashed at rest."""

import json
from pathlib import Path

from sqlalchemy import select

from app.models import Client, Tenant
from app.security import hash_token


def test_create_prints_one_json_line_with_secrets(runner, db):
    result = runner.invoke(args=["tenant", "create", "shop_1", "--currency", "usd"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {"tenant", "api_token", "client_id", "client_secret"}
    assert created["tenant"] == "shop_1"
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "shop_1"))
    assert tenant.currency == "USD"
    assert tenant.api_token_hash == hash_token(created["api_token"])
    client = db.session.scalar(select(Client).where(Client.client_id == created["client_id"]))
    assert client.tenant_id == tenant.id
    assert client.secret_hash == hash_token(created["client_secret"])
    assert created["client_secret"] not in client.secret_hash


def test_create_with_given_token(runner):
    result = runner.invoke(args=["tenant", "create", "test_brand", "--api-token", "secret123"])
    assert result.exit_code == 0
    assert json.loads(result.output)["api_token"] == "secret123"


def test_bad_slug_is_a_one_line_error(runner):
    for slug in ("Bad Slug!", "x", "-leading", "UPPER"):
        result = runner.invoke(args=["tenant", "create", "--", slug])
        assert result.exit_code == 1
        assert result.output.count("\n") == 1 and result.output.startswith("error:")
        assert "Traceback" not in result.output


def test_bad_currency_is_refused(runner):
    result = runner.invoke(args=["tenant", "create", "shop_2", "--currency", "XXQ"])
    assert result.exit_code == 1 and "currency" in result.output


def test_duplicate_tenant_is_refused(runner):
    assert runner.invoke(args=["tenant", "create", "dup"]).exit_code == 0
    result = runner.invoke(args=["tenant", "create", "dup"])
    assert result.exit_code == 1
    assert "exists" in result.output and "Traceback" not in result.output
    ok = runner.invoke(args=["tenant", "create", "dup", "--exists-ok"])
    assert ok.exit_code == 0


def test_add_client_prints_new_credentials(runner):
    first = json.loads(runner.invoke(args=["tenant", "create", "shop_3"]).output)
    result = runner.invoke(args=["tenant", "add-client", "shop_3"])
    second = json.loads(result.output)
    assert second["client_id"] != first["client_id"]
    assert runner.invoke(args=["tenant", "add-client", "nope"]).exit_code == 1


def test_plaintext_secrets_are_not_stored(runner, db, backend, database_url):
    created = json.loads(runner.invoke(args=["tenant", "create", "hashed"]).output)
    db.session.commit()
    if backend == "sqlite":
        path = Path(database_url.removeprefix("sqlite:///"))
        raw = path.read_bytes()
        assert hash_token(created["api_token"]).encode() in raw
        assert created["api_token"].encode() not in raw
        assert created["client_secret"].encode() not in raw
    rows = db.session.execute(
        select(Tenant.__table__, Client.__table__).join_from(Tenant.__table__, Client.__table__)
    ).all()
    dumped = repr(rows)
    assert created["api_token"] not in dumped
    assert created["client_secret"] not in dumped


def test_idempotency_purge_removes_only_expired_records(runner, db, tenant):
    from datetime import timedelta

    from app.database import utcnow
    from app.models import IdempotencyRecord, Tenant

    tenant_id = db.session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
    now = utcnow()
    for key, age in (("old-1", 25), ("old-2", 48), ("fresh", 23)):
        db.session.add(
            IdempotencyRecord(
                tenant_id=tenant_id,
                key=key,
                request_hash="0" * 64,
                status_code=201,
                created_at=now - timedelta(hours=age),
            )
        )
    db.session.commit()
    result = runner.invoke(args=["idempotency", "purge"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "purged 2 idempotency records"
    assert db.session.scalars(select(IdempotencyRecord.key)).all() == ["fresh"]


def test_outbox_dispatch_once_attempts_what_is_due_and_exits(app, runner, db):
    from app.engine import outbox
    from app.models import OutboxMessage
    from tests.support import free_port

    app.config["COUPON_REALIZER_URL"] = f"http://127.0.0.1:{free_port()}"  # nobody listens
    outbox.enqueue(tenant_id=None, destination=outbox.COUPON_REALIZER, payload={"n": 1})
    db.session.commit()
    result = runner.invoke(args=["outbox", "dispatch", "--once"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    [message] = db.session.query(OutboxMessage).all()
    assert message.status == "pending" and message.attempts == 1
    assert "ConnectionError" in message.last_error


def test_configure_sets_codes_per_order(runner, db):
    assert runner.invoke(args=["tenant", "create", "shop_4"]).exit_code == 0
    result = runner.invoke(args=["tenant", "configure", "shop_4", "--max-codes-per-order", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"tenant": "shop_4", "max_codes_per_order": 3}
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "shop_4"))
    assert tenant.max_codes_per_order == 3
    for bad in ("0", "101"):
        refused = runner.invoke(
            args=["tenant", "configure", "shop_4", "--max-codes-per-order", bad]
        )
        assert refused.exit_code == 1 and "between 1 and 100" in refused.output
    assert runner.invoke(args=["tenant", "configure", "nope"]).exit_code == 1


def test_outbox_retry_dead_requeues_by_destination_and_time(runner, db):
    from app.engine import outbox
    from app.models import OutboxMessage, OutboxStatus

    for destination in (outbox.EVENTS, outbox.COUPON_REALIZER):
        message_id = outbox.enqueue(tenant_id=None, destination=destination, payload={})
        db.session.get(OutboxMessage, message_id).status = OutboxStatus.DEAD
    db.session.commit()
    later = runner.invoke(args=["outbox", "retry-dead", "--since", "2999-01-01"])
    assert later.output.strip() == "0 dead messages are due again"
    unknown = runner.invoke(args=["outbox", "retry-dead", "--destination", "mars"])
    assert unknown.exit_code != 0 and "no destination 'mars'" in unknown.output
    done = runner.invoke(args=["outbox", "retry-dead", "--destination", "events"])
    assert done.output.strip() == "1 dead messages are due again"
    db.session.expire_all()
    statuses = {m.destination: m.status for m in db.session.query(OutboxMessage)}
    assert statuses == {"events": "pending", "coupon_realizer": "dead"}
