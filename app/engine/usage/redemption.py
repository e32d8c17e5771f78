"""Validate, redeem and cancel: the one atomic redemption path of every dialect.

Checking reads the coupon's state (`state.read_state`: the rule columns, live holds
and the customer's uses, one statement outside any transaction) and evaluates the
rules. Redeeming does that same read and decides before it takes a lock, then
writes with one guarded statement (`ledger.write`): the counter goes up only if
the coupon is unchanged since the read and under its limits, and the redemption
and its event go in with it. When the guard refuses (a race for the last use, the
coupon changed meanwhile) or the coupon may have live holds, the coupon is locked,
read again (holds counted) and the same ladder decides again.

The ladder (`decide`), for every use of a coupon: an order id already redeemed is
answered again, but only to a caller who may use the coupon and acts for the same
customer (anyone else gets a refusal or a conflict); an order id that holds the
coupon confirms that hold; otherwise every rule must pass.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Caller
from app.database import engine_of, paged, utcnow
from app.engine import idempotency, observe, rules
from app.engine.catalog import lookup
from app.engine.rules import Money
from app.engine.tenants import TenantRef
from app.engine.uow import in_unit_of_work, stale_reads, unit_of_work
from app.engine.usage import budgets, ledger, rows
from app.engine.usage.ledger import Written
from app.engine.usage.state import (
    AlreadyRolledBack,
    CouponState,
    HoldDiffers,
    Order,
    OrderAlreadyHeld,
    OrderAlreadyRedeemed,
    Outcome,
    context,
    hold_by_id,
    locked_state,
    read_state,
)
from app.errors import CouponNotFound, NotFound, RuleViolated, Unauthorized
from app.extensions import db
from app.models import Coupon, Hold, HoldStatus, Redemption, RedemptionStatus


class Step(enum.Enum):
    """Where the ladder ends for a use of a coupon."""

    # The order id already redeemed the coupon: answer that redemption again.
    REPLAY = "replay"
    # The order id holds the coupon: the use is the hold's.
    ORDER_HOLD = "order_hold"
    # Every rule passes: a new use may be taken.
    PROCEED = "proceed"


def decide(state: CouponState, ctx: rules.Context, order: Order, now: datetime) -> Step:
    """The decision ladder every use of a coupon climbs (redemptions, holds, carts);
    raises the first rule the order breaks."""
    if order.order_id is not None:
        if state.replay_id is not None:
            return Step.REPLAY
        if state.hold_id is not None:
            return Step.ORDER_HOLD
    violations = rules.evaluate(state, ctx, now)
    if violations:
        raise RuleViolated(violations[0])
    return Step.PROCEED


def own_hold(hold_id: str, ctx: rules.Context, *, lock: bool = False) -> Hold:
    """The live hold an order id has on a coupon, if it is this caller's (the order is then
    using its own held use); OrderAlreadyHeld when it is another customer's, or when the
    caller is anonymous: anonymous callers share their order ids, so none of them can
    claim a hold by its order (they confirm or release it by its unguessable id)."""
    found = hold_by_id(hold_id, lock=lock)
    if not ctx.identified or found.customer_number != ctx.customer_number:
        raise OrderAlreadyHeld()
    return found


# --- checking ---------------------------------------------------------------------------


def check_order(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    order: Order,
    customer_hint: str | None = None,
    now: datetime | None = None,
) -> tuple[CouponState, list[rules.Violation]]:
    """The coupon's state and every rule this order breaks.

    Records no use. A campaign's code looked up for the first time becomes a coupon
    row here (`lookup.materialize` commits it), as on any lookup.
    """
    customer = caller.acting_customer(customer_hint)
    now = now or utcnow()
    # Records nothing: may read a replica (a stale yes is stopped by the redemption).
    state = read_state(tenant, code, customer=customer, now=now, replica=True)
    budget = budgets.left(db.session, state, tenant_id=tenant.id, customer=customer, now=now)
    return state, rules.evaluate(state, context(state, caller, customer, order, budget), now)


def validate(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    order: Order,
    customer_hint: str | None = None,
    now: datetime | None = None,
) -> CouponState:
    """`check_order`, raising the first rule broken."""
    state, violations = check_order(
        tenant=tenant, code=code, caller=caller, order=order, customer_hint=customer_hint, now=now
    )
    if violations:
        raise RuleViolated(violations[0])
    return state


# --- redeeming --------------------------------------------------------------------------


def redeem(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    order: Order,
    customer_hint: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Record one redemption atomically; an order id already redeemed is a replay."""
    try:
        outcome = _redeem(tenant, code, caller, order, customer_hint, now or utcnow())
    except RuleViolated as refused:
        observe.redemption(refused.violation.type)
        if refused.violation.type == rules.BUDGET_EXHAUSTED:
            budgets.announce_exhausted(tenant, code, refused.violation.data.get("budget"))
        raise
    except NotFound:
        observe.redemption(rules.NOT_FOUND)
        raise
    observe.redemption("redeemed" if outcome.created else "replayed")
    return outcome


