"""Coupon definitions: create, read, list, replace, update, soft delete.

Dialects hand in a flat `definition` dict keyed by the names below; this module
alone decides what a valid coupon is, so every dialect gets the same rules.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.auth import Caller
from app.engine import canonical, codes, rules
from app.engine.money import MAX_AMOUNT, round_money
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.errors import Conflict, CouponNotFound, RuleViolated, ValidationFailed
from app.extensions import db
from app.models import Coupon, DiscountType, Origin

UNLIMITED = rules.UNLIMITED

# Every key of a definition, with the value a missing key means.
DEFAULTS: dict = {
    "name": None,
    "description": None,
    "discount_type": None,
    "discount_percentage": None,
    "discount_amount": None,
    "discount_currency": None,
    "free_products": [],
    "free_shipping": False,
    "allow_anonymous": False,
    "max_redemptions": UNLIMITED,
    "max_redemptions_per_customer": UNLIMITED,
    "valid_from": None,
    "valid_until": None,
    "min_order_amount": None,
    "min_order_currency": None,
    "required_product": None,
    "valid_for": [],
    "active": True,
    "exclusive": False,
    "stacking_priority": 0,
    "listable": False,
}

# Wire names for error details (the tenant coupon dialect's, the most complete).
FIELD_NAMES = {
    "code": "code",
    "discount_type": "discountType",
    "discount_percentage": "discountPercentage",
    "discount_amount": "discountAbsolute.amount",
    "discount_currency": "discountAbsolute.currency",
    "free_products": "freeProducts",
    "max_redemptions": "maxRedemptions",
    "max_redemptions_per_customer": "maxRedemptionsPerCustomer",
    "valid_from": "restrictions.validFrom",
    "valid_until": "restrictions.validUntil",
    "min_order_amount": "restrictions.minOrderValue.amount",
    "min_order_currency": "restrictions.minOrderValue.currency",
    "valid_for": "restrictions.validFor",
    "stacking_priority": "stackingPriority",
}


CODE_RULE = "Letters, digits, '_', '.', '-'; 1-64"


class CouponCodeExists(Conflict):
    type, message = "coupon_code_exists", "A coupon with this code already exists"


def _invalid(field: str, message: str) -> dict:
    return {"field": FIELD_NAMES.get(field, field), "type": "invalid", "message": message}


def check_definition(definition: dict, explicit: set[str] | None = None) -> list[dict]:
    """Problems of a complete definition, as error details (empty when valid)."""
    explicit = explicit if explicit is not None else set(definition)
    problems: list[dict] = []
    kind = definition["discount_type"]
    if kind not in DiscountType.ALL:
        problems.append(_invalid("discount_type", f"Must be one of {', '.join(DiscountType.ALL)}"))
    percentage = definition["discount_percentage"]
    amount = definition["discount_amount"]
    if kind == DiscountType.PERCENT:
        if percentage is None:
            problems.append(_invalid("discount_percentage", "Required for PERCENT coupons"))
        elif not 0 < percentage <= 100:
            problems.append(_invalid("discount_percentage", "Must be greater than 0, at most 100"))
        if "discount_amount" in explicit and amount is not None:
            problems.append(_invalid("discount_amount", "Not allowed for PERCENT coupons"))
    if kind == DiscountType.ABSOLUTE:
        if amount is None or definition["discount_currency"] is None:
            problems.append(_invalid("discount_amount", "Amount and currency required"))
        elif not 0 < amount <= MAX_AMOUNT:
            problems.append(_invalid("discount_amount", "Must be positive and not absurd"))
        if "discount_percentage" in explicit and percentage is not None:
            problems.append(_invalid("discount_percentage", "Not allowed for ABSOLUTE coupons"))
    if kind == DiscountType.FREE_PRODUCT and not definition["free_products"]:
        problems.append(_invalid("free_products", "At least one product for FREE_PRODUCT"))
    discount_currency = definition["discount_currency"] if kind == DiscountType.ABSOLUTE else None
    min_currency = definition["min_order_currency"]
    if definition["min_order_amount"] is not None and min_currency is None:
        problems.append(_invalid("min_order_currency", "Required with a minimum order value"))
    if discount_currency and min_currency and discount_currency != min_currency:
        problems.append(_invalid("min_order_currency", "Must equal the discount currency"))
    valid_from, valid_until = definition["valid_from"], definition["valid_until"]
    if valid_from is not None and valid_until is not None and valid_from >= valid_until:
        problems.append(_invalid("valid_until", "Must be after validFrom"))
    for field in ("max_redemptions", "max_redemptions_per_customer"):
        value = definition[field]
        if value != UNLIMITED and not 1 <= value <= 1_000_000_000:
            problems.append(_invalid(field, "Must be -1 (unlimited) or a positive number"))
    if definition["allow_anonymous"]:
        if definition["max_redemptions_per_customer"] != UNLIMITED:
            problems.append(
                _invalid("max_redemptions_per_customer", "Anonymous coupons cannot limit customers")
            )
        if definition["valid_for"]:
            problems.append(_invalid("valid_for", "Anonymous coupons cannot name customers"))
    return problems


def apply_definition(coupon: Coupon, definition: dict) -> None:
    """Write a valid definition onto the model, normalising what the type ignores."""
    kind = definition["discount_type"]
    currency = (
        definition["discount_currency"] if kind == DiscountType.ABSOLUTE else None
    ) or definition["min_order_currency"]
    coupon.name = definition["name"]
    coupon.description = definition["description"]
    coupon.discount_type = kind
    coupon.discount_percentage = (
        definition["discount_percentage"] if kind == DiscountType.PERCENT else None
    )
    coupon.discount_amount = (
        round_money(definition["discount_amount"], currency)
        if kind == DiscountType.ABSOLUTE
        else None
    )
    coupon.currency = currency
    coupon.free_products = list(definition["free_products"] or [])
    coupon.free_shipping = bool(definition["free_shipping"])
    coupon.allow_anonymous = bool(definition["allow_anonymous"])
    coupon.max_redemptions = definition["max_redemptions"]
    coupon.max_redemptions_per_customer = definition["max_redemptions_per_customer"]
    coupon.valid_from = definition["valid_from"]
    coupon.valid_until = definition["valid_until"]
    min_amount = definition["min_order_amount"]
    coupon.min_order_amount = round_money(min_amount, currency) if min_amount is not None else None
    coupon.required_product = definition["required_product"]
    coupon.valid_for = list(definition["valid_for"] or [])
    coupon.active = bool(definition["active"])
    coupon.exclusive = bool(definition["exclusive"])
    coupon.stacking_priority = definition["stacking_priority"]
    coupon.listable = bool(definition["listable"])


def definition_of(coupon: Coupon) -> dict:
    """The definition a stored coupon was made from (for partial updates)."""
    absolute = coupon.discount_type == DiscountType.ABSOLUTE
    return {
        "name": coupon.name,
        "description": coupon.description,
        "discount_type": coupon.discount_type,
        "discount_percentage": coupon.discount_percentage,
        "discount_amount": coupon.discount_amount,
        "discount_currency": coupon.currency if absolute else None,
        "free_products": list(coupon.free_products or []),
        "free_shipping": coupon.free_shipping,
        "allow_anonymous": coupon.allow_anonymous,
        "max_redemptions": coupon.max_redemptions,
        "max_redemptions_per_customer": coupon.max_redemptions_per_customer,
        "valid_from": coupon.valid_from,
        "valid_until": coupon.valid_until,
        "min_order_amount": coupon.min_order_amount,
        "min_order_currency": coupon.currency if coupon.min_order_amount is not None else None,
        "required_product": coupon.required_product,
        "valid_for": list(coupon.valid_for or []),
        "active": coupon.active,
        "exclusive": coupon.exclusive,
        "stacking_priority": coupon.stacking_priority,
        "listable": coupon.listable,
    }


def _validated(definition: dict, explicit: set[str]) -> dict:
    problems = check_definition(definition, explicit)
    if problems:
        raise ValidationFailed(details=problems)
    return definition


def new_coupon(
    *, tenant: TenantRef, values: dict, origin: str = Origin.COUPON, code_prefix: str = ""
) -> Coupon:
    """Build (not commit) a valid coupon; the caller owns the transaction."""
    values = dict(values)
    code = values.pop("code", None)
    if code is not None and not codes.is_valid(code):
        raise ValidationFailed(details=[_invalid("code", CODE_RULE)])
    definition = _validated({**DEFAULTS, **values}, set(values))
    coupon = Coupon(tenant_id=tenant.id, origin=origin, redemption_count=0, deleted=False)
    coupon.code = canonical.code(code) if code else codes.generate(prefix=code_prefix)
    coupon.code_key = Coupon.key_for(coupon.code)
    apply_definition(coupon, definition)
    return coupon


def create_coupon(*, tenant: TenantRef, values: dict, origin: str = Origin.COUPON) -> Coupon:
    """Create a coupon; a missing code is generated (retried on the rare collision)."""
    attempts = 1 if values.get("code") else 5
    with unit_of_work():
        for _ in range(attempts):
            coupon = new_coupon(tenant=tenant, values=values, origin=origin)
            try:
                with db.session.begin_nested():  # a taken code undoes only this attempt
                    db.session.add(coupon)
                return coupon
            except IntegrityError:
                continue
        raise CouponCodeExists()


def find_by_id(*, tenant: TenantRef, coupon_id: int, origin: str | None = None) -> Coupon | None:
    """The tenant's live (not deleted) coupon with this numeric id, optionally of one origin."""
    conditions = [Coupon.tenant_id == tenant.id, Coupon.id == coupon_id, Coupon.deleted.is_(False)]
    if origin is not None:
        conditions.append(Coupon.origin == origin)
    return db.session.scalar(select(Coupon).where(*conditions))


