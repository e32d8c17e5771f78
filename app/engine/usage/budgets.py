"""Budgets: what a coupon's own budget and its campaign's have left, and the writes that
spend and give back what the campaign's counts.

A coupon's budget caps the discounts its redemptions and live holds grant. Its
redemptions' discounts are summed on the coupon row by the same statement that takes
the use (`ledger.bump_statement`: guarded on the hot path, so the budget is exact
there too); live holds reserve theirs until they are confirmed, released or expire,
so what they hold is read, never stored. A campaign's budget (redemptions, money, uses
per customer) is shared by all its codes: a use of such a code is decided and written
under the campaign's row lock, taken after its coupons' (carts and returns lock
coupons in id order, then campaigns in id order: one order for all, no deadlock), and
the campaign row counts what was used.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from app.database import utcnow
from app.engine import outbox, webhooks
from app.engine.canonical import code_key
from app.engine.rules import BudgetLeft
from app.engine.uow import unit_of_work
from app.engine.usage.state import COUPONS, HOLDS, REDEMPTIONS, C, CouponState, H, R
from app.extensions import db
from app.models import Campaign, Hold, HoldStatus, RedemptionStatus

CAMPAIGNS = Campaign.__table__
K = CAMPAIGNS.c
ZERO = Decimal(0)

CAMPAIGN_LOCK = select(K.id).where(K.id == bindparam("campaign_id")).with_for_update()
_CAMPAIGN = select(
    K.budget_max_redemptions,
    K.budget_amount,
    K.budget_currency,
    K.budget_max_per_customer,
    K.redemptions_used,
    K.discount_used,
).where(K.id == bindparam("campaign_id"))


def _live(*where):
    return (H.status == HoldStatus.HELD, H.expires_at > bindparam("now"), *where)


# What live holds keep of a budget in `currency` (None: any): a hold in another currency
# keeps none of its money (it still keeps its use).
_CURRENCY = bindparam("currency", type_=H.discount_currency.type)
_HELD_MONEY = func.coalesce(
    func.sum(
        case(
            (or_(_CURRENCY.is_(None), H.discount_currency == _CURRENCY), H.discount_amount),
            else_=0,
        )
    ),
    0,
)
# Live holds of one coupon, and of every coupon of a campaign: (count, discount).
_COUPON_HELD = select(func.count(), _HELD_MONEY).where(
    *_live(H.coupon_id == bindparam("coupon_id"))
)
_CAMPAIGN_HELD = (
    select(func.count(), _HELD_MONEY)
    .select_from(HOLDS.join(COUPONS, C.id == H.coupon_id))
    .where(*_live(C.campaign_id == bindparam("campaign_id")))
)
# A customer's uses across a campaign: redemptions kept and live holds.
_CUSTOMER_REDEEMED = (
    select(func.count())
    .select_from(REDEMPTIONS.join(COUPONS, C.id == R.coupon_id))
    .where(
        R.tenant_id == bindparam("tenant_id"),
        R.customer_number == bindparam("customer"),
        R.status != RedemptionStatus.ROLLED_BACK,
        C.campaign_id == bindparam("campaign_id"),
    )
)
_CUSTOMER_HELD = (
    select(func.count())
    .select_from(HOLDS.join(COUPONS, C.id == H.coupon_id))
    .where(
        *_live(
            H.customer_number == bindparam("customer"), C.campaign_id == bindparam("campaign_id")
        )
    )
)


def budgeted(state: CouponState) -> bool:
    return state.budget_amount is not None or state.campaign_budgeted


def lock_campaigns(session: Session, states) -> None:
    """Lock the budgeted campaigns of these coupons, in id order (after their coupons)."""
    ids = sorted({s.campaign_id for s in states if s.campaign_budgeted})
    for campaign_id in ids:
        session.execute(CAMPAIGN_LOCK, {"campaign_id": campaign_id})


def left(
    session: Session,
    state: CouponState,
    *,
    tenant_id: int,
    customer: str | None,
    now: datetime,
) -> BudgetLeft | None:
    """What the coupon's budgets leave for one more use (None: it has none). Exact under
    the locks (the coupon's, and the campaign's when it has a budget); a best reading
    otherwise. (A use that confirms the order's own hold has what the hold reserved:
    `with_own_hold` counts it as left, so only more than the hold is asked for.)"""
    if not budgeted(state):
        return None
    discount: Decimal | None = None
    discount_from = "coupon"
    currency = state.budget_currency
    if state.budget_amount is not None:
        held = ZERO
        if state.holds_live(now):
            params = {"coupon_id": state.id, "now": now, "currency": currency}
            held = session.execute(_COUPON_HELD, params).one()[1]
        discount = state.budget_amount - state.discount_used - Decimal(held)
    redemptions = customer_uses = None
    if state.campaign_budgeted:
        params = {
            "campaign_id": state.campaign_id,
            "now": now,
            "tenant_id": tenant_id,
            "customer": customer,
        }
        campaign = session.execute(_CAMPAIGN, params).one()
        params["currency"] = campaign.budget_currency
        count, held = session.execute(_CAMPAIGN_HELD, params).one()
        if campaign.budget_max_redemptions is not None:
            redemptions = campaign.budget_max_redemptions - campaign.redemptions_used - count
        if campaign.budget_amount is not None:
            money = campaign.budget_amount - campaign.discount_used - Decimal(held)
            if discount is None or money < discount:
                discount, discount_from = money, "campaign"
            currency = currency or campaign.budget_currency
        if campaign.budget_max_per_customer is not None:
            uses = 0
            if customer is not None:
                uses = session.execute(_CUSTOMER_REDEEMED, params).scalar_one()
                uses += session.execute(_CUSTOMER_HELD, params).scalar_one()
            # Without a customer the per-customer part cannot be kept: no use.
            customer_uses = campaign.budget_max_per_customer - uses if customer else 0
    return BudgetLeft(
        discount=discount,
        redemptions=redemptions,
        customer_uses=customer_uses,
        currency=currency,
        discount_from=discount_from,
    )


def with_own_hold(left: BudgetLeft | None, hold: Hold) -> BudgetLeft | None:
    """What the budgets leave for the use that confirms the order's own `hold`: what the
    hold reserved is that use's already, so it counts as left (a cart may give more
    than its hold did: only the difference is asked of the budgets)."""
    if left is None:
        return None
    reserved = hold.discount_amount or 0
    if left.currency is not None and hold.discount_currency != left.currency:
        reserved = 0  # its money was never the budget's
    return replace(
        left,
        discount=None if left.discount is None else left.discount + reserved,
        redemptions=None if left.redemptions is None else left.redemptions + 1,
        customer_uses=None
        if left.customer_uses is None or hold.customer_number is None
        else left.customer_uses + 1,
    )


def kept(session: Session, *where, currency: str | None) -> tuple[int, Decimal]:
    """Redemptions not rolled back among `where` (on redemptions joined to coupons), and
    the discount they kept in `currency` (in any, when None): what a budget set now
    starts from. A budget counts only its own currency's money."""
    money = R.discount_amount - func.coalesce(R.rolled_back_amount, 0)
    if currency is not None:
        money = case((R.discount_currency == currency, money), else_=0)
    count, discount = session.execute(
        select(func.count(), func.coalesce(func.sum(money), 0))
        .select_from(REDEMPTIONS.join(COUPONS, C.id == R.coupon_id))
        .where(R.status != RedemptionStatus.ROLLED_BACK, *where)
    ).one()
    return int(count), Decimal(discount)


