"""A coupon definition: its defaults, its checks, and how it sits on a coupon row; and a
campaign's template, the definition every code of the campaign carries.

Dialects hand in a flat `definition` dict keyed by the names below; this module
alone decides what a valid coupon is, so every dialect gets the same rules.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from app.database import utcnow
from app.engine import rules
from app.engine.money import MAX_AMOUNT, round_money
from app.errors import ValidationFailed
from app.models import Allocation, Campaign, Coupon, DiscountType, Origin, Target

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
    "target": "ORDER",
    "applies_to": None,
    "excludes": None,
    "allocation": "ACROSS",
    "max_quantity": None,
    "max_discount_amount": None,
    "max_discount_currency": None,
    "buy_x_get_y": None,
    "automatic": False,
    "metadata": None,
    "budget_amount": None,
    "budget_currency": None,
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
    "applies_to": "appliesTo",
    "max_quantity": "maxQuantity",
    "max_discount_amount": "maxDiscount.amount",
    "max_discount_currency": "maxDiscount.currency",
    "buy_x_get_y": "buyXGetY",
    "budget_amount": "budget.maxDiscountTotal.amount",
    "budget_currency": "budget.maxDiscountTotal.currency",
}


CODE_RULE = "Letters, digits, '_', '.', '-'; 1-64"


def invalid(field: str, message: str) -> dict:
    """An error detail naming a definition field by its wire name."""
    return {"field": FIELD_NAMES.get(field, field), "type": "invalid", "message": message}


def check_definition(definition: dict, explicit: set[str] | None = None) -> list[dict]:
    """Problems of a complete definition, as error details (empty when valid)."""
    explicit = explicit if explicit is not None else set(definition)
    problems: list[dict] = []
    kind = definition["discount_type"]
    if kind not in DiscountType.ALL:
        problems.append(invalid("discount_type", f"Must be one of {', '.join(DiscountType.ALL)}"))
    percentage = definition["discount_percentage"]
    amount = definition["discount_amount"]
    if kind == DiscountType.PERCENT:
        if percentage is None:
            problems.append(invalid("discount_percentage", "Required for PERCENT coupons"))
        elif not 0 < percentage <= 100:
            problems.append(invalid("discount_percentage", "Must be greater than 0, at most 100"))
        if "discount_amount" in explicit and amount is not None:
            problems.append(invalid("discount_amount", "Not allowed for PERCENT coupons"))
    if kind == DiscountType.ABSOLUTE:
        if amount is None or definition["discount_currency"] is None:
            problems.append(invalid("discount_amount", "Amount and currency required"))
        elif not 0 < amount <= MAX_AMOUNT:
            problems.append(invalid("discount_amount", "Must be positive and not absurd"))
        if "discount_percentage" in explicit and percentage is not None:
            problems.append(invalid("discount_percentage", "Not allowed for ABSOLUTE coupons"))
    if kind == DiscountType.FREE_PRODUCT and not definition["free_products"]:
        problems.append(invalid("free_products", "At least one product for FREE_PRODUCT"))
    discount_currency = definition["discount_currency"] if kind == DiscountType.ABSOLUTE else None
    min_currency = definition["min_order_currency"]
    if definition["min_order_amount"] is not None and min_currency is None:
        problems.append(invalid("min_order_currency", "Required with a minimum order value"))
    if discount_currency and min_currency and discount_currency != min_currency:
        problems.append(invalid("min_order_currency", "Must equal the discount currency"))
    valid_from, valid_until = definition["valid_from"], definition["valid_until"]
    if valid_from is not None and valid_until is not None and valid_from >= valid_until:
        problems.append(invalid("valid_until", "Must be after validFrom"))
    for field in ("max_redemptions", "max_redemptions_per_customer"):
        value = definition[field]
        if value != UNLIMITED and not 1 <= value <= 1_000_000_000:
            problems.append(invalid(field, "Must be -1 (unlimited) or a positive number"))
    problems += _promotion_problems(definition, kind)
    problems += _budget_problems(definition, currency_of(definition))
    if definition["allow_anonymous"]:
        if definition["max_redemptions_per_customer"] != UNLIMITED:
            problems.append(
                invalid("max_redemptions_per_customer", "Anonymous coupons cannot limit customers")
            )
        if definition["valid_for"]:
            problems.append(invalid("valid_for", "Anonymous coupons cannot name customers"))
    return problems


def currency_of(definition: dict) -> str | None:
    """The one currency a definition's money is in (an absolute discount's, or the minimum
    order's), or None when it works in any."""
    if definition["discount_type"] == DiscountType.ABSOLUTE and definition["discount_currency"]:
        return definition["discount_currency"]
    return definition["min_order_currency"]


