"""Carts: several codes on one order, and which codes would fit an order.

Validation reads each code's state (one statement per code, no transaction),
applies every rule of each code alone, then `stacking.combine` decides which
applicable codes go together and what each gives. Redemption does the same
first (a refused cart fails fast), then, in one transaction, locks the cart's
coupon rows in id order (so two carts sharing coupons cannot deadlock), reads
them again under the locks, decides again, and writes every redemption and its
event or, when any code no longer applies, nothing. Holds the cart's order id made
on its codes are confirmed by it: their uses are the ones being redeemed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import case, func, literal, or_, select

from app.auth import Caller
from app.database import utcnow
from app.engine import observe, rules, stacking
from app.engine.rules import Money, Violation
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.engine.usage import holds, redemption
from app.engine.usage.redemption import Order, OrderAlreadyRedeemed
from app.errors import Conflict, InsufficientScope, NotFound, Unauthorized, rule_message
from app.extensions import db
from app.models import Coupon, Origin, Redemption, Reservation, ReservationStatus

# Qualifications evaluate at most this many of a tenant's coupons (after the SQL filters,
# largest discount first).
QUALIFICATION_SCAN_LIMIT = 2000


@dataclass(frozen=True)
class Cart:
    order_total: Money
    products: frozenset[str]
    codes: tuple[str, ...]
    order_id: str | None = None

    def order(self) -> Order:
        return Order(total=self.order_total, products=self.products, order_id=self.order_id)


@dataclass(frozen=True)
class CodeResult:
    """One code of the cart: applied with its discount, or the violation that stops it."""

    code: str
    coupon_code: str | None = None
    violation: Violation | None = None
    discount: Decimal | None = None
    free_products: tuple[str, ...] = ()
    redemption_id: str | None = None

    @property
    def applies(self) -> bool:
        return self.violation is None


@dataclass(frozen=True)
class CartResult:
    codes: tuple[CodeResult, ...]
    currency: str

    @property
    def total_discount(self) -> Decimal:
        return sum((c.discount or Decimal(0) for c in self.codes), Decimal(0))

    @property
    def refused(self) -> list[tuple[int, CodeResult]]:
        return [(i, c) for i, c in enumerate(self.codes) if not c.applies]


class CartNotApplicable(Conflict):
    type = "cart_not_applicable"
    message = "Not every code of the cart applies; nothing was redeemed"

    def __init__(self, result: CartResult):
        super().__init__(
            details=[
                {
                    "field": f"codes.{i}",
                    "type": c.violation.type,
                    "message": rule_message(c.violation.type),
                }
                for i, c in result.refused
            ]
        )


def _evaluate(
    tenant: TenantRef, cart: Cart, states: list, caller: Caller, customer, now: datetime
) -> CartResult:
    """Each code's rules alone, then stacking among those that pass."""
    results: list[CodeResult] = []
    candidates: list[stacking.Candidate] = []
    order = cart.order()
    for position, (code, state) in enumerate(zip(cart.codes, states, strict=True)):
        if state is None:
            results.append(CodeResult(code, violation=Violation(rules.NOT_FOUND)))
            continue
        violations = rules.evaluate(state, redemption.context(state, caller, customer, order), now)
        result = CodeResult(code, state.code, free_products=tuple(state.free_products or ()))
        if violations:
            result = replace(result, violation=violations[0])
        else:
            candidates.append(stacking.Candidate(code, state, position))
        results.append(result)
    stack = stacking.combine(candidates, cart.order_total, tenant.max_codes_per_order)
    discounts = {candidate.code: discount for candidate, discount in stack.applied}
    for i, result in enumerate(results):
        if result.code in stack.refused:
            results[i] = replace(result, violation=stack.refused[result.code])
        elif result.code in discounts:
            results[i] = replace(result, discount=discounts[result.code])
    return CartResult(tuple(results), cart.order_total.currency)


def _read(tenant: TenantRef, code: str, customer, order_id, now, owner: str = ""):
    try:
        return redemption.read_state(tenant, code, customer, order_id, now, owner)
    except NotFound:
        return None


def _own_holds(states: list, customer: str | None) -> list:
    """States with the order's own live holds uncounted: a cart redeeming an order confirms
    the holds that order made (another customer's hold on the order is a conflict)."""
    adjusted = []
    for state in states:
        if state is not None and getattr(state, "hold_id", None) is not None:
            holds.own_hold(state.hold_id, customer)
            state = holds.without_own_hold(state, customer)
        adjusted.append(state)
    return adjusted


def validate(
    *, tenant: TenantRef, caller: Caller, cart: Cart, customer_hint: str | None = None
) -> CartResult:
    """What each code of the cart would give together; writes nothing."""
    customer = caller.acting_customer(customer_hint)
    now = utcnow()
    states = [_read(tenant, code, customer, None, now) for code in cart.codes]
    return _evaluate(tenant, cart, states, caller, customer, now)


