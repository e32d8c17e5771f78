"""Promo codes: the promo dialect's face of the engine.

A promo code is a coupon of the caller's tenant (origin `promo`) whose discount
is a gift product, with a minimum order (`fullPrice`, in the tenant's
currency), a required product, a date window and a use limit (`times`).
Checking and redeeming go through `redemption.check_order` and `redemption.redeem`;
this module only translates. Any coupon of the tenant can be checked, so a
tenant coupon with a money discount reports it in `discountTotal`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from app.auth import Caller
from app.engine import rules
from app.engine.catalog import coupons, lookup
from app.engine.rules import Money, Violation
from app.engine.tenants import TenantRef
from app.engine.usage import holds, redemption
from app.engine.usage.redemption import Order
from app.errors import Conflict, NotFound, RuleViolated, ValidationFailed
from app.models import Coupon, DiscountType, Origin

# Refusals the order itself can cure: the gift is then "lost", not out of reach.
ORDER_FIXABLE = frozenset({rules.TOTAL_TOO_LOW, rules.PRODUCT_MISSING})

# Promo wire names of the engine's fields, for error details.
_WIRE_NAMES = {
    "code": "coupon",
    "freeProducts": "code",
    "maxRedemptions": "times",
    "restrictions.validFrom": "dateFrom",
    "restrictions.validUntil": "dateTo",
    "restrictions.minOrderValue.amount": "fullPrice",
    "restrictions.minOrderValue.currency": "fullPrice",
}


class PromoExists(Conflict):
    type, code = "promo_is_exists", "PROMO_IS_EXISTS"

    def __init__(self, coupon: str):
        self.params = {"coupon": coupon}
        super().__init__(f"Promo code '{coupon}' already exists")


class PromoNotFound(NotFound):
    type, message = "promo_not_found", "Promo code not found"


@dataclass(frozen=True)
class Verdict:
    """What a check (or redeem) found: the coupon and every rule the order breaks."""

    coupon_code: str | None = None
    violations: tuple[Violation, ...] = ()
    gifts: tuple[str, ...] = ()
    discount: Decimal = Decimal(0)
    # False when the request named no code: nothing applies, nothing is refused.
    checked: bool = True
    # The hold a redeem with a time to live made (or found) for its order id.
    reservation: holds.HoldMade | None = None

    @property
    def applies(self) -> bool:
        return self.checked and not self.violations

    @property
    def free_products(self) -> list[str]:
        return list(self.gifts) if self.applies else []

    @property
    def lost_gifts(self) -> list[str]:
        """Gifts the order could still earn (only order-curable refusals)."""
        if self.applies or not self.violations:
            return []
        if all(v.type in ORDER_FIXABLE for v in self.violations):
            return list(self.gifts)
        return []

    @property
    def discounts(self) -> int:
        """How many discounts apply (the answer's `discounts`): one money discount or none."""
        return 1 if self.applies and self.discount > 0 else 0


NOTHING_TO_CHECK = Verdict(checked=False)
NOT_FOUND = Verdict(violations=(Violation(rules.NOT_FOUND),))


@dataclass(frozen=True)
class PromoOrder:
    """The check body: code, order total without gifts and delivery, product codes."""

    coupon: str | None
    total: Decimal | None
    products: frozenset[str]
    order_id: str | None = None
    # Redeem only: hold the use for this long instead of consuming it.
    ttl_seconds: int | None = None

    def engine_order(self, tenant: TenantRef, *, as_stated: bool = False) -> Order:
        """The engine's order, in the tenant's currency. No total means nothing to
        discount (0), or, `as_stated`, none given: a redemption confirming the order's
        hold then takes the hold's total instead of differing from it."""
        total = self.total
        if total is None and not as_stated:
            total = Decimal(0)
        return Order(
            total=None if total is None else Money(total, tenant.currency),
            products=self.products,
            order_id=self.order_id,
        )


# --- admin ------------------------------------------------------------------------


def list_promos(*, tenant: TenantRef) -> list[Coupon]:
    """Every live promo code of the tenant, in creation order."""
    items, _ = coupons.list_coupons(tenant=tenant, page_size=None, origin=Origin.PROMO)
    return items


def create_promo(*, tenant: TenantRef, values: dict) -> Coupon:
    """A new promo code; codes are unique per tenant regardless of case."""
    code = values["coupon"]
    if lookup.find(tenant=tenant, code=code) is not None:
        raise PromoExists(code)
    definition = {"code": code, "discount_type": DiscountType.FREE_PRODUCT}
    definition.update(_definition(tenant, values))
    with _promo_field_names():
        try:
            return coupons.create_coupon(tenant=tenant, values=definition, origin=Origin.PROMO)
        except coupons.CouponCodeExists:
            raise PromoExists(code) from None


def update_promo(*, tenant: TenantRef, promo_id: int, changes: dict) -> Coupon:
    """Change some fields; `coupon` renames the code (ids, not codes, name promos)."""
    promo = get_promo(tenant=tenant, promo_id=promo_id)
    new_code = changes.get("coupon")
    if new_code is not None and Coupon.key_for(new_code) != promo.code_key:
        if lookup.find(tenant=tenant, code=new_code) is not None:
            raise PromoExists(new_code)
    with _promo_field_names():
        try:
            return coupons.change_coupon(promo, _definition(tenant, changes), new_code=new_code)
        except coupons.CouponCodeExists:
            raise PromoExists(new_code) from None


def delete_promo(*, tenant: TenantRef, promo_id: int) -> None:
    """Soft delete, as for every coupon: history stays and the code stays taken."""
    promo = get_promo(tenant=tenant, promo_id=promo_id)
    coupons.delete_coupon(tenant=tenant, code=promo.code)


def get_promo(*, tenant: TenantRef, promo_id: int) -> Coupon:
    promo = lookup.find_by_id(tenant=tenant, coupon_id=promo_id, origin=Origin.PROMO)
    if promo is None:
        raise PromoNotFound()
    return promo


def _definition(tenant: TenantRef, values: dict) -> dict:
    """The engine's definition keys for the promo fields present in `values`."""
    definition: dict = {}
    if "gift" in values:
        definition["free_products"] = [values["gift"]]
    if "full_price" in values:
        price = values["full_price"] or Decimal(0)
        # A zero minimum is no minimum; a real one is in the tenant's currency.
        definition["min_order_amount"] = price or None
        definition["min_order_currency"] = tenant.currency if price else None
    if "times" in values:
        definition["max_redemptions"] = (
            rules.UNLIMITED if values["times"] is None else values["times"]
        )
    for key, engine_key in (
        ("active", "active"),
        ("date_from", "valid_from"),
        ("date_to", "valid_until"),
        ("has_product", "required_product"),
    ):
        if key in values:
            definition[engine_key] = values[key]
    return definition


@contextmanager
def _promo_field_names():
    """Report the engine's validation details under the promo dialect's field names."""
    try:
        yield
    except ValidationFailed as error:
        for detail in error.details:
            detail["field"] = _WIRE_NAMES.get(detail["field"], detail["field"])
        raise


# --- check and redeem -------------------------------------------------------------


def check_promo(*, tenant: TenantRef, caller: Caller, order: PromoOrder) -> Verdict:
    """Evaluate a code for an order; writes nothing."""
    if not order.coupon:
        return NOTHING_TO_CHECK
    engine_order = order.engine_order(tenant)
    try:
        coupon, violations = redemption.check_order(
            tenant=tenant, code=order.coupon, caller=caller, order=engine_order
        )
    except NotFound:
        return NOT_FOUND
    discount = Decimal(0) if violations else rules.allowed_discount(coupon, engine_order.total)
    return _verdict(coupon, violations, discount)


def redeem(*, tenant: TenantRef, caller: Caller, order: PromoOrder) -> Verdict:
    """Consume one use for this order id through the engine's atomic path.

    A repeated order id answers as the first call did and records nothing. With a
    time to live the use is held for the order instead (`holds`); redeeming the same
    order id later, without one, confirms that hold.
    """
    try:
        if order.ttl_seconds is not None:
            return _hold(tenant, caller, order)
        outcome = redemption.redeem(
            tenant=tenant,
            code=order.coupon,
            caller=caller,
            order=order.engine_order(tenant, as_stated=True),
        )
    except NotFound:
        return NOT_FOUND
    except RuleViolated as refused:
        # Report every reason, as the check does; a race may leave only the one refused.
        verdict = check_promo(tenant=tenant, caller=caller, order=order)
        if verdict.violations:
            return verdict
        return Verdict(
            coupon_code=verdict.coupon_code,
            violations=(refused.violation,),
            gifts=verdict.gifts,
        )
    return Verdict(
        coupon_code=outcome.coupon_code,
        gifts=outcome.free_products,
        discount=outcome.discount or Decimal(0),
    )


def release(*, tenant: TenantRef, caller: Caller, coupon: str, order_id: str) -> None:
    """Give back the use a redeem with ttlSeconds held for this order id."""
    holds.release_for_order(tenant=tenant, code=coupon, order_id=order_id, caller=caller)


def _hold(tenant: TenantRef, caller: Caller, order: PromoOrder) -> Verdict:
    engine_order = order.engine_order(tenant)
    made = holds.hold(
        tenant=tenant,
        code=order.coupon,
        caller=caller,
        order=engine_order,
        ttl_seconds=order.ttl_seconds,
    )
    return Verdict(
        coupon_code=made.coupon_code,
        gifts=made.free_products,
        discount=made.discount or Decimal(0),
        reservation=made,
    )


def _verdict(coupon: Coupon, violations: list[Violation], discount: Decimal) -> Verdict:
    return Verdict(
        coupon_code=coupon.code,
        violations=tuple(violations),
        gifts=tuple(coupon.free_products or ()),
        discount=discount,
    )