def _budget_problems(definition: dict, currency: str | None) -> list[dict]:
    """A budget is money in the coupon's currency (when it has one)."""
    amount, budget_currency = definition["budget_amount"], definition["budget_currency"]
    if amount is None:
        return []
    if not 0 < amount <= MAX_AMOUNT:
        return [invalid("budget_amount", "Must be positive and not absurd")]
    if currency and budget_currency != currency:
        return [invalid("budget_currency", f"Must be the coupon's currency, {currency}")]
    return []


def _promotion_problems(definition: dict, kind: str) -> list[dict]:
    """Targets, selectors, allocation and caps: combinations that mean nothing are refused."""
    problems: list[dict] = []
    target = definition["target"]
    if target not in Target.ALL:
        return [invalid("target", f"Must be one of {', '.join(Target.ALL)}")]
    deal = definition["buy_x_get_y"]
    if kind == DiscountType.BUY_X_GET_Y:
        if target == Target.SHIPPING:
            problems.append(invalid("target", "BUY_X_GET_Y discounts items, not shipping"))
        if deal is None:
            problems.append(invalid("buy_x_get_y", "Required for BUY_X_GET_Y coupons"))
    elif deal is not None:
        problems.append(invalid("buy_x_get_y", "Only for BUY_X_GET_Y coupons"))
    on_lines = target == Target.ITEMS or kind == DiscountType.BUY_X_GET_Y
    if kind == DiscountType.FREE_PRODUCT and target != Target.ORDER:
        problems.append(invalid("target", "FREE_PRODUCT coupons grant products, not money off"))
    for field in ("applies_to", "excludes"):
        if definition[field] is not None and not on_lines:
            problems.append(invalid(field, "Only for ITEMS or BUY_X_GET_Y coupons"))
    if definition["allocation"] not in Allocation.ALL:
        problems.append(invalid("allocation", f"Must be one of {', '.join(Allocation.ALL)}"))
    elif definition["allocation"] == Allocation.EACH and (
        target != Target.ITEMS or kind != DiscountType.ABSOLUTE
    ):
        problems.append(invalid("allocation", "EACH is an ABSOLUTE amount off each unit of ITEMS"))
    if definition["max_quantity"] is not None and target != Target.ITEMS:
        problems.append(invalid("max_quantity", "Only for ITEMS coupons"))
    cap = definition["max_discount_amount"]
    if cap is not None:
        if kind != DiscountType.PERCENT:
            problems.append(invalid("max_discount_amount", "Caps PERCENT coupons only"))
        elif not 0 < cap <= MAX_AMOUNT:
            problems.append(invalid("max_discount_amount", "Must be positive and not absurd"))
        min_currency = definition["min_order_currency"]
        if min_currency and min_currency != definition["max_discount_currency"]:
            problems.append(
                invalid("max_discount_currency", "Must equal the minimum order's currency")
            )
    return problems


def apply_definition(coupon: Coupon, definition: dict) -> None:
    """Write a valid definition onto the model, normalising what the type ignores."""
    kind = definition["discount_type"]
    currency = (
        (definition["discount_currency"] if kind == DiscountType.ABSOLUTE else None)
        or definition["min_order_currency"]
        or (definition["max_discount_currency"] if kind == DiscountType.PERCENT else None)
    )
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
    # A buy X get Y deal always discounts lines.
    coupon.target = Target.ITEMS if kind == DiscountType.BUY_X_GET_Y else definition["target"]
    coupon.applies_to = definition["applies_to"]
    coupon.excludes = definition["excludes"]
    coupon.allocation = definition["allocation"]
    coupon.max_quantity = definition["max_quantity"]
    cap = definition["max_discount_amount"] if kind == DiscountType.PERCENT else None
    coupon.max_discount_amount = round_money(cap, currency) if cap is not None else None
    coupon.buy_x_get_y = definition["buy_x_get_y"]
    coupon.automatic = bool(definition["automatic"])
    coupon.meta = definition["metadata"]
    budget = definition["budget_amount"]
    if coupon.budget_amount != budget:
        coupon.budget_exhausted_at = None  # a new budget: its exhaustion is news again
    coupon.budget_amount = budget
    coupon.budget_currency = definition["budget_currency"] if budget is not None else None


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
        "target": coupon.target,
        "applies_to": coupon.applies_to,
        "excludes": coupon.excludes,
        "allocation": coupon.allocation,
        "max_quantity": coupon.max_quantity,
        "max_discount_amount": coupon.max_discount_amount,
        "max_discount_currency": coupon.currency
        if coupon.max_discount_amount is not None
        else None,
        "buy_x_get_y": coupon.buy_x_get_y,
        "automatic": coupon.automatic,
        "metadata": coupon.meta,
        "budget_amount": coupon.budget_amount,
        "budget_currency": coupon.budget_currency,
    }


