"""What two security probes found, each reproduced as the attack and kept fixed.

Hostile tenants (a campaign that poisons the worker), curious shoppers (other
people's idempotency keys, order ids and codes), guessing bots (limits keyed so
that they stop the guesser and not the shop), and the identities they abuse
(customer numbers, emails, clients, activation links).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from app.models import Campaign, CampaignStatus, OutboxMessage, OutboxStatus
from app.services import campaigns, outbox
from app.services.codes import BadCodeSpec, CodeSpec
from app.services.tenants import create_tenant
from tests.api.conftest import coupon_body, order
from tests.support import start_mock, stop

BASE = "/coupon/v1/acme"
TEMPLATE = {
    "discountType": "ABSOLUTE",
    "discountAbsolute": {"amount": 5, "currency": "USD"},
    "allowAnonymous": True,
    "maxRedemptions": 1,
}


# --- a campaign that cannot be stored stops no one ------------------------------------


@pytest.mark.parametrize("characters", ["Aß", "AＢ", "Aﬁ", "Ae\u0301"])
def test_a_charset_whose_codes_change_when_folded_is_refused_at_creation(
    client, manage, characters
):
    body = {
        "name": "poison",
        "count": 2,
        "codeConfig": {"pattern": "#" * 64, "characters": characters},
        "template": TEMPLATE,
    }
    response = client.post(f"{BASE}/campaigns", json=body, headers=manage)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["details"][0]["field"] == "codeConfig.characters"


def test_every_code_a_charset_can_draw_fits_the_registry():
    spec = CodeSpec.build(pattern="#" * 64, characters="AbÄöЖж")
    for code in spec.draw(200):
        assert len(code) == 64 and len(code.casefold()) == 64
    with pytest.raises(BadCodeSpec):
        CodeSpec.build(pattern="#" * 64, characters="Aß")


def _poisoned_campaign(db, tenant_id: int) -> int:
    """A campaign as an older version accepted it: 64 characters of "Aß" (ß folds to "ss",
    so a code's key outgrows its column)."""
    campaign = Campaign(
        tenant_id=tenant_id,
        name="poison",
        status=CampaignStatus.QUEUED,
        requested=50,
        code_config={"pattern": "#" * 64, "characters": "Aß"},
        template={"discount_type": "PERCENT", "discount_percentage": "10"},
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign.id


def test_a_poisoned_campaign_fails_alone_and_the_worker_serves_everyone_else(
    app, client, manage, db, backend
):
    if backend != "postgresql":
        pytest.skip("SQLite does not enforce the key's length: the poison is PostgreSQL's")
    other = create_tenant(slug="beta", currency="USD")
    poisoned = _poisoned_campaign(db, _tenant_id(db))
    healthy = campaigns.create_campaign(
        tenant=_tenant_ref(other["tenant"]),
        name="healthy",
        count=40,
        code_config={},
        template={"discount_type": "PERCENT", "discount_percentage": 10},
        settings=campaigns.current_settings(),
    ).id
    mock, url = start_mock()
    try:
        with outbox_app(app, url) as config:
            message = outbox.enqueue(
                tenant_id=None, destination=outbox.EMAIL_VERIFIER, payload={"x": 1}, path="/email"
            )
            db.session.commit()
            message_id = message.id
            with running_worker(app, config):
                wait_for(lambda: _status(db, healthy) == CampaignStatus.COMPLETED)
                wait_for(lambda: _delivered(db, message_id))
                wait_for(lambda: _status(db, poisoned) == CampaignStatus.FAILED)
        failed = db.session.get(Campaign, poisoned)
        db.session.refresh(failed)
        assert "database refused a code" in failed.failure_reason
    finally:
        stop(mock)


def test_a_job_that_raises_costs_its_turn_not_the_worker(app, db):
    turns = []

    def broken() -> bool:
        turns.append(1)
        raise RuntimeError("a defect in one job")

    stop_event = threading.Event()
    config = {**app.config, "OUTBOX_POLL_SECONDS": 0.01}

    def work():
        with app.app_context():
            outbox.run_worker(config, stop_event, housekeeping=lambda: None, jobs=(broken,))

    thread = threading.Thread(target=work)
    thread.start()
    try:
        wait_for(lambda: len(turns) >= 3)
        assert thread.is_alive()
    finally:
        stop_event.set()
        thread.join(10)


# --- helpers ----------------------------------------------------------------------------


def _tenant_id(db) -> int:
    from app.models import Tenant

    return db.session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))


def _tenant_ref(slug: str):
    from app.services.tenants import get_tenant

    return get_tenant(slug)


def _status(db, campaign_id: int) -> str:
    db.session.expire_all()
    status = db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    db.session.rollback()
    return status


def _delivered(db, message_id: str) -> bool:
    db.session.expire_all()
    status = db.session.scalar(select(OutboxMessage.status).where(OutboxMessage.id == message_id))
    db.session.rollback()
    return status == OutboxStatus.DELIVERED


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class outbox_app:
    """The app's config with the downstream URLs pointed at a mock."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url

    def __enter__(self) -> dict:
        return {
            **self.app.config,
            "EMAIL_VERIFIER_URL": self.url,
            "COUPON_REALIZER_URL": self.url,
            "OUTBOX_POLL_SECONDS": 0.05,
        }

    def __exit__(self, *exc):
        return False


class running_worker:
    """`run_worker` with the campaign job, in a thread, for the length of a block."""

    def __init__(self, app, config: dict):
        self.app, self.config = app, config
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        with self.app.app_context():
            owner = campaigns.new_owner()
            outbox.run_worker(
                self.config,
                self.stop,
                housekeeping=lambda: None,
                jobs=(lambda: campaigns.work(owner, self.config),),
            )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        return False