def _redeem(tenant, code, caller: Caller, order: Order, customer_hint, now) -> Outcome:
    customer, owner = caller.acting_customer(customer_hint), caller.order_owner
    state = read_state(
        tenant, code, customer=customer, order_id=order.order_id, owner=owner, now=now
    )
    budget = budgets.left(db.session, state, tenant_id=tenant.id, customer=customer, now=now)
    ctx = context(state, caller, customer, order, budget)
    step = decide(state, ctx, order, now)
    if step is Step.REPLAY:
        return _replay(state, ctx)
    if step is Step.ORDER_HOLD:
        return _confirm_order_hold(tenant, state, ctx, order, now)
    row = rows.order_row(tenant, state, customer, order, now, owner)
    # A campaign's budget is shared by its codes: decided under the locks only.
    optimistic = not state.holds_live(now) and not state.campaign_budgeted
    if optimistic and writes_alone(state, row):
        event, hook = rows.event(tenant, state, row), rows.hook(tenant, state, row)
        offer = idempotency.offer()
        if offer is not None:
            # Made with the key's record once the answer is known; if its guard refuses,
            # the request runs again in a transaction (see app/engine/idempotency.py).
            offer.take(
                lambda record: (
                    ledger.write(db.session, state, row, event, hook, alone=True, record=record)
                    is Written.REDEEMED
                )
            )
            return state.outcome(row["id"], row["discount_amount"], created=True)
        if not in_unit_of_work():
            if ledger.write(db.session, state, row, event, hook, alone=True) is Written.REDEEMED:
                return state.outcome(row["id"], row["discount_amount"], created=True)
            optimistic = False  # refused by the guard: decide again under the lock
    with unit_of_work() as session:
        if optimistic:
            event, hook = rows.event(tenant, state, row), rows.hook(tenant, state, row)
            if ledger.write(session, state, row, event, hook) is Written.REDEEMED:
                return state.outcome(row["id"], row["discount_amount"], created=True)
        # The guard refused (a race, the coupon changed, its budget), or holds may live,
        # or the campaign has a budget: decide again on a state read under the locks.
        return _redeem_locked(session, tenant, state.id, caller, customer, order, now)


def writes_alone(state: CouponState, row: dict) -> bool:
    """Whether the optimistic write can be one autocommitted statement, its own transaction:
    on PostgreSQL (outside a unit of work, or with an Idempotency-Key's offer), with no
    order id (a taken order id is given back in the write's transaction) and no
    per-customer limit (that count is read after the row lock)."""
    return (
        engine_of(db.session).dialect.name == "postgresql"
        and row["order_id"] is None
        and not ledger.counts_customer(state, row["customer_number"])
    )


def _redeem_locked(
    session: Session, tenant, coupon_id: int, caller: Caller, customer, order: Order, now
) -> Outcome:
    owner = caller.order_owner
    fresh = locked_state(
        session,
        tenant,
        coupon_id,
        customer=customer,
        order_id=order.order_id,
        owner=owner,
        now=now,
    )
    budgets.lock_campaigns(session, [fresh])
    budget = budgets.left(session, fresh, tenant_id=tenant.id, customer=customer, now=now)
    ctx = context(fresh, caller, customer, order, budget)
    step = decide(fresh, ctx, order, now)
    if step is Step.REPLAY:
        return _replay(fresh, ctx)
    if step is Step.ORDER_HOLD:
        return _confirm_order_hold(tenant, fresh, ctx, order, now)
    return ledger.record(
        tenant, session, fresh, rows.order_row(tenant, fresh, customer, order, now, owner)
    )


