"""Campaign generation: a resumable job done in batches.

Each batch is one transaction that locks the campaign row, registers codes and
advances `generated`, so a crash loses at most the batch in flight and another
worker resumes after the lease. Codes go to the registry by COPY (`bulk_codes`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from app.database import utcnow
from app.engine import jobs, webhooks
from app.engine.canonical import code_key
from app.engine.catalog import bulk_codes
from app.engine.catalog.campaigns import CampaignNotFound, Settings
from app.engine.codes import CodeSpec
from app.engine.uow import OUTAGE_ERRORS, unit_of_work
from app.extensions import db
from app.models import (
    Campaign,
    CampaignStatus,
)

log = logging.getLogger(__name__)

# Rounds in a row that find no free code before a batch gives up (space exhausted).
MAX_EMPTY_ROUNDS = 3


@dataclass(frozen=True)
class Progress:
    campaign_id: int
    generated: int
    requested: int
    status: str


class _Exhausted(Exception):
    pass


def _claim(owner: str, settings: Settings, campaign_id: int | None) -> Campaign | None:
    return jobs.lease_next(
        Campaign,
        waiting=CampaignStatus.QUEUED,
        working=CampaignStatus.GENERATING,
        owner=owner,
        settings=settings,
        row_id=campaign_id,
        where=(Campaign.deleted.is_(False),),
    )


def generate_step(
    *, owner: str, settings: Settings, campaign_id: int | None = None
) -> Progress | None:
    """Generate one batch of the next campaign that needs it; None when none does.

    A database error propagates (the lease runs out and the job resumes); a space
    too small to find free codes in marks the campaign failed, with the reason.
    """
    campaign = None
    try:
        with unit_of_work():
            campaign = _claim(owner, settings, campaign_id)
            if campaign is None:
                return None
            quota = min(campaign.requested - campaign.generated, settings.batch_size)
            if quota > 0:
                campaign.generated += _draw_into(campaign, quota)
            if campaign.generated >= campaign.requested:
                _COLLISIONS.pop(campaign.id, None)
                campaign.status = CampaignStatus.COMPLETED
                campaign.finished_at = utcnow()
                campaign.lease_owner = campaign.lease_until = None
                _announce(campaign, "campaign.completed")
            return Progress(campaign.id, campaign.generated, campaign.requested, campaign.status)
    except _Exhausted as error:
        return _fail(campaign.id, str(error))
    except OUTAGE_ERRORS:
        raise  # an outage, not the campaign's fault: the lease runs out, the job resumes
    except Exception as error:
        # The campaign's own data (a value the database refuses) or a defect: this
        # campaign fails with the reason, and the worker goes on with everyone else's.
        if campaign is None:
            raise
        log.exception("campaign generation failed", extra={"campaign_id": campaign.id})
        return _fail(campaign.id, f"Generation failed: {jobs.failure_text(error)}")


# Batches per campaign whose COPY hit a taken code, in this process. In a sparse space a
# collision is rare (about one per million codes of 8 readable characters) and costs one
# COPY, the batch goes on through the staged path and the next one is fast again; a
# campaign that keeps colliding (a dense space) takes the staged path from then on.
_COLLISIONS: Counter[int] = Counter()
MAX_FAST_COLLISIONS = 3


def _draw_into(campaign: Campaign, quota: int) -> int:
    """Register `quota` new codes, drawing again for collisions; returns how many."""
    spec = CodeSpec(campaign.code_config["pattern"], campaign.code_config["characters"])
    connection = db.session.connection()
    fast = (
        connection.dialect.name == "postgresql" and _COLLISIONS[campaign.id] < MAX_FAST_COLLISIONS
    )
    added, empty_rounds = 0, 0
    while added < quota:
        missing = quota - added
        if fast:
            codes = list({code_key(code): code for code in spec.draw(missing)}.values())
            if bulk_codes.copy_codes(
                connection, campaign.tenant_id, campaign.id, campaign.positions + 1, codes
            ):
                campaign.positions += len(codes)
                added += len(codes)
                continue
            _COLLISIONS[campaign.id] += 1
            fast = False
        # A few spare candidates, so a round rarely ends short because of collisions.
        drawn = spec.draw(missing + missing // 20 + 16)
        candidates = {code_key(code): code for code in drawn}
        bulk_codes.stage(
            connection, ((i, code, key) for i, (key, code) in enumerate(candidates.items(), 1))
        )
        inserted = bulk_codes.insert_staged(
            connection, campaign.tenant_id, campaign.id, campaign.positions, missing
        )
        campaign.positions += len(candidates)
        added += len(inserted)
        empty_rounds = 0 if inserted else empty_rounds + 1
        if empty_rounds >= MAX_EMPTY_ROUNDS:
            total = campaign.generated + added
            raise _Exhausted(
                f"No free code found in {MAX_EMPTY_ROUNDS} rounds of drawing: the pattern's "
                f"space ({spec.space:,}) is nearly used up; {total:,} of "
                f"{campaign.requested:,} codes generated"
            )
    return added


def failure_reason(campaign_id: int) -> str | None:
    campaign = db.session.get(Campaign, campaign_id)
    return campaign.failure_reason if campaign else None


def _fail(campaign_id: int, reason: str) -> Progress:
    with unit_of_work():
        campaign = db.session.get(Campaign, campaign_id)
        campaign.status = CampaignStatus.FAILED
        campaign.failure_reason = reason
        campaign.finished_at = utcnow()
        campaign.lease_owner = campaign.lease_until = None
        _announce(campaign, "campaign.failed")
        return Progress(campaign.id, campaign.generated, campaign.requested, campaign.status)


def _announce(campaign: Campaign, event_type: str) -> None:
    payload = {
        "campaignId": campaign.id,
        "name": campaign.name,
        "generated": campaign.generated,
        "failureReason": campaign.failure_reason,
    }
    webhooks.emit(db.session(), campaign.tenant_id, event_type, payload)


def generate(
    campaign_id: int,
    *,
    owner: str,
    settings: Settings,
    progress: Callable[[Progress], object] = lambda _: None,
) -> Progress:
    """Generate a campaign to the end in this process (the CLI); returns the last progress."""
    while True:
        step = generate_step(owner=owner, settings=settings, campaign_id=campaign_id)
        if step is None:
            raise CampaignNotFound("Campaign not found or generated by another process")
        progress(step)
        if step.status != CampaignStatus.GENERATING:
            return step


def work(owner: str, config) -> bool:
    """One batch of whichever campaign needs it (the worker's turn); True if it did one."""
    return generate_step(owner=owner, settings=Settings.from_config(config)) is not None
