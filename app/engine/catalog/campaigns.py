"""Campaigns: a named batch of unique codes that share one coupon template.

A campaign's codes are rows of the `codes` registry (tenant, case-folded key,
campaign, position), written in bulk at close to COPY speed. The first time a
code is looked up it becomes a coupon row carrying the template
(`materialize`), and from then on validation, redemption and the promo check
treat it like any other coupon. Changing the template or deactivating the
campaign therefore touches the campaign row and only the codes already used.

Generation (`generation`) and CSV export and import (`transfer`) are jobs of
their own; this module creates, reads and changes campaigns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, func, select, update

from app.database import paged, read, utcnow
from app.engine.catalog import lookup
from app.engine.codes import BadCodeSpec, CodeSpec
from app.engine.definition import (
    REWRITTEN,
    checked_template,
    currency_of,
    row_values,
    template_definition,
    template_json,
)
from app.engine.money import MAX_AMOUNT
from app.engine.tenants import TenantRef
from app.engine.uow import stale_reads, unit_of_work
from app.engine.usage import budgets
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.models import (
    Campaign,
    CampaignStatus,
    Code,
    Coupon,
    Redemption,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    batch_size: int
    lease_seconds: float
    max_codes: int
    capacity_factor: int

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(
            batch_size=config["CAMPAIGN_BATCH_SIZE"],
            lease_seconds=config["CAMPAIGN_LEASE_SECONDS"],
            max_codes=config["CAMPAIGN_MAX_CODES"],
            capacity_factor=config["CAMPAIGN_CAPACITY_FACTOR"],
        )


class CampaignNotFound(NotFound):
    type, message = "campaign_not_found", "Campaign not found"


class CampaignExhausted(Conflict):
    type, message = "campaign_exhausted", "The campaign has no code left to issue"


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details=[{"field": field, "type": "invalid", "message": message}])


# --- create, read, change ------------------------------------------------------------------


def create_campaign(
    *,
    tenant: TenantRef,
    name: str,
    count: int | None,
    code_config: dict,
    template: dict,
    settings: Settings,
    owner: str | None = None,
    budget: dict | None = None,
) -> Campaign:
    """Check and queue a campaign (202); `owner` generates it itself (the CLI)."""
    if count is not None and not 1 <= count <= settings.max_codes:
        raise invalid(
            "count",
            f"Must be 1 to {settings.max_codes:,}; leave it out for a campaign filled by import",
        )
    try:
        spec = CodeSpec.build(**code_config)
    except BadCodeSpec as error:
        raise invalid(f"codeConfig.{error.field}", str(error)) from None
    definition = checked_template(template, set(template))
    check_budget(budget, definition)
    with unit_of_work():
        if count:
            existing = db.session.scalar(
                select(func.count()).select_from(Code).where(Code.tenant_id == tenant.id)
            )
            needed = settings.capacity_factor * (count + existing)
            if spec.space < needed:
                raise invalid(
                    "codeConfig",
                    f"The pattern makes {spec.space:,} distinct codes; {count:,} asked plus "
                    f"{existing:,} existing codes need at least {needed:,} "
                    f"({settings.capacity_factor} times as many) to be drawn without long "
                    "collision retries: lengthen the pattern or widen the charset",
                )
        now = utcnow()
        campaign = Campaign(
            tenant_id=tenant.id,
            name=name,
            status=CampaignStatus.QUEUED if count else CampaignStatus.COMPLETED,
            active=True,
            deleted=False,
            requested=count or 0,
            generated=0,
            imported=0,
            code_config={"pattern": spec.pattern, "characters": spec.charset},
            template=template_json(definition),
            positions=0,
            issue_cursor=0,
            finished_at=None if count else now,
        )
        if count and owner:
            campaign.status = CampaignStatus.GENERATING
            campaign.lease_owner = owner
            campaign.lease_until = now + timedelta(seconds=settings.lease_seconds)
        set_budget(campaign, budget)
        db.session.add(campaign)
        db.session.flush()
    return campaign


def get_campaign(*, tenant: TenantRef, campaign_id: int, for_update: bool = False) -> Campaign:
    query = select(Campaign).where(
        Campaign.tenant_id == tenant.id, Campaign.id == campaign_id, Campaign.deleted.is_(False)
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    campaign = db.session.scalar(query)
    if campaign is None:
        raise CampaignNotFound()
    return campaign


def list_campaigns(*, tenant: TenantRef, page: int, page_size: int) -> tuple[list[Campaign], int]:
    """One page of the tenant's campaigns in creation order, and the count."""
    query = (
        select(Campaign)
        .where(Campaign.tenant_id == tenant.id, Campaign.deleted.is_(False))
        .order_by(Campaign.id)
    )
    # A list may be a little stale: it reads the replica when there is one.
    return stale_reads(lambda session: paged(session, query, page, page_size))