def find(*, tenant: TenantRef, code: str, for_update: bool = False) -> Coupon | None:
    """The tenant's coupon with this code (any case), deleted ones included; a campaign's
    code becomes a coupon here the first time it is looked up."""
    from app.engine.catalog.campaigns import materialize  # campaigns builds on this module

    query = select(Coupon).where(
        Coupon.tenant_id == tenant.id, Coupon.code_key == Coupon.key_for(code)
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    coupon = db.session.scalar(query)
    if coupon is None and materialize(tenant.id, code):
        coupon = db.session.scalar(query)
    return coupon


def get_coupon(*, tenant: TenantRef, code: str) -> Coupon:
    """The tenant's coupon, deleted ones included (managers' view)."""
    coupon = find(tenant=tenant, code=code)
    if coupon is None:
        raise CouponNotFound()
    return coupon


def get_for_caller(*, tenant: TenantRef, code: str, caller: Caller, customer_number: str | None):
    """A coupon as `caller` may see it: managers see all, others only what they may use."""
    coupon = find(tenant=tenant, code=code)
    if coupon is None or (coupon.deleted and not caller.manages):
        raise CouponNotFound()
    if caller.manages:
        return coupon
    context = rules.Context(
        identified=caller.identified, customer_number=caller.acting_customer(customer_number)
    )
    if not rules.may_use(coupon, context):
        raise RuleViolated(rules.Violation(rules.FORBIDDEN))
    return coupon


def list_coupons(
    *,
    tenant: TenantRef,
    page: int = 1,
    page_size: int | None,
    show_deleted: bool = False,
    deleted: bool | None = None,
    origin: str | None = None,
) -> tuple[list[Coupon], int]:
    """One page of the tenant's coupons in creation order (all if no page size), and the count."""
    conditions = [Coupon.tenant_id == tenant.id]
    # An explicit `deleted` filter wins over showDeleted (the seed's rule).
    if deleted is not None:
        conditions.append(Coupon.deleted.is_(deleted))
    elif not show_deleted:
        conditions.append(Coupon.deleted.is_(False))
    if origin is not None:
        conditions.append(Coupon.origin == origin)
    total = db.session.scalar(select(func.count()).select_from(Coupon).where(*conditions))
    query = select(Coupon).where(*conditions).order_by(Coupon.id)
    if page_size is not None:
        query = query.offset((page - 1) * page_size).limit(page_size)
    return list(db.session.scalars(query).all()), total or 0


def replace_coupon(*, tenant: TenantRef, code: str, values: dict) -> Coupon:
    """PUT: the whole definition is replaced; the code itself cannot change."""
    coupon = get_coupon(tenant=tenant, code=code)
    return _save(coupon, {**DEFAULTS, **_without_code(coupon, values)}, set(values))


def update_coupon(*, tenant: TenantRef, code: str, changes: dict) -> Coupon:
    """PATCH: only the given fields change."""
    coupon = get_coupon(tenant=tenant, code=code)
    return _save(coupon, {**definition_of(coupon), **_without_code(coupon, changes)}, set(changes))


def change_coupon(coupon: Coupon, changes: dict, *, new_code: str | None = None) -> Coupon:
    """PATCH a loaded coupon, renaming it too (for dialects whose ids are not codes)."""
    if new_code is not None and not codes.is_valid(new_code):
        raise ValidationFailed(details=[_invalid("code", CODE_RULE)])
    with unit_of_work():
        try:
            with db.session.begin_nested():  # a code taken meanwhile is a conflict, not a 500
                if new_code is not None:
                    # Same code in another case: kept as given, still the same key.
                    coupon.code = canonical.code(new_code)
                    coupon.code_key = Coupon.key_for(new_code)
                return _save(coupon, {**definition_of(coupon), **changes}, set(changes))
        except IntegrityError:
            raise CouponCodeExists() from None


def _without_code(coupon: Coupon, values: dict) -> dict:
    values = dict(values)
    code = values.pop("code", None)
    if code is not None and Coupon.key_for(code) != coupon.code_key:
        raise ValidationFailed(details=[_invalid("code", "The code of a coupon cannot change")])
    return values


def _save(coupon: Coupon, definition: dict, explicit: set[str]) -> Coupon:
    if coupon.deleted:
        raise Conflict("A deleted coupon cannot be changed")
    with unit_of_work():
        apply_definition(coupon, _validated(definition, explicit))
    return coupon


def delete_coupon(*, tenant: TenantRef, code: str) -> None:
    """Soft delete: the coupon stays readable by managers and its code stays taken."""
    with unit_of_work():
        get_coupon(tenant=tenant, code=code).deleted = True


def coupon_status(coupon: Coupon, now: datetime) -> str:
    """INACTIVE / VALID / EXPIRED / USED."""
    return rules.status(coupon, now)
