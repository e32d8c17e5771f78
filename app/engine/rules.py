"""Pure coupon rule evaluation: coupon + context + now -> violations.

No database and no clock of its own, so every dialect shares it and tests
need nothing but objects. The order of checks is the tenant dialect's documented one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from app.engine import promotions
from app.engine.money import percent_of

NOT_FOUND = "coupon_not_found"
FORBIDDEN = "coupon_redemption_forbidden"
NOT_ACTIVE = "coupon_not_active"
EXPIRED = "coupon_expired"
EXCEEDED = "coupon_redemptions_exceeded"
CURRENCY = "coupon_currency_incorrect"
TOTAL_TOO_LOW = "coupon_order_total_too_low"
PRODUCT_MISSING = "coupon_required_product_missing"
DISCOUNT_CURRENCY = "coupon_discount_currency_incorrect"
DISCOUNT_AMOUNT = "coupon_discount_amount_incorrect"
ITEMS_REQUIRED = "coupon_items_required"
NO_ELIGIBLE_ITEMS = "coupon_not_applicable_to_items"
BUDGET_EXHAUSTED = "coupon_budget_exhausted"
CAMPAIGN_CUSTOMER_LIMIT = "campaign_customer_limit"

UNLIMITED = -1


class CouponLike(Protocol):
    """What the evaluator reads of a coupon (the ORM model satisfies it)."""

    deleted: bool
    active: bool
    allow_anonymous: bool
    valid_for: list
    valid_from: datetime | None
    valid_until: datetime | None
    max_redemptions: int
    max_redemptions_per_customer: int
    redemption_count: int
    discount_type: str
    discount_percentage: Decimal | None
    discount_amount: Decimal | None
    currency: str | None
    min_order_amount: Decimal | None
    required_product: str | None


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class BudgetLeft:
    """What is left of the budgets a coupon draws on (its own and its campaign's), read
    by the engine: None for a part that has no cap."""

    discount: Decimal | None = None
    redemptions: int | None = None
    # Uses this customer may still make across the campaign.
    customer_uses: int | None = None
    # The money budget's currency: an order in another cannot be counted against it.
    currency: str | None = None
    # Whose money `discount` is: "coupon" or "campaign" (the tighter of the two).
    discount_from: str = "coupon"


@dataclass(frozen=True)
class Context:
    """Who wants to use the coupon, for what order."""

    # True when the caller may use non-anonymous coupons (a redeem scope or a customer).
    identified: bool = False
    customer_number: str | None = None
    # Redemptions and live holds this customer already has on the coupon (looked up by
    # the caller).
    customer_uses: int = 0
    # Live holds on the coupon: uses kept for checkouts in progress, taken like redemptions.
    live_holds: int = 0
    order_total: Money | None = None
    discount: Money | None = None
    # Product codes in the order; None when the dialect does not send items.
    products: frozenset[str] | None = None
    # The order's lines with prices, and its shipping total, when the caller sends them.
    lines: tuple[promotions.Line, ...] = ()
    shipping_total: Decimal | None = None
    budget: BudgetLeft | None = None


@dataclass(frozen=True)
class Violation:
    type: str
    data: dict = field(default_factory=dict)


def evaluate(coupon: CouponLike, context: Context, now: datetime) -> list[Violation]:
    """Every rule the coupon breaks for this context, most fundamental first."""
    if coupon.deleted:
        return [Violation(NOT_FOUND)]
    violations: list[Violation] = []
    if not may_use(coupon, context):
        violations.append(Violation(FORBIDDEN))
    if not coupon.active or (coupon.valid_from is not None and now < coupon.valid_from):
        # `inactive` tells "switched off" from "not started yet" (the promo dialect says which).
        violations.append(
            Violation(NOT_ACTIVE, {"valid_from": coupon.valid_from, "inactive": not coupon.active})
        )
    if coupon.valid_until is not None and now > coupon.valid_until:
        violations.append(Violation(EXPIRED, {"valid_until": coupon.valid_until}))
    if _limit_reached(coupon, context):
        violations.append(Violation(EXCEEDED))
    violations += budget_violations(coupon, context)

    order_total = context.order_total
    coupon_currency = coupon.currency
    if order_total is not None and coupon_currency and order_total.currency != coupon_currency:
        violations.append(Violation(CURRENCY, {"expected": coupon_currency}))
    if coupon.min_order_amount is not None:
        total = order_total.amount if order_total is not None else Decimal(0)
        if total < coupon.min_order_amount:
            missing = coupon.min_order_amount - total
            violations.append(
                Violation(TOTAL_TOO_LOW, {"minimum": coupon.min_order_amount, "missing": missing})
            )
    if coupon.required_product and (
        context.products is None or coupon.required_product not in context.products
    ):
        violations.append(Violation(PRODUCT_MISSING, {"product": coupon.required_product}))

    promotion = promotions.promotion_of(coupon)
    if promotions.on_lines(promotion) and order_total is not None:
        if not context.lines:
            violations.append(Violation(ITEMS_REQUIRED))
        else:
            basket = _basket(order_total, context.lines, context.shipping_total)
            if not promotions.claim(promotion, context.lines, basket).units:
                violations.append(Violation(NO_ELIGIBLE_ITEMS))

    discount = context.discount
    if discount is not None:
        expected_currency = coupon_currency or (order_total.currency if order_total else None)
        if expected_currency and discount.currency != expected_currency:
            violations.append(Violation(DISCOUNT_CURRENCY, {"expected": expected_currency}))
        else:
            allowed = allowed_discount(coupon, order_total, context.lines, context.shipping_total)
            if discount.amount > allowed:
                violations.append(Violation(DISCOUNT_AMOUNT, {"allowed": allowed}))
    return violations


def budget_violations(coupon: CouponLike, context: Context) -> list[Violation]:
    """A use the budgets cannot pay for: no redemption left, or less money left than the
    discount this order gets (the one stated, else the most the coupon grants)."""
    left = context.budget
    if left is None:
        return []
    found = []
    paid_in = context.discount or context.order_total
    if left.currency and paid_in is not None and paid_in.currency != left.currency:
        return [Violation(CURRENCY, {"expected": left.currency})]
    if left.customer_uses is not None and left.customer_uses <= 0:
        found.append(Violation(CAMPAIGN_CUSTOMER_LIMIT))
    if left.redemptions is not None and left.redemptions <= 0:
        found.append(Violation(BUDGET_EXHAUSTED, {"left": Decimal(0), "budget": "campaign"}))
    elif left.discount is not None:
        wanted = (
            context.discount.amount
            if context.discount is not None
            else allowed_discount(
                coupon, context.order_total, context.lines, context.shipping_total
            )
        )
        if left.discount <= 0 or wanted > left.discount:
            found.append(
                Violation(
                    BUDGET_EXHAUSTED,
                    {"left": max(left.discount, Decimal(0)), "budget": left.discount_from},
                )
            )
    return found


def may_use(coupon: CouponLike, context: Context) -> bool:
    """The caller may see and use this coupon (scopes and customer restrictions)."""
    if not context.identified:
        return coupon.allow_anonymous
    if coupon.valid_for and context.customer_number not in coupon.valid_for:
        return False
    # A per-customer limit cannot be enforced without knowing the customer.
    if coupon.max_redemptions_per_customer != UNLIMITED and context.customer_number is None:
        return False
    return True


def _limit_reached(coupon: CouponLike, context: Context) -> bool:
    limit = coupon.max_redemptions
    if limit != UNLIMITED and coupon.redemption_count + context.live_holds >= limit:
        return True
    per_customer = coupon.max_redemptions_per_customer
    return per_customer != UNLIMITED and context.customer_uses >= per_customer


def _basket(order_total: Money, lines, shipping_total: Decimal | None) -> promotions.Basket:
    return promotions.Basket.of(
        order_total.currency, order_total.amount, lines, shipping_total or Decimal(0)
    )


def allowed_discount(
    coupon: CouponLike,
    order_total: Money | None,
    lines: tuple[promotions.Line, ...] = (),
    shipping_total: Decimal | None = None,
) -> Decimal:
    """The largest discount the coupon grants on this order (0 for pure gifts): off its
    total, its lines or its shipping, as the coupon's target says (app.engine.promotions)."""
    promotion = promotions.promotion_of(coupon)
    if promotion.target != promotions.ORDER or promotions.on_lines(promotion):
        if order_total is None:
            return Decimal(0)
        given = promotions.grant(promotion, lines, _basket(order_total, lines, shipping_total))
        return given.discount + given.shipping
    if coupon.discount_type == "PERCENT" and coupon.discount_percentage is not None:
        if order_total is None:
            return Decimal(0)
        off = percent_of(order_total.amount, coupon.discount_percentage, order_total.currency)
        cap = promotion.max_discount
        return off if cap is None else min(off, cap)
    if coupon.discount_type == "ABSOLUTE" and coupon.discount_amount is not None:
        if order_total is None:
            return coupon.discount_amount
        return min(coupon.discount_amount, order_total.amount)
    return Decimal(0)


def status(coupon: CouponLike, now: datetime) -> str:
    """INACTIVE, VALID, EXPIRED or USED, as the tenant coupon dialect reports it."""
    if coupon.valid_until is not None and now > coupon.valid_until:
        return "EXPIRED"
    if not coupon.active or (coupon.valid_from is not None and now < coupon.valid_from):
        return "INACTIVE"
    if coupon.max_redemptions != UNLIMITED and coupon.redemption_count >= coupon.max_redemptions:
        return "USED"
    return "VALID"