def update_campaign(*, tenant: TenantRef, campaign_id: int, changes: dict) -> Campaign:
    """Rename, (de)activate, or change the template of every code at once.

    The campaign row is locked (after its codes' rows, when it is being budgeted), so
    a generation batch (which holds the same lock) writes its codes either wholly
    before or wholly after the change.
    """
    with unit_of_work():
        if (
            "budget" in changes
            and not get_campaign(tenant=tenant, campaign_id=campaign_id).budgeted
        ):
            _hold_codes(campaign_id)
        campaign = get_campaign(tenant=tenant, campaign_id=campaign_id, for_update=True)
        if "name" in changes:
            campaign.name = changes["name"]
        codes_change = False
        if "template" in changes:
            definition = checked_template(
                {**template_definition(campaign), **changes["template"]}, set(changes["template"])
            )
            campaign.template = template_json(definition)
            codes_change = True
        if "budget" in changes:
            set_budget(campaign, changes["budget"])
        if "budget" in changes or "template" in changes:
            check_budget(_budget_of(campaign), template_definition(campaign))
        if "active" in changes and changes["active"] != campaign.active:
            campaign.active = changes["active"]
            codes_change = True
        if codes_change:
            values = row_values(campaign)
            db.session.execute(
                update(Coupon)
                .where(Coupon.campaign_id == campaign.id, Coupon.deleted.is_(False))
                .values({name: values[name] for name in REWRITTEN})
                .execution_options(synchronize_session=False)
            )
    return campaign


