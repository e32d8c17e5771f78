"""Tenant coupon dialect: camelCase on the wire."""

from __future__ import annotations

from marshmallow import (
    Schema,
    fields,
    post_load,
    pre_dump,
    validate,
)

from app.database import utcnow
from app.dialects.fields import Amount, CustomerNumber, Metadata, MoneySchema, UTCDateTime
from app.dialects.tenant.schemas.budgets import BudgetUseSchema, CouponBudgetSchema
from app.dialects.tenant.schemas.order_body import read_order
from app.dialects.tenant.schemas.promotions import (
    BasketMixin,
    BuyXGetYSchema,
    CartItemSchema,
    SelectorSchema,
    deal_fields,
)
from app.engine import rules
from app.engine.usage import budgets
from app.models import Allocation, DiscountType, Target

_short = validate.Length(min=1, max=128)
_limit = validate.Range(min=-1, max=1_000_000_000)


class RestrictionsSchema(Schema):
    valid_for = fields.List(
        CustomerNumber(),
        data_key="validFor",
        validate=validate.Length(max=1000),
        allow_none=True,
    )
    valid_from = UTCDateTime(data_key="validFrom", allow_none=True)
    valid_until = UTCDateTime(data_key="validUntil", allow_none=True)
    min_order_value = fields.Nested(MoneySchema, data_key="minOrderValue", allow_none=True)
    required_product = fields.String(data_key="requiredProduct", validate=_short, allow_none=True)


