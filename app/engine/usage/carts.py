"""Carts: several codes on one order, and which codes would fit an order.

Validation reads each code's state (one statement per code, no transaction),
applies every rule of each code alone, then `stacking.combine` decides which
applicable codes go together and what each gives. Redemption does the same
first (a refused cart fails fast), then, in one transaction, locks the cart's
coupon rows in id order (so two carts sharing coupons cannot deadlock), reads
them again under the locks, decides again, and writes every redemption and its
event or, when any code no longer applies, nothing. Holds the cart's order id made
on its codes are confirmed by it: their uses are the ones being redeemed.
Qualifications (which coupons would fit a cart) are `qualifications`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from app.auth import Caller
from app.database import utcnow
from app.engine import observe, promotions, rules, stacking
from app.engine.rules import Money, Violation
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.engine.usage import ledger
from app.engine.usage.redemption import own_hold
from app.engine.usage.state import (
    CouponState,
    Order,
    OrderAlreadyRedeemed,
    context,
    locked_state,
    read_state,
)
from app.errors import Conflict, NotFound, rule_message


@dataclass(frozen=True)
class Cart:
    order_total: Money
    products: frozenset[str]
    codes: tuple[str, ...]
    order_id: str | None = None
    lines: tuple[promotions.Line, ...] = ()
    shipping_total: Decimal | None = None

    def order(self) -> Order:
        return Order(
            total=self.order_total,
            products=self.products,
            order_id=self.order_id,
            lines=self.lines,
            shipping_total=self.shipping_total,
        )


@dataclass(frozen=True)
class CodeResult:
    """One code of the cart: applied with its discount, or the violation that stops it."""

    code: str
    coupon_code: str | None = None
    violation: Violation | None = None
    discount: Decimal | None = None
    free_products: tuple[str, ...] = ()
    redemption_id: str | None = None
    # What it takes off each line (index in the cart's lines), and off the shipping.
    lines: tuple[tuple[int, Decimal], ...] = ()
    shipping_discount: Decimal | None = None

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
    def shipping_discount(self) -> Decimal:
        return sum((c.shipping_discount or Decimal(0) for c in self.codes), Decimal(0))

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
    tenant: TenantRef,
    cart: Cart,
    states: list[CouponState | None],
    caller: Caller,
    customer,
    now: datetime,
) -> CartResult:
    """Each code's rules alone, then stacking among those that pass."""
    results: list[CodeResult] = []
    candidates: list[stacking.Candidate] = []
    order = cart.order()
    for position, (code, state) in enumerate(zip(cart.codes, states, strict=True)):
        if state is None:
            results.append(CodeResult(code, violation=Violation(rules.NOT_FOUND)))
            continue
        violations = rules.evaluate(state, context(state, caller, customer, order), now)
        result = CodeResult(code, state.code, free_products=tuple(state.free_products or ()))
        if violations:
            result = replace(result, violation=violations[0])
        else:
            candidates.append(stacking.Candidate(code, state, position))
        results.append(result)
    stack = stacking.combine(
        candidates,
        cart.order_total,
        tenant.max_codes_per_order,
        cart.lines,
        cart.shipping_total or Decimal(0),
    )
    for i, result in enumerate(results):
        if result.code in stack.refused:
            results[i] = replace(result, violation=stack.refused[result.code])
        elif result.code in stack.grants:
            given = stack.grants[result.code]
            results[i] = replace(
                result, discount=given.discount, lines=given.lines, shipping_discount=given.shipping
            )
    return CartResult(tuple(results), cart.order_total.currency)


def _read(tenant: TenantRef, code: str, **reading) -> CouponState | None:
    try:
        return read_state(tenant, code, **reading)
    except NotFound:
        return None


def _own_holds(states: list[CouponState | None], ctx: rules.Context) -> list:
    """States with the order's own live holds uncounted: a cart redeeming an order confirms
    the holds that order made (another customer's hold on the order is a conflict)."""
    adjusted = []
    for state in states:
        if state is not None and state.hold_id is not None:
            own_hold(state.hold_id, ctx)
            state = state.without_own_hold()
        adjusted.append(state)
    return adjusted


def validate(
    *, tenant: TenantRef, caller: Caller, cart: Cart, customer_hint: str | None = None
) -> CartResult:
    """What each code of the cart would give together; writes nothing."""
    customer = caller.acting_customer(customer_hint)
    now = utcnow()
    states = [_read(tenant, code, customer=customer, now=now) for code in cart.codes]
    return _evaluate(tenant, cart, states, caller, customer, now)


def redeem(
    *, tenant: TenantRef, caller: Caller, cart: Cart, customer_hint: str | None = None
) -> CartResult:
    """Redeem every code of the cart in one transaction, or none (CartNotApplicable)."""
    customer, owner = caller.acting_customer(customer_hint), caller.order_owner
    now = utcnow()
    reading = {"customer": customer, "order_id": cart.order_id, "owner": owner, "now": now}
    states = [_read(tenant, code, **reading) for code in cart.codes]
    who = rules.Context(identified=caller.identified, customer_number=customer)
    result = _evaluate(tenant, cart, _own_holds(states, who), caller, customer, now)
    if result.refused:
        raise CartNotApplicable(result)
    with unit_of_work() as session:
        # Fixed lock order: every cart locks its coupons by ascending id.
        fresh_by_id = {
            state.id: locked_state(session, tenant, state.id, **reading)
            for state in sorted(states, key=lambda s: s.id)
        }
        fresh = [fresh_by_id[state.id] for state in states]
        if cart.order_id is not None and any(s.replay_id is not None for s in fresh):
            raise OrderAlreadyRedeemed("This order id already redeemed a code of the cart")
        # After every coupon lock, the holds' (the order every writer takes).
        own = {
            s.id: own_hold(s.hold_id, who, lock=True)
            for s in fresh
            if cart.order_id is not None and s.hold_id is not None
        }
        counted = [s.without_own_hold() if s.id in own else s for s in fresh]
        result = _evaluate(tenant, cart, counted, caller, customer, now)
        if result.refused:
            raise CartNotApplicable(result)
        done = []
        for code_result, state in zip(result.codes, fresh, strict=True):
            # The redemption records all the code gave: off the order and the shipping.
            given = code_result.discount + (code_result.shipping_discount or Decimal(0))
            order = replace(cart.order(), discount=Money(given, cart.order_total.currency))
            row = ledger.order_row(tenant, state, customer, order, now, owner)
            outcome = ledger.record(tenant, session, state, row)
            if state.id in own:
                ledger.confirm_hold(own[state.id], row["id"], now)
            done.append(replace(code_result, redemption_id=outcome.redemption_id))
    for _ in done:
        observe.redemption("redeemed")
    return CartResult(tuple(done), result.currency)