def validated(definition: dict, explicit: set[str]) -> dict:
    problems = check_definition(definition, explicit)
    if problems:
        raise ValidationFailed(details=problems)
    return definition


# --- a campaign's template ------------------------------------------------------------

# Template keys stored as text in JSON, and their types.
_DECIMALS = ("discount_percentage", "discount_amount", "min_order_amount", "max_discount_amount")
_DATES = ("valid_from", "valid_until")


def template_json(definition: dict) -> dict:
    """A definition as stored: JSON-safe (decimals and dates as text), without `active`
    (the campaign's own flag)."""
    out = {key: value for key, value in definition.items() if key != "active"}
    for key in _DECIMALS:
        if out.get(key) is not None:
            out[key] = str(out[key])
    for key in _DATES:
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out


def template_definition(campaign: Campaign) -> dict:
    """The campaign's template as an engine definition; `active` is the campaign's."""
    definition = {**DEFAULTS, **campaign.template}
    for key in _DECIMALS:
        if definition.get(key) is not None:
            definition[key] = Decimal(definition[key])
    for key in _DATES:
        if definition.get(key) is not None:
            definition[key] = datetime.fromisoformat(definition[key])
    definition["active"] = campaign.active
    return definition


def checked_template(values: dict, explicit: set[str]) -> dict:
    definition = {**DEFAULTS, **values, "active": True}
    problems = check_definition(definition, explicit)
    if definition["automatic"]:
        problems.append(invalid("automatic", "Campaign codes are codes: none is automatic"))
    if definition["budget_amount"] is not None:
        problems.append(invalid("budget_amount", "Campaign codes share the campaign's budget"))
    if problems:
        for problem in problems:
            problem["field"] = f"template.{problem['field']}"
        raise ValidationFailed(details=problems)
    return definition


def template_coupon(campaign: Campaign) -> Coupon:
    """A transient coupon carrying the template (what every code of the campaign holds)."""
    coupon = Coupon(
        tenant_id=campaign.tenant_id,
        campaign_id=campaign.id,
        origin=Origin.CAMPAIGN,
        redemption_count=0,
        discount_used=Decimal(0),
        deleted=False,
        discount_id=None,
    )
    apply_definition(coupon, template_definition(campaign))
    now = utcnow()
    coupon.created_at = coupon.updated_at = now
    return coupon


# Every coupon attribute a campaign code takes from its campaign (all but id and the
# code), by the model's names (`meta` is the column `metadata`).
TEMPLATE_COLUMNS = tuple(
    Coupon.__mapper__.get_property_by_column(c).key
    for c in Coupon.__table__.columns
    if c.name not in ("id", "code", "code_key")
)

# What a template change rewrites on the codes already used (not who, what or how often).
REWRITTEN = tuple(
    name
    for name in TEMPLATE_COLUMNS
    if name
    not in (
        "tenant_id",
        "campaign_id",
        "origin",
        "discount_id",
        "redemption_count",
        "discount_used",
        "budget_exhausted_at",
        # Holds on a used code outlive a template change.
        "held_until",
        "deleted",
        "created_at",
    )
)


def row_values(campaign: Campaign) -> dict:
    """Every coupon column a campaign's code takes, as values."""
    coupon = template_coupon(campaign)
    return {name: getattr(coupon, name) for name in TEMPLATE_COLUMNS}
