"""Holds: a use of a coupon kept for one order while the shopper pays.

A hold passes every rule a redemption would, then counts against the total and
per-customer limits exactly like one, but only until it expires: the limit
checks count holds whose `expires_at` is still ahead, so an expired hold gives
its use back by itself and the worker's purge only tidies up. Holds are created,
confirmed and released under the coupon's row lock (then the hold's, always in
that order), so counts read after the lock are exact. Confirming turns the hold
into a redemption in one transaction without asking the limits again: the hold
already took its use (`ledger.redeem_hold`). (The wire calls holds reservations.)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, delete, insert, or_, select

from app.auth import Caller
from app.database import paged, utcnow
from app.engine import observe, rules, webhooks
from app.engine.tenants import TenantRef
from app.engine.uow import stale_reads, unit_of_work
from app.engine.usage import budgets, ledger, rows
from app.engine.usage.redemption import Step, decide, own_hold
from app.engine.usage.state import (
    HOLDS,
    H,
    HoldConfirmed,
    HoldNotFound,
    HoldReleased,
    Order,
    OrderAlreadyRedeemed,
    Outcome,
    context,
    hold_by_id,
    locked_state,
    read_state,
)
from app.errors import RuleViolated, Unauthorized
from app.extensions import db
from app.models import Coupon, Hold, HoldStatus

DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 86_400


@dataclass(frozen=True)
class HoldMade:
    """A hold as its creation answers it."""

    id: str
    coupon_code: str
    expires_at: datetime
    discount: Decimal | None
    free_products: tuple[str, ...]
    created: bool  # False: this order id's live hold, answered again


def status_of(hold: Hold, now: datetime) -> str:
    """HELD, EXPIRED, CONFIRMED or RELEASED (an expired hold is still `held` in the table)."""
    if hold.status == HoldStatus.HELD and hold.expires_at <= now:
        return "EXPIRED"
    return hold.status.upper()


# --- create ------------------------------------------------------------------------


def hold(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    order: Order,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    customer_hint: str | None = None,
    now: datetime | None = None,
) -> HoldMade:
    """Keep one use of the coupon for this order for `ttl_seconds`, if every rule passes."""
    try:
        made = _hold(tenant, code, caller, order, ttl_seconds, customer_hint, now or utcnow())
    except RuleViolated as refused:
        observe.hold(refused.violation.type)
        if refused.violation.type == rules.BUDGET_EXHAUSTED:
            budgets.announce_exhausted(tenant, code, refused.violation.data.get("budget"))
        raise
    observe.hold("held" if made.created else "replayed")
    return made


def _hold(tenant, code, caller: Caller, order: Order, ttl_seconds, customer_hint, now) -> HoldMade:
    customer, owner = caller.acting_customer(customer_hint), caller.order_owner
    reading = {"customer": customer, "order_id": order.order_id, "owner": owner, "now": now}
    state = read_state(tenant, code, **reading)
    spent = {"tenant_id": tenant.id, "customer": customer, "now": now}
    budget = budgets.left(db.session, state, **spent)
    _existing_or_none(state, context(state, caller, customer, order, budget), order, now)
    with unit_of_work() as session:
        fresh = locked_state(session, tenant, state.id, **reading)
        budgets.lock_campaigns(session, [fresh])
        budget = budgets.left(session, fresh, **spent)  # what live holds reserve included
        ctx = context(fresh, caller, customer, order, budget)
        existing = _existing_or_none(fresh, ctx, order, now)
        if existing is not None:
            return existing
        row = rows.order_row(tenant, fresh, customer, order, now, owner)
        expires_at = now + timedelta(seconds=ttl_seconds)
        hold_id = uuid.uuid4().hex
        session.execute(
            insert(HOLDS).values(
                id=hold_id,
                tenant_id=tenant.id,
                coupon_id=fresh.id,
                customer_number=customer,
                order_id=order.order_id,
                order_owner=owner,
                order_total_amount=row["order_total_amount"],
                order_total_currency=row["order_total_currency"],
                discount_amount=row["discount_amount"],
                discount_currency=row["discount_currency"],
                status=HoldStatus.HELD,
                expires_at=expires_at,
                created_at=now,
                metadata=row["metadata"],
            )
        )
        ledger.extend_held_until(session, fresh.id, expires_at)
        webhooks.emit(
            session,
            tenant.id,
            "hold.created",
            {
                "holdId": hold_id,
                "couponCode": fresh.code,
                "orderId": order.order_id,
                "customerNumber": customer,
                "expiresAt": expires_at.isoformat().replace("+00:00", "Z"),
                "redemptionId": None,
            },
        )
    return HoldMade(
        id=hold_id,
        coupon_code=fresh.code,
        expires_at=expires_at,
        discount=row["discount_amount"],
        free_products=tuple(fresh.free_products or ()),
        created=True,
    )


def _existing_or_none(state, ctx, order: Order, now: datetime) -> HoldMade | None:
    """This order id's live hold (answered again), or None when a new hold may be made;
    raises when the rules refuse or the order id is taken."""
    step = decide(state, ctx, order, now)
    if step is Step.REPLAY:
        raise OrderAlreadyRedeemed("This order id already redeemed the coupon")
    if step is Step.ORDER_HOLD:
        existing = own_hold(state.hold_id, ctx)
        return HoldMade(
            id=existing.id,
            coupon_code=state.code,
            expires_at=existing.expires_at,
            discount=existing.discount_amount,
            free_products=tuple(state.free_products or ()),
            created=False,
        )
    return None


# --- confirm and release ------------------------------------------------------------


def confirm(
    *, tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint=None, now=None
) -> Outcome:
    """Turn a live hold into a redemption (and its event); a confirmed one answers again."""
    now = now or utcnow()
    with unit_of_work():
        state, found = _lock(tenant, code, hold_id, caller, customer_hint, now)
        outcome = ledger.redeem_hold(tenant, state, found, now)
    observe.redemption("redeemed" if outcome.created else "replayed")
    if outcome.created:
        observe.hold("confirmed")
    return outcome


def release(
    *, tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint=None, now=None
) -> None:
    """Give the held use back now (an expired hold may be released too)."""
    now = now or utcnow()
    with unit_of_work():
        _, found = _lock(tenant, code, hold_id, caller, customer_hint, now)
        if found.status == HoldStatus.RELEASED:
            raise HoldReleased()
        if found.status == HoldStatus.CONFIRMED:
            raise HoldConfirmed()
        found.status = HoldStatus.RELEASED
        ledger.close_hold(found, now)
        ledger.announce_hold(found, "hold.released")
    observe.hold("released")


def release_for_order(
    *, tenant: TenantRef, code: str, order_id: str, caller: Caller, now=None
) -> None:
    """Release the hold this order id has on the coupon (the promo dialect names holds by
    their order)."""
    hold_id = db.session.scalar(
        select(Hold.id)
        .join(Coupon, Coupon.id == Hold.coupon_id)
        .where(
            Hold.tenant_id == tenant.id,
            Coupon.code_key == Coupon.key_for(code),
            Hold.order_id == order_id,
            Hold.order_owner == caller.order_owner,
            Hold.status == HoldStatus.HELD,
        )
        .order_by(Hold.seq.desc())
        .limit(1)
    )
    if hold_id is None:
        raise HoldNotFound()
    release(tenant=tenant, code=code, hold_id=hold_id, caller=caller, now=now)


def _lock(tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint, now):
    """The coupon's state and the hold, locked in that order (every writer's order), for a
    caller who may act on the hold."""
    found = _find(tenant, code, hold_id, caller, customer_hint)
    state = locked_state(db.session(), tenant, found.coupon_id, now=now)
    return state, hold_by_id(hold_id, lock=True)


def _find(
    tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint: str | None
) -> Hold:
    """The tenant's hold on this coupon, if the caller may act on it; HoldNotFound.

    Managers and on-behalf clients (which speak for the shop) may act on any hold, a
    customer on theirs, anyone holding the id on an anonymous hold (the id is an
    unguessable key)."""
    found = db.session.scalar(
        select(Hold)
        .join(Coupon, Coupon.id == Hold.coupon_id)
        .where(
            Hold.tenant_id == tenant.id,
            Hold.id == hold_id,
            Coupon.code_key == Coupon.key_for(code),
        )
    )
    if found is None or not _may_see(found, caller, customer_hint):
        raise HoldNotFound()
    return found


def _may_see(found: Hold, caller: Caller, customer_hint: str | None) -> bool:
    if caller.manages or caller.on_behalf or found.customer_number is None:
        return True
    return caller.acting_customer(customer_hint) == found.customer_number


# --- read ------------------------------------------------------------------------------


def list_holds(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    customer_hint: str | None,
    page: int,
    page_size: int,
) -> tuple[list[Hold], int]:
    """One page of a coupon's holds in creation order: managers all, customers their own."""
    if caller.is_anonymous:
        raise Unauthorized("Sign in to list reservations")
    query = (
        select(Hold)
        .join(Coupon, Coupon.id == Hold.coupon_id)
        .where(
            Hold.tenant_id == tenant.id,
            Coupon.tenant_id == tenant.id,
            Coupon.code_key == Coupon.key_for(code),
        )
        .order_by(Hold.seq)
    )
    if not caller.manages:
        customer = caller.acting_customer(customer_hint)
        if customer is None:
            return [], 0
        query = query.where(Hold.customer_number == customer)
    # A list may be a little stale: it reads the replica when there is one.
    return stale_reads(lambda session: paged(session, query, page, page_size))


def get_hold(
    *, tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint: str | None
) -> Hold:
    """One hold, for a caller who may act on it."""
    if caller.is_anonymous:
        raise Unauthorized("Sign in to read a reservation")
    return _find(tenant, code, hold_id, caller, customer_hint)


# --- housekeeping ----------------------------------------------------------------------


def purge(retention_seconds: float, now: datetime | None = None) -> int:
    """Delete holds expired or closed more than `retention_seconds` ago (the worker's
    hourly housekeeping). Correctness never waits for this: expired holds count for
    nothing already."""
    cutoff = (now or utcnow()) - timedelta(seconds=retention_seconds)
    with unit_of_work() as session:
        result = session.execute(
            delete(HOLDS).where(
                or_(
                    and_(H.status == HoldStatus.HELD, H.expires_at < cutoff),
                    and_(H.status != HoldStatus.HELD, H.closed_at < cutoff),
                )
            )
        )
    return result.rowcount or 0
