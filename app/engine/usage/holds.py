"""Holds: a use of a coupon kept for one order while the shopper pays.

A hold passes every rule a redemption would, then counts against the total and
per-customer limits exactly like one, but only until it expires: the limit
checks count holds whose `expires_at` is still ahead, so an expired hold gives
its use back by itself and the worker's purge only tidies up. Holds are created,
confirmed and released under the coupon's row lock (then the hold's, always in
that order), so counts read after the lock are exact. Confirming turns the hold
into a redemption in one transaction without asking the limits again: the hold
already took its use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import and_, case, delete, func, insert, or_, select, update

from app.auth import Caller
from app.database import utcnow
from app.engine import observe, rules
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.engine.usage import redemption
from app.engine.usage.redemption import Order, OrderAlreadyRedeemed, Outcome
from app.errors import Conflict, CouponNotFound, Gone, NotFound, RuleViolated, Unauthorized
from app.extensions import db
from app.models import Coupon, Reservation, ReservationStatus

DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 86_400
_HOLDS, _C = Reservation.__table__, Coupon.__table__.c
_H = _HOLDS.c


class ReservationNotFound(NotFound):
    type, message = "reservation_not_found", "Reservation not found"


class ReservationReleased(NotFound):
    type, message = "reservation_released", "The reservation was released"


class ReservationExpired(Gone):
    type, message = "reservation_expired", "The reservation has expired; its use was given back"


class ReservationConfirmed(Conflict):
    type = "reservation_confirmed"
    message = "The reservation was confirmed; cancel the redemption instead"


class OrderAlreadyHeld(Conflict):
    type, message = (
        "coupon_order_already_held",
        "This order id holds the coupon for another customer",
    )


@dataclass(frozen=True)
class Held:
    """A hold as its creation answers it."""

    id: str
    coupon_code: str
    expires_at: datetime
    discount: Decimal | None
    free_products: tuple[str, ...]
    created: bool  # False: this order id's live hold, answered again


def status_of(hold: Reservation, now: datetime) -> str:
    """HELD, EXPIRED, CONFIRMED or RELEASED (an expired hold is still `held` in the table)."""
    if hold.status == ReservationStatus.HELD and hold.expires_at <= now:
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
) -> Held:
    """Keep one use of the coupon for this order for `ttl_seconds`, if every rule passes."""
    try:
        held = _hold(tenant, code, caller, order, ttl_seconds, customer_hint, now)
    except RuleViolated as refused:
        observe.hold(refused.violation.type)
        raise
    observe.hold("held" if held.created else "replayed")
    return held


def _hold(tenant, code, caller, order, ttl_seconds, customer_hint, now) -> Held:
    customer, owner = caller.acting_customer(customer_hint), caller.order_owner
    now = now or utcnow()
    state = redemption.read_state(tenant, code, customer, order.order_id, now, owner)
    _decide(state, redemption.context(state, caller, customer, order), order, now)  # fail fast
    with unit_of_work() as session:
        fresh = redemption.locked_state(
            session, tenant, state.id, customer, order.order_id, now, owner
        )
        ctx = redemption.context(fresh, caller, customer, order)
        existing = _decide(fresh, ctx, order, now)
        if existing is not None:
            return existing
        values = redemption.redemption_values(tenant, fresh, customer, order, now, owner)
        expires_at = now + timedelta(seconds=ttl_seconds)
        hold_id = uuid.uuid4().hex
        session.execute(
            insert(_HOLDS).values(
                id=hold_id,
                tenant_id=tenant.id,
                coupon_id=fresh.id,
                customer_number=customer,
                order_id=order.order_id,
                order_owner=owner,
                order_total_amount=values["order_total_amount"],
                order_total_currency=values["order_total_currency"],
                discount_amount=values["discount_amount"],
                discount_currency=values["discount_currency"],
                status=ReservationStatus.HELD,
                expires_at=expires_at,
                created_at=now,
            )
        )
        # Until the last hold's expiry, redemptions of this coupon count holds (locked).
        session.execute(
            update(Coupon.__table__)
            .where(_C.id == fresh.id)
            .values(
                held_until=case(
                    (or_(_C.held_until.is_(None), _C.held_until < expires_at), expires_at),
                    else_=_C.held_until,
                ),
                updated_at=_C.updated_at,  # not a change of the definition
            )
        )
    return Held(
        id=hold_id,
        coupon_code=fresh.code,
        expires_at=expires_at,
        discount=values["discount_amount"],
        free_products=tuple(fresh.free_products or ()),
        created=True,
    )


def _decide(state, ctx: rules.Context, order: Order, now: datetime) -> Held | None:
    """This order id's live hold (answered again), or None when a new hold may be made;
    raises when the rules refuse or the order id is taken."""
    if order.order_id is not None:
        if state.replay_id is not None:
            raise OrderAlreadyRedeemed("This order id already redeemed the coupon")
        if state.hold_id is not None:
            existing = own_hold(state.hold_id, ctx.customer_number)
            return Held(
                id=existing.id,
                coupon_code=state.code,
                expires_at=existing.expires_at,
                discount=existing.discount_amount,
                free_products=tuple(state.free_products or ()),
                created=False,
            )
    violations = rules.evaluate(state, ctx, now)
    if violations:
        raise RuleViolated(violations[0])
    return None


# --- confirm and release ------------------------------------------------------------


def confirm(
    *, tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint=None, now=None
) -> Outcome:
    """Turn a live hold into a redemption (and its event); a confirmed one answers again."""
    now = now or utcnow()
    with unit_of_work():
        state, found = _lock(tenant, code, hold_id, caller, customer_hint, now)
        outcome = _confirm_locked(tenant, state, found, now)
    observe.redemption("redeemed" if outcome.created else "replayed")
    if outcome.created:
        observe.hold("confirmed")
    return outcome


def confirm_for_order(tenant: TenantRef, state, ctx: rules.Context, hold_id: str, now) -> Outcome:
    """A redemption for an order id that holds the coupon confirms that hold."""
    with unit_of_work() as session:
        state = redemption.locked_state(session, tenant, state.id, None, None, now)
        found = own_hold(hold_id, ctx.customer_number, lock=True)
        outcome = _confirm_locked(tenant, state, found, now)
    if outcome.created:
        observe.hold("confirmed")
    return outcome


def _confirm_locked(tenant: TenantRef, state, found: Reservation, now: datetime) -> Outcome:
    """Under the coupon's and the hold's locks: the redemption, its event and the hold
    closed, or a refusal."""
    if found.status == ReservationStatus.CONFIRMED:
        return Outcome(
            redemption_id=found.redemption_id,
            coupon_code=state.code,
            discount=found.discount_amount,
            free_products=tuple(state.free_products or ()),
            created=False,
        )
    if found.status == ReservationStatus.RELEASED:
        raise ReservationReleased()
    if found.expires_at <= now:
        raise ReservationExpired()
    if state.deleted:
        raise CouponNotFound()
    values = {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant.id,
        "coupon_id": state.id,
        "customer_number": found.customer_number,
        "order_total_amount": found.order_total_amount,
        "order_total_currency": found.order_total_currency,
        "discount_amount": found.discount_amount,
        "discount_currency": found.discount_currency,
        "order_id": found.order_id,
        "order_owner": found.order_owner,
        "redeemed_at": now,
    }
    session = db.session()
    written = redemption.write(
        session, state, values, redemption.event(tenant, state, values), locked=True
    )
    if written != "redeemed":
        raise OrderAlreadyRedeemed()
    mark_confirmed(found, values["id"], now)
    return redemption.created(state, values)


def mark_confirmed(found: Reservation, redemption_id: str, now: datetime) -> None:
    """The hold became this redemption (in the redemption's transaction)."""
    found.status = ReservationStatus.CONFIRMED
    found.redemption_id = redemption_id
    _ended(found, now)


def _ended(found: Reservation, now: datetime) -> None:
    """A hold was confirmed or released (under the coupon's lock): the coupon's `held_until`
    becomes its latest live hold's expiry, or NULL, and its redemptions take the hot path
    again as soon as no hold lives."""
    found.closed_at = now
    db.session.flush()
    latest = (
        select(func.max(_H.expires_at))
        .where(
            _H.coupon_id == found.coupon_id,
            _H.status == ReservationStatus.HELD,
            _H.expires_at > now,
        )
        .scalar_subquery()
    )
    db.session.execute(
        update(Coupon.__table__)
        .where(_C.id == found.coupon_id)
        .values(held_until=latest, updated_at=_C.updated_at)
    )


def own_hold(hold_id: str, customer: str | None, *, lock: bool = False) -> Reservation:
    """The live hold an order id has on a coupon, if it is this customer's (the order is
    then redeeming its own held use); OrderAlreadyHeld when it is another customer's."""
    found = locked_hold(hold_id) if lock else _by_id(hold_id)
    if found.customer_number != customer:
        raise OrderAlreadyHeld()
    return found


def without_own_hold(state, customer: str | None):
    """The coupon's state with this order's own live hold not counted: the use it keeps is
    the one being redeemed."""
    values = dict(state._mapping)
    values["held"] -= 1
    if customer is not None and state.max_redemptions_per_customer != rules.UNLIMITED:
        values["customer_redemptions"] -= 1
    return SimpleNamespace(**values)


def _by_id(hold_id: str) -> Reservation:
    return db.session.scalars(select(Reservation).where(Reservation.id == hold_id)).one()


def release(
    *, tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint=None, now=None
) -> None:
    """Give the held use back now (an expired hold may be released too)."""
    now = now or utcnow()
    with unit_of_work():
        _, found = _lock(tenant, code, hold_id, caller, customer_hint, now)
        if found.status == ReservationStatus.RELEASED:
            raise ReservationReleased()
        if found.status == ReservationStatus.CONFIRMED:
            raise ReservationConfirmed()
        found.status = ReservationStatus.RELEASED
        _ended(found, now)
    observe.hold("released")


def release_for_order(
    *, tenant: TenantRef, code: str, order_id: str, caller: Caller, now=None
) -> None:
    """Release the hold this order id has on the coupon (the promo dialect names holds by
    their order)."""
    hold_id = db.session.scalar(
        select(Reservation.id)
        .join(Coupon, Coupon.id == Reservation.coupon_id)
        .where(
            Reservation.tenant_id == tenant.id,
            Coupon.code_key == Coupon.key_for(code),
            Reservation.order_id == order_id,
            Reservation.order_owner == caller.order_owner,
            Reservation.status == ReservationStatus.HELD,
        )
        .order_by(Reservation.seq.desc())
        .limit(1)
    )
    if hold_id is None:
        raise ReservationNotFound()
    release(tenant=tenant, code=code, hold_id=hold_id, caller=caller, now=now)


def _lock(tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint, now):
    """The coupon's state and the hold, locked in that order (every writer's order), for a
    caller who may act on the hold."""
    found = _find(tenant, code, hold_id, caller, customer_hint)
    state = redemption.locked_state(db.session(), tenant, found.coupon_id, None, None, now)
    return state, locked_hold(hold_id)


def locked_hold(hold_id: str) -> Reservation:
    return db.session.scalars(
        select(Reservation)
        .where(Reservation.id == hold_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _find(
    tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint: str | None
) -> Reservation:
    """The tenant's hold on this coupon, if the caller may act on it; ReservationNotFound.

    Managers and on-behalf clients (which speak for the shop) may act on any hold, a
    customer on theirs, anyone holding the id on an anonymous hold (the id is an
    unguessable key)."""
    found = db.session.scalar(
        select(Reservation)
        .join(Coupon, Coupon.id == Reservation.coupon_id)
        .where(
            Reservation.tenant_id == tenant.id,
            Reservation.id == hold_id,
            Coupon.code_key == Coupon.key_for(code),
        )
    )
    if found is None or not _may_see(found, caller, customer_hint):
        raise ReservationNotFound()
    return found


def _may_see(found: Reservation, caller: Caller, customer_hint: str | None) -> bool:
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
) -> tuple[list[Reservation], int]:
    """One page of a coupon's holds in creation order: managers all, customers their own."""
    if caller.is_anonymous:
        raise Unauthorized("Sign in to list reservations")
    conditions = [
        Reservation.tenant_id == tenant.id,
        Reservation.coupon_id == Coupon.id,
        Coupon.tenant_id == tenant.id,
        Coupon.code_key == Coupon.key_for(code),
    ]
    if not caller.manages:
        customer = caller.acting_customer(customer_hint)
        if customer is None:
            return [], 0
        conditions.append(Reservation.customer_number == customer)
    total = db.session.scalar(
        select(func.count()).select_from(Reservation, Coupon).where(*conditions)
    )
    items = db.session.scalars(
        select(Reservation)
        .join(Coupon, Coupon.id == Reservation.coupon_id)
        .where(*conditions)
        .order_by(Reservation.seq)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(items), total or 0


def get_hold(
    *, tenant: TenantRef, code: str, hold_id: str, caller: Caller, customer_hint: str | None
) -> Reservation:
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
            delete(_HOLDS).where(
                or_(
                    and_(_H.status == ReservationStatus.HELD, _H.expires_at < cutoff),
                    and_(_H.status != ReservationStatus.HELD, _H.closed_at < cutoff),
                )
            )
        )
    return result.rowcount or 0