class CouponWriteSchema(Schema):
    """Body of POST, PUT and (partially) PATCH /coupons."""

    code = fields.String(validate=validate.Length(min=1, max=64))
    name = fields.String(validate=validate.Length(max=255), allow_none=True)
    description = fields.String(validate=validate.Length(max=4000), allow_none=True)
    discount_type = fields.String(
        data_key="discountType", required=True, validate=validate.OneOf(DiscountType.ALL)
    )
    discount_absolute = fields.Nested(MoneySchema, data_key="discountAbsolute", allow_none=True)
    discount_percentage = Amount(
        data_key="discountPercentage",
        allow_none=True,
        validate=validate.Range(min=0, max=100, min_inclusive=False),
    )
    free_products = fields.List(
        fields.String(validate=_short), data_key="freeProducts", validate=validate.Length(max=50)
    )
    free_shipping = fields.Boolean(data_key="freeShipping")
    allow_anonymous = fields.Boolean(data_key="allowAnonymous")
    max_redemptions = fields.Integer(data_key="maxRedemptions", strict=True, validate=_limit)
    max_redemptions_per_customer = fields.Integer(
        data_key="maxRedemptionsPerCustomer", strict=True, validate=_limit
    )
    active = fields.Boolean()
    restrictions = fields.Nested(RestrictionsSchema, allow_none=True)
    exclusive = fields.Boolean(
        metadata={"description": "In a cart, applies only alone (default false)"}
    )
    stacking_priority = fields.Integer(
        data_key="stackingPriority",
        strict=True,
        validate=validate.Range(min=-1000, max=1000),
        metadata={"description": "In a cart, higher applies earlier (default 0)"},
    )
    listable = fields.Boolean(
        metadata={
            "description": "Offered to shoppers by POST /qualifications (default false: a "
            "code is never handed out unless the tenant says it may be)"
        }
    )
    target = fields.String(
        validate=validate.OneOf(Target.ALL),
        metadata={
            "description": "What the discount comes off: ORDER (default), ITEMS (the cart's "
            "lines, see appliesTo) or SHIPPING (the cart's shippingTotal)",
            "example": "ITEMS",
        },
    )
    applies_to = fields.Nested(
        SelectorSchema,
        data_key="appliesTo",
        allow_none=True,
        metadata={
            "description": "ITEMS: the lines discounted (absent: every line)",
            "example": {"categories": ["shoes"]},
        },
    )
    excludes = fields.Nested(
        SelectorSchema,
        allow_none=True,
        metadata={
            "description": "ITEMS: lines never discounted",
            "example": {"products": ["gift-card"]},
        },
    )
    allocation = fields.String(
        validate=validate.OneOf(Allocation.ALL),
        metadata={
            "description": "ITEMS: ACROSS (default) shares the discount over the eligible "
            "lines by value; EACH takes an ABSOLUTE amount off each eligible unit",
            "example": "ACROSS",
        },
    )
    max_quantity = fields.Integer(
        data_key="maxQuantity",
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={
            "description": "ITEMS: at most this many units, the most expensive first",
            "example": 2,
        },
    )
    max_discount = fields.Nested(
        MoneySchema,
        data_key="maxDiscount",
        allow_none=True,
        metadata={
            "description": "PERCENT: the most the coupon grants",
            "example": {"amount": 30, "currency": "USD"},
        },
    )
    buy_x_get_y = fields.Nested(
        BuyXGetYSchema,
        data_key="buyXGetY",
        allow_none=True,
        metadata={
            "description": "BUY_X_GET_Y: the deal",
            "example": {
                "buy": {"quantity": 2, "appliesTo": {"products": ["tshirt"]}},
                "get": {"quantity": 1, "appliesTo": {"products": ["tshirt"]}, "percentOff": 100},
            },
        },
    )
    automatic = fields.Boolean(
        metadata={
            "description": "Applies to every cart whose conditions it meets, no code needed "
            "(default false; at most 100 live per tenant)",
            "example": False,
        }
    )
    metadata_ = Metadata(data_key="metadata", attribute="metadata")
    budget = fields.Nested(
        CouponBudgetSchema,
        allow_none=True,
        metadata={"description": "What its discounts may add up to; null removes it"},
    )

    @post_load
    def flatten(self, data, **kwargs):
        """The engine's flat definition; only keys the client sent are present."""
        if "budget" in data:
            money = (data.pop("budget") or {}).get("max_discount_total") or {}
            data["budget_amount"] = money.get("amount")
            data["budget_currency"] = money.get("currency")
        if "max_discount" in data:
            money = data.pop("max_discount") or {}
            data["max_discount_amount"] = money.get("amount")
            data["max_discount_currency"] = money.get("currency")
        if "discount_absolute" in data:
            money = data.pop("discount_absolute") or {}
            data["discount_amount"] = money.get("amount")
            data["discount_currency"] = money.get("currency")
        if "restrictions" in data:
            restrictions = data.pop("restrictions")
            if restrictions is None:  # explicit null clears every restriction
                restrictions = dict.fromkeys(
                    (
                        "valid_for",
                        "valid_from",
                        "valid_until",
                        "min_order_value",
                        "required_product",
                    )
                )
            if "min_order_value" in restrictions:
                money = restrictions.pop("min_order_value") or {}
                data["min_order_amount"] = money.get("amount")
                data["min_order_currency"] = money.get("currency")
            for key in ("valid_for", "valid_from", "valid_until", "required_product"):
                if key in restrictions:
                    data[key] = restrictions[key]
            if data.get("valid_for") is None and "valid_for" in data:
                data["valid_for"] = []
        return data