def spend(
    session: Session, state: CouponState, discount: Decimal | None, currency: str | None
) -> None:
    """A use of a campaign-budgeted code was written: the campaign counts it (the coupon's
    own sum is the bump's)."""
    if state.campaign_budgeted:
        _count(session, state.campaign_id, 1, discount or ZERO, currency=currency)


def counted_by_coupon(discount, currency):
    """What of a discount a coupon's budget counts (SQL): all of it in the budget's
    currency, or with no budget; none in another (a hold made before the budget, say)."""
    same = or_(C.budget_currency.is_(None), C.budget_currency == currency)
    return case((same, discount), else_=ZERO)


def give_back(
    session: Session, coupon_id: int, *, uses: int, discount: Decimal, currency: str | None
) -> None:
    """Uses and money back, to the coupon and to its campaign's budget (returns, removals;
    under the coupon's lock). Money in another currency than a budget's was never
    counted by it: none comes back."""
    counted = counted_by_coupon(discount, currency)
    campaign_id = session.execute(
        update(COUPONS)
        .where(C.id == coupon_id)
        .values(
            redemption_count=C.redemption_count - uses,
            discount_used=C.discount_used - counted,
            updated_at=C.updated_at,
        )
        .returning(C.campaign_id)
    ).scalar_one()
    if campaign_id is not None:
        _count(session, campaign_id, -uses, -discount, only_budgeted=True, currency=currency)