def _hold_codes(campaign_id: int) -> None:
    """A campaign about to be budgeted: its codes' rows locked (in id order, before the
    campaign's: the order every use takes) and marked changed, so a use decided on the
    unbudgeted campaign fails its guard and decides again under the locks, where the
    budget counts it; uses already written are in the count the budget starts from."""
    db.session.execute(
        select(Coupon.id)
        .where(Coupon.campaign_id == campaign_id)
        .order_by(Coupon.id)
        .with_for_update()
    ).all()
    db.session.execute(
        update(Coupon)
        .where(Coupon.campaign_id == campaign_id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def check_budget(budget: dict | None, template: dict) -> None:
    """A campaign's money budget is positive, and in its codes' currency when they have one."""
    money = (budget or {}).get("max_discount_total")
    if not money:
        return
    field = "budget.maxDiscountTotal"
    if not 0 < money["amount"] <= MAX_AMOUNT:
        raise invalid(field, "Must be positive and not absurd")
    currency = currency_of(template)
    if currency and money["currency"] != currency:
        raise invalid(field, f"Must be in the codes' currency, {currency}")


def _budget_of(campaign: Campaign) -> dict:
    if campaign.budget_amount is None:
        return {}
    money = {"amount": campaign.budget_amount, "currency": campaign.budget_currency}
    return {"max_discount_total": money}


def set_budget(campaign: Campaign, budget: dict | None) -> None:
    """Set (None: remove) the budget every code shares, under the campaign's row lock. A
    campaign that had none, or had its money in another currency, counts anew what its
    codes' redemptions used (money in the budget's currency only)."""
    budget = budget or {}
    counted_in = (campaign.budgeted, campaign.budget_currency)
    money = budget.get("max_discount_total") or {}
    campaign.budget_max_redemptions = budget.get("max_redemptions")
    campaign.budget_amount = money.get("amount")
    campaign.budget_currency = money.get("currency")
    campaign.budget_max_per_customer = budget.get("max_redemptions_per_customer")
    campaign.budget_exhausted_at = None  # a changed budget's exhaustion is news again
    if not campaign.budgeted or campaign.id is None:
        return
    if counted_in != (True, campaign.budget_currency):
        campaign.redemptions_used, campaign.discount_used = budgets.kept(
            db.session, Coupon.campaign_id == campaign.id, currency=campaign.budget_currency
        )


def delete_campaign(*, tenant: TenantRef, campaign_id: int) -> None:
    """Delete the campaign and soft-delete its codes (they stay taken, like any coupon's)."""
    with unit_of_work():
        campaign = get_campaign(tenant=tenant, campaign_id=campaign_id, for_update=True)
        campaign.deleted = True
        campaign.lease_owner = campaign.lease_until = None
        db.session.execute(
            update(Coupon)
            .where(Coupon.campaign_id == campaign.id, Coupon.deleted.is_(False))
            .values(deleted=True, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def retry_campaign(*, tenant: TenantRef, campaign_id: int) -> Campaign:
    """Queue a failed campaign again; it goes on from the codes it already has."""
    with unit_of_work():
        campaign = get_campaign(tenant=tenant, campaign_id=campaign_id, for_update=True)
        if campaign.status != CampaignStatus.FAILED:
            raise Conflict(f"Only a failed campaign can be retried (this one is {campaign.status})")
        campaign.status = CampaignStatus.QUEUED
        campaign.failure_reason = None
        campaign.finished_at = None
    return campaign


@dataclass(frozen=True)
class Totals:
    codes: int
    codes_used: int
    redemptions: int
    discounts: list[dict]


def totals(campaign: Campaign) -> Totals:
    """Codes, codes used at least once, redemptions, and the discount given per currency."""
    used, redemptions = read(
        db.session,
        select(
            func.coalesce(func.sum(case((Coupon.redemption_count > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(Coupon.redemption_count), 0),
        ).where(Coupon.campaign_id == campaign.id),
    )[0]
    given = read(
        db.session,
        select(
            Redemption.discount_currency,
            # What orders kept: a rollback takes back its part (all of it, when full).
            func.sum(Redemption.discount_amount - func.coalesce(Redemption.rolled_back_amount, 0)),
        )
        .join(Coupon, Coupon.id == Redemption.coupon_id)
        .where(Coupon.campaign_id == campaign.id, Redemption.discount_amount.is_not(None))
        .group_by(Redemption.discount_currency)
        .order_by(Redemption.discount_currency),
    )
    return Totals(
        # Kept in the transactions that register codes: no count over the registry.
        codes=campaign.generated + campaign.imported,
        codes_used=int(used),
        redemptions=int(redemptions),
        discounts=[{"amount": amount, "currency": currency} for currency, amount in given],
    )


def issue_next(campaign_id: int, tenant: TenantRef) -> Coupon:
    """The campaign's next code not yet given out, as a coupon (in the caller's
    transaction; the campaign row is locked until it ends)."""
    campaign = db.session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.tenant_id == tenant.id)
        .with_for_update()
    )
    if campaign is None or campaign.deleted or not campaign.active:
        raise CampaignExhausted("The discount's campaign is deleted or inactive")
    code = db.session.execute(
        select(Code.position, Code.code)
        .where(Code.campaign_id == campaign.id, Code.position > campaign.issue_cursor)
        .order_by(Code.position)
        .limit(1)
    ).first()
    if code is None:
        raise CampaignExhausted()
    campaign.issue_cursor = code.position
    return lookup.find(tenant=tenant, code=code.code)  # made a coupon by that first lookup