class CouponPatchSchema(CouponWriteSchema):
    """Body of PATCH: any subset of the coupon fields."""

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class CouponSchema(Schema):
    """A coupon as read back (GET, list)."""

    id = fields.String(metadata={"description": "Same as code"})
    code = fields.String()
    name = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    discount_type = fields.String(data_key="discountType")
    discount_absolute = fields.Nested(MoneySchema, data_key="discountAbsolute", allow_none=True)
    discount_percentage = Amount(data_key="discountPercentage", allow_none=True)
    free_products = fields.List(fields.String(), data_key="freeProducts")
    free_shipping = fields.Boolean(data_key="freeShipping")
    allow_anonymous = fields.Boolean(data_key="allowAnonymous")
    max_redemptions = fields.Integer(data_key="maxRedemptions")
    max_redemptions_per_customer = fields.Integer(data_key="maxRedemptionsPerCustomer")
    restrictions = fields.Nested(RestrictionsSchema)
    active = fields.Boolean()
    exclusive = fields.Boolean()
    stacking_priority = fields.Integer(data_key="stackingPriority")
    listable = fields.Boolean()
    target = fields.String(metadata={"enum": list(Target.ALL)})
    applies_to = fields.Nested(SelectorSchema, data_key="appliesTo", allow_none=True)
    excludes = fields.Nested(SelectorSchema, allow_none=True)
    allocation = fields.String(metadata={"enum": list(Allocation.ALL)})
    max_quantity = fields.Integer(data_key="maxQuantity", allow_none=True)
    max_discount = fields.Nested(MoneySchema, data_key="maxDiscount", allow_none=True)
    buy_x_get_y = fields.Nested(BuyXGetYSchema, data_key="buyXGetY", allow_none=True)
    automatic = fields.Boolean()
    metadata_ = Metadata(data_key="metadata", attribute="metadata")
    budget = fields.Nested(BudgetUseSchema, allow_none=True)
    deleted = fields.Boolean()
    status = fields.String(metadata={"enum": ["INACTIVE", "VALID", "EXPIRED", "USED"]})
    redemption_count = fields.Integer(data_key="redemptionCount")
    created_at = UTCDateTime(data_key="createdAt")
    updated_at = UTCDateTime(data_key="updatedAt")

    @pre_dump
    def nest(self, coupon, **kwargs):
        absolute = coupon.discount_type == DiscountType.ABSOLUTE
        restrictions = {
            "valid_for": list(coupon.valid_for or []),
            "valid_from": coupon.valid_from,
            "valid_until": coupon.valid_until,
            "min_order_value": (
                {"amount": coupon.min_order_amount, "currency": coupon.currency}
                if coupon.min_order_amount is not None
                else None
            ),
            "required_product": coupon.required_product,
        }
        return {
            "id": coupon.code,
            "code": coupon.code,
            "name": coupon.name,
            "description": coupon.description,
            "discount_type": coupon.discount_type,
            "discount_absolute": (
                {"amount": coupon.discount_amount, "currency": coupon.currency}
                if absolute
                else None
            ),
            "discount_percentage": coupon.discount_percentage,
            "free_products": list(coupon.free_products or []),
            "free_shipping": coupon.free_shipping,
            "allow_anonymous": coupon.allow_anonymous,
            "max_redemptions": coupon.max_redemptions,
            "max_redemptions_per_customer": coupon.max_redemptions_per_customer,
            "restrictions": restrictions,
            "active": coupon.active,
            "exclusive": coupon.exclusive,
            "stacking_priority": coupon.stacking_priority,
            "listable": coupon.listable,
            "target": coupon.target,
            "applies_to": coupon.applies_to,
            "excludes": coupon.excludes,
            "allocation": coupon.allocation,
            "max_quantity": coupon.max_quantity,
            "max_discount": (
                {"amount": coupon.max_discount_amount, "currency": coupon.currency}
                if coupon.max_discount_amount is not None
                else None
            ),
            "buy_x_get_y": deal_fields(coupon.buy_x_get_y),
            "automatic": coupon.automatic,
            "metadata": coupon.meta or {},
            "budget": budgets.coupon_budget(coupon, utcnow()),
            "deleted": coupon.deleted,
            "status": rules.status(coupon, utcnow()),
            "redemption_count": coupon.redemption_count,
            "created_at": coupon.created_at,
            "updated_at": coupon.updated_at,
        }


class CreatedSchema(Schema):
    id = fields.String(required=True)
    link = fields.String(required=True)


class PageArgs(Schema):
    page_number = fields.Integer(
        data_key="pageNumber",
        load_default=1,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "The page to answer, from 1."},
    )
    page_size = fields.Integer(
        data_key="pageSize",
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Items per page, at most 100."},
    )


class CouponListArgs(PageArgs):
    show_deleted = fields.Boolean(
        data_key="showDeleted",
        load_default=False,
        metadata={"description": "Include soft-deleted coupons."},
    )
    deleted = fields.Boolean(
        load_default=None,
        metadata={"description": "Only deleted (true) or only live (false) coupons."},
    )