def _count(
    session,
    campaign_id: int,
    uses: int,
    discount: Decimal,
    only_budgeted=False,
    currency: str | None = None,
):
    statement = update(CAMPAIGNS).where(K.id == campaign_id)
    if only_budgeted:  # unbudgeted campaigns count nothing (their counts start at a budget)
        statement = statement.where(
            (K.budget_max_redemptions.is_not(None))
            | (K.budget_amount.is_not(None))
            | (K.budget_max_per_customer.is_not(None))
        )
    counted = discount
    if currency is not None:
        counted = case(
            (or_(K.budget_currency.is_(None), K.budget_currency == currency), discount),
            else_=ZERO,
        )
    session.execute(
        statement.values(
            redemptions_used=K.redemptions_used + uses, discount_used=K.discount_used + counted
        )
    )


# --- read back ---------------------------------------------------------------------------


def coupon_budget(coupon, now: datetime) -> dict | None:
    """A coupon's budget as read back: the cap, what redemptions used, what live holds
    keep, what is left (money, in the budget's currency)."""
    if coupon.budget_amount is None:
        return None
    held = ZERO
    if coupon.held_until is not None and coupon.held_until > now:
        params = {"coupon_id": coupon.id, "now": now, "currency": coupon.budget_currency}
        held = Decimal(db.session.execute(_COUPON_HELD, params).one()[1])
    return _money_use(coupon.budget_amount, coupon.budget_currency, coupon.discount_used, held)


def campaign_budget(campaign: Campaign, now: datetime) -> dict | None:
    """A campaign's budget as read back (each part only when set)."""
    if not campaign.budgeted:
        return None
    params = {"campaign_id": campaign.id, "now": now, "currency": campaign.budget_currency}
    count, held = db.session.execute(_CAMPAIGN_HELD, params).one()
    out = {"max_redemptions_per_customer": campaign.budget_max_per_customer}
    if campaign.budget_amount is not None:
        out.update(
            _money_use(
                campaign.budget_amount, campaign.budget_currency, campaign.discount_used, held
            )
        )
    if campaign.budget_max_redemptions is not None:
        out["max_redemptions"] = campaign.budget_max_redemptions
        out["redemptions_used"] = campaign.redemptions_used
        out["redemptions_remaining"] = max(
            campaign.budget_max_redemptions - campaign.redemptions_used - count, 0
        )
    return out


def _money_use(cap: Decimal, currency: str | None, used: Decimal, held) -> dict:
    def money(amount) -> dict:
        return {"amount": Decimal(amount), "currency": currency}

    return {
        "max_discount_total": money(cap),
        "used": money(used),
        "held": money(held),
        "remaining": money(max(cap - used - Decimal(held), ZERO)),
    }


# --- budget.exhausted ----------------------------------------------------------------------

EXHAUSTED_TOPIC = "budget.exhausted"


def announce_exhausted(tenant, code: str, budget: str | None) -> None:
    """A refusal found `budget` ("coupon" or "campaign") of the coupon `code` spent: send
    budget.exhausted, once per budget (until the budget is changed), in its own
    transaction (the refused one wrote nothing)."""
    if budget not in ("coupon", "campaign"):
        return
    now = utcnow()
    with unit_of_work() as session:
        coupon = session.execute(
            select(C.id, C.code, C.campaign_id).where(
                C.tenant_id == tenant.id, C.code_key == code_key(code)
            )
        ).first()
        if coupon is None or (budget == "campaign" and coupon.campaign_id is None):
            return
        data = {"tenant": tenant.slug, "budget": budget, "couponCode": coupon.code}
        if budget == "coupon":
            first = update(COUPONS).where(
                C.id == coupon.id, C.budget_amount.is_not(None), C.budget_exhausted_at.is_(None)
            )
            first = first.values(budget_exhausted_at=now, updated_at=C.updated_at)
        else:
            data["campaignId"] = coupon.campaign_id
            first = update(CAMPAIGNS).where(
                K.id == coupon.campaign_id, K.budget_exhausted_at.is_(None)
            )
            first = first.values(budget_exhausted_at=now)
        if session.execute(first).rowcount:
            if outbox.events_wanted():
                outbox.enqueue(
                    tenant_id=tenant.id,
                    destination=outbox.EVENTS,
                    topic=EXHAUSTED_TOPIC,
                    payload=data,
                )
            webhooks.emit(session, tenant.id, EXHAUSTED_TOPIC, data)
