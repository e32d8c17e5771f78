"""Carts: several codes on one order, and which codes would fit an order.

Validation reads every code's state and the tenant's live automatic promotions (one
statement, no transaction),
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
from app.engine.usage import budgets, ledger, rows
from app.engine.usage.redemption import own_hold
from app.engine.usage.state import (
    CouponState,
    Order,
    OrderAlreadyHeld,
    OrderAlreadyRedeemed,
    cart_states,
    context,
    locked_state,
)
from app.errors import Conflict, rule_message
from app.extensions import db


@dataclass(frozen=True)
class Cart:
    order_total: Money
    products: frozenset[str]
    codes: tuple[str, ...]
    order_id: str | None = None
    lines: tuple[promotions.Line, ...] = ()
    shipping_total: Decimal | None = None
    metadata: dict | None = None

    def order(self) -> Order:
        return Order(
            total=self.order_total,
            products=self.products,
            order_id=self.order_id,
            lines=self.lines,
            shipping_total=self.shipping_total,
            metadata=self.metadata,
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
    # An automatic promotion's name, and its state (to redeem it).
    name: str | None = None
    state: CouponState | None = None

    @property
    def applies(self) -> bool:
        return self.violation is None


@dataclass(frozen=True)
class CartResult:
    codes: tuple[CodeResult, ...]
    currency: str
    # The automatic promotions that apply, each with its discount.
    automatic: tuple[CodeResult, ...] = ()

    @property
    def total_discount(self) -> Decimal:
        every = (*self.codes, *self.automatic)
        return sum((c.discount or Decimal(0) for c in every), Decimal(0))

    @property
    def shipping_discount(self) -> Decimal:
        every = (*self.codes, *self.automatic)
        return sum((c.shipping_discount or Decimal(0) for c in every), Decimal(0))

    @property
    def refused(self) -> list[tuple[int, CodeResult]]:
        return [(i, c) for i, c in enumerate(self.codes) if not c.applies]


class CartNotApplicable(Conflict):
    type = "cart_not_applicable"
    message = "Not every code of the cart applies; nothing was redeemed"

    def __init__(self, result: CartResult):
        self.result = result
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
    automatic: list[CouponState] = (),
) -> CartResult:
    """Each code's rules alone, then stacking among those that pass and the automatic
    promotions whose rules pass (the others are left out, not refused)."""
    results: list[CodeResult] = []
    candidates: list[stacking.Candidate] = []
    order = cart.order()

    def ctx(state: CouponState):
        # A code the order holds has its hold's reservation: its budget is asked under
        # the locks, for what the cart gives beyond the hold (`_over_budget`).
        budget = None
        if state.hold_id is None:
            spent = {"tenant_id": tenant.id, "customer": customer, "now": now}
            budget = budgets.left(db.session, state, **spent)
        return context(state, caller, customer, order, budget)

    for position, (code, state) in enumerate(zip(cart.codes, states, strict=True)):
        if state is None:
            results.append(CodeResult(code, violation=Violation(rules.NOT_FOUND)))
            continue
        violations = rules.evaluate(state, ctx(state), now)
        result = CodeResult(code, state.code, free_products=tuple(state.free_products or ()))
        if violations:
            result = replace(result, violation=violations[0])
        else:
            candidates.append(stacking.Candidate(code, state, position))
        results.append(result)
    typed = {state.id for state in states if state is not None}
    offered = [s for s in automatic if s.id not in typed]  # a typed code counts as typed
    for position, state in enumerate(offered, start=len(cart.codes)):
        if not rules.evaluate(state, ctx(state), now):
            candidates.append(stacking.Candidate(state.code, state, position, automatic=True))
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
    applied = tuple(
        CodeResult(
            state.code,
            state.code,
            discount=stack.grants[state.code].discount,
            free_products=tuple(state.free_products or ()),
            lines=stack.grants[state.code].lines,
            shipping_discount=stack.grants[state.code].shipping,
            name=state.name,
            state=state,
        )
        for state in offered
        if state.code in stack.grants
    )
    return CartResult(tuple(results), cart.order_total.currency, applied)


def _own_holds(states: list, ctx: rules.Context, *, typed: bool = True) -> list:
    """States with the order's own live holds uncounted: a cart redeeming an order confirms
    the holds that order made. Another customer's hold on the order is a conflict for a
    typed code; an automatic promotion keeps it counted (and may be left out)."""
    adjusted = []
    for state in states:
        if state is not None and state.hold_id is not None:
            try:
                own_hold(state.hold_id, ctx)
                state = state.without_own_hold()
            except OrderAlreadyHeld:
                if typed:
                    raise
        adjusted.append(state)
    return adjusted


def _locked_holds(states: list[CouponState], ctx: rules.Context, *, typed: bool) -> dict:
    """The order's own live holds on these coupons, locked (after every coupon lock)."""
    own = {}
    for state in states:
        if state.hold_id is not None:
            try:
                own[state.id] = own_hold(state.hold_id, ctx, lock=True)
            except OrderAlreadyHeld:
                if typed:
                    raise
    return own


