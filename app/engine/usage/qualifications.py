"""Qualifications: the coupons that would apply to a cart for this caller.

Only coupons the tenant marked `listable`, and its automatic promotions, are offered,
and of those only the ones the caller may use. Candidates are filtered in SQL (live, in
date, under the limit, currency, minimum, required product) and read largest discount
first; at most QUALIFICATION_SCAN_LIMIT are evaluated by the rules (lines and shipping
included, so a line promotion fits only a cart with lines it selects).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.orm import Session

from app.auth import Caller
from app.database import utcnow
from app.engine import promotions, rules
from app.engine.rules import Money
from app.engine.tenants import TenantRef
from app.engine.uow import stale_reads
from app.errors import InsufficientScope, Unauthorized
from app.models import Coupon, Hold, HoldStatus, Origin, Redemption, RedemptionStatus

# Qualifications evaluate at most this many of a tenant's coupons (after the SQL filters,
# largest discount first).
QUALIFICATION_SCAN_LIMIT = 2000


@dataclass(frozen=True)
class Qualified:
    coupon: Coupon
    discount: Decimal


def qualifications(
    *,
    tenant: TenantRef,
    caller: Caller,
    order_total: Money,
    products: frozenset[str],
    customer_hint: str | None,
    page: int,
    page_size: int,
    lines: tuple[promotions.Line, ...] = (),
    shipping_total: Decimal | None = None,
) -> tuple[list[Qualified], int]:
    """The coupons that would apply to this cart for this caller, best discount first.

    Only coupons the caller may use are considered, so a code restricted to other
    customers never appears. Only coupons the tenant marked `listable` are offered:
    knowing any other code is what entitles its holder (brand fans' and campaign codes
    are never listed).
    """
    if caller.is_anonymous:
        raise Unauthorized("Sign in (a customer, or a client with a redeem scope)")
    if not caller.identified:
        raise InsufficientScope(
            "Requires a customer token or scope hybris.coupon_redeem (or its on-behalf form)"
        )
    customer = caller.acting_customer(customer_hint)
    now = utcnow()
    # Decides nothing that is written (a redemption asks again): may read the replica.
    candidates, live, mine, held = stale_reads(
        lambda session: _read(session, tenant, order_total, products, customer, now)
    )
    qualified = []
    for coupon in candidates:
        budget = None
        if coupon.budget_amount is not None:  # never offer what its budget cannot pay
            left = coupon.budget_amount - coupon.discount_used - held.get(coupon.id, 0)
            budget = rules.BudgetLeft(discount=left, currency=coupon.budget_currency)
        context = rules.Context(
            budget=budget,
            identified=caller.identified,
            customer_number=customer,
            customer_uses=mine.get(coupon.id, 0),
            live_holds=live.get(coupon.id, 0),
            order_total=order_total,
            products=products,
            lines=lines,
            shipping_total=shipping_total,
        )
        if not rules.evaluate(coupon, context, now):
            discount = rules.allowed_discount(coupon, order_total, lines, shipping_total)
            qualified.append(Qualified(coupon, discount))
    qualified.sort(key=lambda q: (-q.discount, q.coupon.code_key))
    start = (page - 1) * page_size
    return qualified[start : start + page_size], len(qualified)


def _read(session: Session, tenant: TenantRef, order_total: Money, products, customer, now):
    """The candidates, their live holds, the customer's uses and what holds keep of budgets."""
    c = Coupon
    candidates = session.scalars(
        select(c)
        .where(
            c.tenant_id == tenant.id,
            c.deleted.is_(False),
            c.active.is_(True),
            # Only what the tenant offers: a code meant for one person is never listed.
            # Automatic promotions need no code: they are for everyone whose cart fits.
            or_(c.listable.is_(True), c.automatic.is_(True)),
            c.origin.in_((Origin.COUPON, Origin.PROMO)),
            or_(c.valid_from.is_(None), c.valid_from <= now),
            or_(c.valid_until.is_(None), c.valid_until >= now),
            or_(c.max_redemptions == rules.UNLIMITED, c.redemption_count < c.max_redemptions),
            or_(c.budget_amount.is_(None), c.discount_used < c.budget_amount),
            or_(c.currency.is_(None), c.currency == order_total.currency),
            or_(c.min_order_amount.is_(None), c.min_order_amount <= order_total.amount),
            or_(c.required_product.is_(None), c.required_product.in_(sorted(products))),
        )
        # Best first already, so a tenant with more candidates than the scan limit
        # loses only its smallest discounts (the exact amounts are computed below).
        .order_by(_discount_on(order_total.amount).desc(), c.id)
        .limit(QUALIFICATION_SCAN_LIMIT)
    ).all()
    live = _live_holds(
        session, [x.id for x in candidates if x.held_until and x.held_until > now], now
    )
    mine = _customer_uses(
        session,
        [x.id for x in candidates if x.max_redemptions_per_customer != rules.UNLIMITED],
        customer,
        now,
    )
    held = _held_discounts(
        session, [x.id for x in candidates if x.budget_amount is not None and x.held_until], now
    )
    return candidates, live, mine, held


def _discount_on(total: Decimal):
    """About what a coupon gives on `total`, in SQL (before rounding to the currency)."""
    total = literal(total, Coupon.discount_amount.type)
    return case(
        (Coupon.discount_type == "PERCENT", Coupon.discount_percentage * total / 100),
        (
            Coupon.discount_type == "ABSOLUTE",
            case((Coupon.discount_amount < total, Coupon.discount_amount), else_=total),
        ),
        else_=0,
    )


def _live_holds(session: Session, coupon_ids: list[int], now: datetime) -> dict[int, int]:
    if not coupon_ids:
        return {}
    rows = session.execute(
        select(Hold.coupon_id, func.count())
        .where(
            Hold.coupon_id.in_(coupon_ids),
            Hold.status == HoldStatus.HELD,
            Hold.expires_at > now,
        )
        .group_by(Hold.coupon_id)
    )
    return dict(rows.all())


def _held_discounts(session: Session, coupon_ids: list[int], now: datetime) -> dict[int, Decimal]:
    """What live holds keep of each coupon's budget."""
    if not coupon_ids:
        return {}
    rows = session.execute(
        select(Hold.coupon_id, func.sum(Hold.discount_amount))
        .where(
            Hold.coupon_id.in_(coupon_ids),
            Hold.status == HoldStatus.HELD,
            Hold.expires_at > now,
        )
        .group_by(Hold.coupon_id)
    )
    return {coupon_id: Decimal(amount or 0) for coupon_id, amount in rows}


def _customer_uses(
    session: Session, coupon_ids: list[int], customer: str | None, now: datetime
) -> dict[int, int]:
    """The customer's redemptions and live holds per coupon."""
    if not coupon_ids or customer is None:
        return {}
    uses: dict[int, int] = {}
    for model, extra in (
        (Redemption, (Redemption.status != RedemptionStatus.ROLLED_BACK,)),
        (Hold, (Hold.status == HoldStatus.HELD, Hold.expires_at > now)),
    ):
        rows = session.execute(
            select(model.coupon_id, func.count())
            .where(model.coupon_id.in_(coupon_ids), model.customer_number == customer, *extra)
            .group_by(model.coupon_id)
        )
        for coupon_id, count in rows:
            uses[coupon_id] = uses.get(coupon_id, 0) + count
    return uses