def redeem(
    *, tenant: TenantRef, caller: Caller, cart: Cart, customer_hint: str | None = None
) -> CartResult:
    """Redeem every code of the cart in one transaction, or none (CartNotApplicable)."""
    customer, owner = caller.acting_customer(customer_hint), caller.order_owner
    now = utcnow()
    states = [_read(tenant, code, customer, cart.order_id, now, owner) for code in cart.codes]
    result = _evaluate(tenant, cart, _own_holds(states, customer), caller, customer, now)
    if result.refused:
        raise CartNotApplicable(result)
    with unit_of_work() as session:
        # Fixed lock order: every cart locks its coupons by ascending id.
        fresh_by_id = {
            state.id: redemption.locked_state(
                session, tenant, state.id, customer, cart.order_id, now, owner
            )
            for state in sorted(states, key=lambda s: s.id)
        }
        fresh = [fresh_by_id[state.id] for state in states]
        if cart.order_id is not None and any(s.replay_id is not None for s in fresh):
            raise OrderAlreadyRedeemed("This order id already redeemed a code of the cart")
        # After every coupon lock, the holds' (the order every writer takes).
        held = {
            s.id: holds.own_hold(s.hold_id, customer, lock=True)
            for s in fresh
            if cart.order_id is not None and s.hold_id is not None
        }
        counted = [holds.without_own_hold(s, customer) if s.id in held else s for s in fresh]
        result = _evaluate(tenant, cart, counted, caller, customer, now)
        if result.refused:
            raise CartNotApplicable(result)
        done = []
        for code_result, state in zip(result.codes, fresh, strict=True):
            order = replace(
                cart.order(), discount=Money(code_result.discount, cart.order_total.currency)
            )
            values = redemption.redemption_values(tenant, state, customer, order, now, owner)
            written = redemption.write(
                session, state, values, redemption.event(tenant, state, values), locked=True
            )
            if written != "redeemed":
                raise OrderAlreadyRedeemed()
            if state.id in held:
                holds.mark_confirmed(held[state.id], values["id"], now)
            done.append(replace(code_result, redemption_id=values["id"]))
    for _ in done:
        observe.redemption("redeemed")
    return CartResult(tuple(done), result.currency)


# --- qualifications ---------------------------------------------------------------------


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
    c = Coupon
    candidates = db.session.scalars(
        select(c)
        .where(
            c.tenant_id == tenant.id,
            c.deleted.is_(False),
            c.active.is_(True),
            # Only what the tenant offers: a code meant for one person is never listed.
            c.listable.is_(True),
            c.origin.in_((Origin.COUPON, Origin.PROMO)),
            or_(c.valid_from.is_(None), c.valid_from <= now),
            or_(c.valid_until.is_(None), c.valid_until >= now),
            or_(c.max_redemptions == rules.UNLIMITED, c.redemption_count < c.max_redemptions),
            or_(c.currency.is_(None), c.currency == order_total.currency),
            or_(c.min_order_amount.is_(None), c.min_order_amount <= order_total.amount),
            or_(c.required_product.is_(None), c.required_product.in_(sorted(products))),
        )
        # Best first already, so a tenant with more candidates than the scan limit
        # loses only its smallest discounts (the exact amounts are computed below).
        .order_by(_discount_on(order_total.amount).desc(), c.id)
        .limit(QUALIFICATION_SCAN_LIMIT)
    ).all()
    held = _live_holds([x.id for x in candidates if x.held_until and x.held_until > now], now)
    mine = _customer_uses(
        [x.id for x in candidates if x.max_redemptions_per_customer != rules.UNLIMITED],
        customer,
        now,
    )
    qualified = []
    for coupon in candidates:
        context = rules.Context(
            identified=caller.identified,
            customer_number=customer,
            customer_redemptions=mine.get(coupon.id, 0),
            held=held.get(coupon.id, 0),
            order_total=order_total,
            products=products,
        )
        if not rules.evaluate(coupon, context, now):
            qualified.append(Qualified(coupon, rules.allowed_discount(coupon, order_total)))
    qualified.sort(key=lambda q: (-q.discount, q.coupon.code_key))
    start = (page - 1) * page_size
    return qualified[start : start + page_size], len(qualified)


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


def _live_holds(coupon_ids: list[int], now: datetime) -> dict[int, int]:
    if not coupon_ids:
        return {}
    rows = db.session.execute(
        select(Reservation.coupon_id, func.count())
        .where(
            Reservation.coupon_id.in_(coupon_ids),
            Reservation.status == ReservationStatus.HELD,
            Reservation.expires_at > now,
        )
        .group_by(Reservation.coupon_id)
    )
    return dict(rows.all())


def _customer_uses(coupon_ids: list[int], customer: str | None, now: datetime) -> dict[int, int]:
    """The customer's redemptions and live holds per coupon."""
    if not coupon_ids or customer is None:
        return {}
    uses: dict[int, int] = {}
    for model, extra in (
        (Redemption, ()),
        (Reservation, (Reservation.status == ReservationStatus.HELD, Reservation.expires_at > now)),
    ):
        rows = db.session.execute(
            select(model.coupon_id, func.count())
            .where(model.coupon_id.in_(coupon_ids), model.customer_number == customer, *extra)
            .group_by(model.coupon_id)
        )
        for coupon_id, count in rows:
            uses[coupon_id] = uses.get(coupon_id, 0) + count
    return uses