def _over_budget(tenant, state: CouponState, customer, order, now, hold) -> Violation | None:
    """Under the locks, with the cart's codes before it written: whether the budgets cannot
    pay for what this code gives in the cart (two codes of one campaign share its budget;
    a code the order holds has what its hold reserved, and asks only for more)."""
    if hold is not None and _within(order.discount, hold):
        return None  # the hold reserved it (even if the budget was lowered since)
    left = budgets.left(db.session, state, tenant_id=tenant.id, customer=customer, now=now)
    if hold is not None:
        left = budgets.with_own_hold(left, hold)
    if left is None:
        return None
    refused = rules.budget_violations(state, rules.Context(discount=order.discount, budget=left))
    return refused[0] if refused else None


def _within(discount: Money | None, hold) -> bool:
    return (
        discount is not None
        and hold.discount_amount is not None
        and discount.currency == hold.discount_currency
        and discount.amount <= hold.discount_amount
    )


def validate(
    *, tenant: TenantRef, caller: Caller, cart: Cart, customer_hint: str | None = None
) -> CartResult:
    """What each code of the cart would give together; writes nothing."""
    customer = caller.acting_customer(customer_hint)
    now = utcnow()
    states, automatic = cart_states(tenant, cart.codes, customer=customer, now=now, replica=True)
    return _evaluate(tenant, cart, states, caller, customer, now, automatic)


def redeem(
    *, tenant: TenantRef, caller: Caller, cart: Cart, customer_hint: str | None = None
) -> CartResult:
    """Redeem every code of the cart and the automatic promotions that apply, in one
    transaction: every code or none (CartNotApplicable); an automatic promotion that no
    longer applies under the locks (its last use went to another cart) is left out. A
    code refused for its spent budget announces it, as a single redemption does."""
    try:
        return _redeem(tenant, caller, cart, customer_hint)
    except CartNotApplicable as refused:
        for _, code in refused.result.refused:
            if code.violation.type == rules.BUDGET_EXHAUSTED:
                budgets.announce_exhausted(tenant, code.code, code.violation.data.get("budget"))
        raise


def _redeem(tenant: TenantRef, caller: Caller, cart: Cart, customer_hint: str | None):
    customer, owner = caller.acting_customer(customer_hint), caller.order_owner
    now = utcnow()
    reading = {"customer": customer, "order_id": cart.order_id, "owner": owner, "now": now}
    states, automatic = cart_states(tenant, cart.codes, **reading)
    who = rules.Context(identified=caller.identified, customer_number=customer)
    result = _evaluate(
        tenant,
        cart,
        _own_holds(states, who),
        caller,
        customer,
        now,
        _own_holds(automatic, who, typed=False),
    )
    if result.refused:
        raise CartNotApplicable(result)
    offered = [r.state.id for r in result.automatic]
    with unit_of_work() as session:
        # Fixed lock order: every cart locks its coupons by ascending id.
        ids = sorted({*(state.id for state in states), *offered})
        fresh_by_id = {i: locked_state(session, tenant, i, **reading) for i in ids}
        budgets.lock_campaigns(session, fresh_by_id.values())  # after the coupons
        fresh = [fresh_by_id[state.id] for state in states]
        if cart.order_id is not None and any(s.replay_id for s in fresh_by_id.values()):
            raise OrderAlreadyRedeemed("This order id already redeemed a code of the cart")
        # After every coupon lock, the holds' (the order every writer takes).
        still = [fresh_by_id[i] for i in offered]
        own = {}
        if cart.order_id is not None:
            own = _locked_holds(fresh, who, typed=True)
            own |= _locked_holds(still, who, typed=False)
        counted = [s.without_own_hold() if s.id in own else s for s in fresh]
        still = [s.without_own_hold() if s.id in own else s for s in still]
        result = _evaluate(tenant, cart, counted, caller, customer, now, still)
        if result.refused:
            raise CartNotApplicable(result)
        done, automatic_done = [], []
        used = [(r, s, done) for r, s in zip(result.codes, fresh, strict=True)]
        used += [(r, r.state, automatic_done) for r in result.automatic]
        for code_result, state, into in used:
            # The redemption records all the code gave: off the order and the shipping.
            given = code_result.discount + (code_result.shipping_discount or Decimal(0))
            order = replace(cart.order(), discount=Money(given, cart.order_total.currency))
            refused = _over_budget(tenant, state, customer, order, now, own.get(state.id))
            if refused is not None:
                if into is automatic_done:
                    continue  # left out, as when its last use went to another cart
                codes = tuple(
                    replace(r, violation=refused) if r.code == code_result.code else r
                    for r in result.codes
                )
                raise CartNotApplicable(replace(result, codes=codes))
            row = rows.order_row(tenant, state, customer, order, now, owner)
            outcome = ledger.record(tenant, session, state, row)
            if state.id in own:
                ledger.confirm_hold(own[state.id], row["id"], now)
            into.append(replace(code_result, redemption_id=outcome.redemption_id))
    for _ in range(len(done) + len(automatic_done)):
        observe.redemption("redeemed")
    return CartResult(tuple(done), result.currency, tuple(automatic_done))