class CustomerArgs(Schema):
    customer_number = CustomerNumber(data_key="customerNumber", load_default=None)


class RedemptionRequestSchema(BasketMixin):
    """Body of POST /validation and POST /redemptions."""

    metadata_ = Metadata(data_key="metadata", attribute="metadata")

    items = fields.List(
        fields.Nested(CartItemSchema),
        validate=validate.Length(min=1, max=500),
        metadata={"description": "The order's lines: ITEMS and BUY_X_GET_Y coupons need them"},
    )

    customer_number = CustomerNumber(data_key="customerNumber", allow_none=True)
    order_total = fields.Nested(MoneySchema, data_key="orderTotal", required=True)
    discount = fields.Nested(MoneySchema, required=True)
    order_id = fields.String(data_key="orderId", validate=_short, allow_none=True)

    def fast_load(self, data) -> dict | None:
        """What `load` answers for a body in the common shape, or None (order_body)."""
        return read_order(data, discount_required=True)


class ValidationRequestSchema(RedemptionRequestSchema):
    """Body of POST /validation: without `discount`, the answer computes it."""

    def fast_load(self, data) -> dict | None:
        return read_order(data, discount_required=False)

    discount = fields.Nested(
        MoneySchema,
        metadata={"description": "The discount to check; absent: answer the largest allowed."},
    )


class ValidationSchema(Schema):
    """Answer of POST /validation when the body stated no discount."""

    discount = fields.Nested(MoneySchema, required=True)


class RedemptionSchema(Schema):
    id = fields.String()
    coupon_code = fields.String(data_key="couponCode")
    customer_number = fields.String(data_key="customerNumber", allow_none=True)
    order_total = fields.Nested(MoneySchema, data_key="orderTotal", allow_none=True)
    discount = fields.Nested(MoneySchema, allow_none=True)
    order_id = fields.String(data_key="orderId", allow_none=True)
    redeemed_at = UTCDateTime(data_key="redeemedAt")
    metadata_ = Metadata(data_key="metadata", attribute="metadata")
    status = fields.String(
        metadata={
            "enum": ["REDEEMED", "ROLLED_BACK", "PARTIALLY_ROLLED_BACK"],
            "description": "ROLLED_BACK gave the use back; PARTIALLY_ROLLED_BACK, money only",
        }
    )
    rolled_back_at = UTCDateTime(data_key="rolledBackAt", allow_none=True)
    rolled_back_amount = fields.Nested(
        MoneySchema,
        data_key="rolledBackAmount",
        allow_none=True,
        metadata={"description": "What of the discount was given back, in all"},
    )
    reason = fields.String(allow_none=True, metadata={"description": "Of the last rollback"})

    @pre_dump
    def nest(self, redemption, **kwargs):
        def money(amount, currency):
            return None if amount is None else {"amount": amount, "currency": currency}

        return {
            "id": redemption.id,
            "coupon_code": redemption.coupon.code,
            "customer_number": redemption.customer_number,
            "order_total": money(redemption.order_total_amount, redemption.order_total_currency),
            "discount": money(redemption.discount_amount, redemption.discount_currency),
            "order_id": redemption.order_id,
            "redeemed_at": redemption.redeemed_at,
            "metadata": redemption.meta or {},
            "status": redemption.status,
            "rolled_back_at": redemption.rolled_back_at,
            "rolled_back_amount": money(
                redemption.rolled_back_amount, redemption.discount_currency
            ),
            "reason": redemption.rollback_reason,
        }


class ErrorDetailSchema(Schema):
    field = fields.String(allow_none=True)
    type = fields.String()
    message = fields.String()


class CouponErrorSchema(Schema):
    """The tenant coupon dialect's error body."""

    status = fields.Integer()
    type = fields.String()
    message = fields.String()
    details = fields.List(fields.Nested(ErrorDetailSchema))