def _replay(state: CouponState, ctx: rules.Context) -> Outcome:
    """An order id's redemption, again: for an identified caller who may use the coupon,
    acting for the same customer (anonymous callers share their order ids, so an anonymous
    replay could be anyone's: it is a conflict)."""
    if state.deleted:
        raise CouponNotFound()
    if not rules.may_use(state, ctx):
        raise RuleViolated(rules.Violation(rules.FORBIDDEN))
    if not ctx.identified or state.replay_customer != ctx.customer_number:
        raise OrderAlreadyRedeemed()
    if state.replay_status == RedemptionStatus.ROLLED_BACK:
        # Answering it again would tell the shop the discount stands: it does not.
        raise AlreadyRolledBack("This order's redemption was rolled back; use a new order id")
    return state.outcome(state.replay_id, state.replay_discount, created=False)


def _confirm_order_hold(
    tenant, state: CouponState, ctx: rules.Context, order: Order, now
) -> Outcome:
    """A redemption for an order id that holds the coupon confirms that hold, for the
    order as held: a total or discount stated otherwise is a conflict, not a silent
    change (the hold reserved its discount, and the budgets were asked for that one)."""
    with unit_of_work() as session:
        locked = locked_state(session, tenant, state.id, now=now)
        hold = own_hold(state.hold_id, ctx, lock=True)
        if hold.status == HoldStatus.HELD and hold.expires_at > now and _differs(order, hold):
            raise HoldDiffers()
        outcome = ledger.redeem_hold(tenant, locked, hold, now)
    if outcome.created:
        observe.hold("confirmed")
    return outcome


def _differs(order: Order, hold: Hold) -> bool:
    def other(stated: Money | None, amount, currency) -> bool:
        return stated is not None and (stated.amount != amount or stated.currency != currency)

    return other(order.total, hold.order_total_amount, hold.order_total_currency) or other(
        order.discount, hold.discount_amount, hold.discount_currency
    )


# --- reading and removing ---------------------------------------------------------------


def list_redemptions(*, tenant: TenantRef, code: str, page: int, page_size: int):
    """One page of a coupon's redemptions in creation order, and the total."""
    coupon = lookup.get_coupon(tenant=tenant, code=code)
    query = select(Redemption).where(Redemption.coupon_id == coupon.id).order_by(Redemption.seq)
    # A list may be a little stale: it reads the replica when there is one.
    return stale_reads(lambda session: paged(session, query, page, page_size))


def get_redemption(
    *, tenant: TenantRef, code: str, redemption_id: str, caller: Caller, customer_hint: str | None
) -> Redemption:
    """One redemption: managers see any, others only their own (or on behalf)."""
    if caller.is_anonymous:
        raise Unauthorized("Sign in to read a redemption")
    _, redemption = _find_redemption(tenant, code, redemption_id)
    if caller.manages:
        return redemption
    customer = caller.acting_customer(customer_hint)
    if customer is None or redemption.customer_number != customer:
        raise NotFound("Redemption not found")
    return redemption


def cancel(*, tenant: TenantRef, code: str, redemption_id: str) -> None:
    """Delete a redemption and give its use back, under the coupon's row lock."""
    with unit_of_work() as session:
        coupon, redemption = _find_redemption(tenant, code, redemption_id, for_update=True)
        session.delete(redemption)
        if redemption.status != RedemptionStatus.ROLLED_BACK:  # else its use came back then
            budgets.give_back(
                session,
                coupon.id,
                uses=1,
                discount=redemption.kept_discount or Decimal(0),
                currency=redemption.discount_currency,
            )


def _find_redemption(
    tenant: TenantRef, code: str, redemption_id: str, *, for_update: bool = False
) -> tuple[Coupon, Redemption]:
    """The coupon (locked, if asked) and one of its redemptions, or NotFound."""
    coupon = lookup.find(tenant=tenant, code=code, for_update=for_update)
    redemption = None
    if coupon is not None:
        redemption = db.session.scalar(
            select(Redemption).where(
                Redemption.coupon_id == coupon.id, Redemption.id == redemption_id
            )
        )
    if redemption is None:
        raise NotFound("Redemption not found")
    return coupon, redemption
