"""Checkout (tenant coupon dialect): holds, carts, qualifications. camelCase on the wire."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from app.dialects.fields import CustomerNumber, Metadata, MoneySchema, UTCDateTime
from app.dialects.tenant.schemas.coupons import RedemptionRequestSchema
from app.dialects.tenant.schemas.promotions import BasketMixin, CartItemSchema
from app.engine.usage import holds
from app.models import Coupon

MAX_CART_ITEMS = 500
MAX_CART_CODES = 50


class ReservationRequestSchema(RedemptionRequestSchema):
    """Body of POST .../reservations: the validation body plus a time to live."""

    ttl_seconds = fields.Integer(
        data_key="ttlSeconds",
        strict=True,
        load_default=holds.DEFAULT_TTL_SECONDS,
        validate=validate.Range(min=1, max=holds.MAX_TTL_SECONDS),
        metadata={"description": "How long the use is kept (default 900, at most 86400)"},
    )


class ReservationCreatedSchema(Schema):
    id = fields.String(required=True)
    expires_at = UTCDateTime(data_key="expiresAt", required=True)
    link = fields.String(required=True)


class ReservationSchema(Schema):
    """A hold as read back."""

    id = fields.String()
    coupon_code = fields.String(data_key="couponCode")
    status = fields.String(metadata={"enum": ["HELD", "EXPIRED", "CONFIRMED", "RELEASED"]})
    customer_number = fields.String(data_key="customerNumber", allow_none=True)
    order_id = fields.String(data_key="orderId", allow_none=True)
    order_total = fields.Nested(MoneySchema, data_key="orderTotal", allow_none=True)
    discount = fields.Nested(MoneySchema, allow_none=True)
    expires_at = UTCDateTime(data_key="expiresAt")
    created_at = UTCDateTime(data_key="createdAt")
    closed_at = UTCDateTime(data_key="closedAt", allow_none=True)
    redemption_id = fields.String(data_key="redemptionId", allow_none=True)
    metadata_ = Metadata(data_key="metadata", attribute="metadata")


class _ShopperSchema(Schema):
    customer_number = CustomerNumber(data_key="customerNumber", allow_none=True)
    order_total = fields.Nested(MoneySchema, data_key="orderTotal", required=True)


class CartRequestSchema(_ShopperSchema, BasketMixin):
    """Body of POST /carts/validation."""

    metadata_ = Metadata(
        data_key="metadata",
        attribute="metadata",
        metadata={"description": "Kept on every redemption the cart makes"},
    )

    items = fields.List(
        fields.Nested(CartItemSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_CART_ITEMS),
    )
    codes = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(max=MAX_CART_CODES),
        metadata={"description": "May be empty: the automatic promotions still apply"},
    )

    @validates("codes")
    def no_repeats(self, codes, **kwargs):
        seen: set[str] = set()
        repeated = {}
        for i, code in enumerate(codes):
            key = Coupon.key_for(code)
            if key in seen:
                repeated[i] = ["Code listed twice (codes ignore case)."]
            seen.add(key)
        if repeated:
            raise ValidationError(repeated)


class CartRedemptionRequestSchema(CartRequestSchema):
    """Body of POST /carts/redemption."""

    order_id = fields.String(
        data_key="orderId", validate=validate.Length(min=1, max=128), allow_none=True
    )


class CartCodeErrorSchema(Schema):
    """Why a code of the cart does not apply: a type of the dialect's errors."""

    type = fields.String(required=True, metadata={"example": "coupon_expired"})
    message = fields.String(required=True)


class CartLineSchema(Schema):
    """What a code takes off one line of the cart."""

    item = fields.Integer(metadata={"description": "The line's position in `items`, from 0"})
    product = fields.String()
    discount = fields.Nested(MoneySchema)


class CartCodeSchema(Schema):
    code = fields.String(metadata={"description": "As sent"})
    applies = fields.Boolean()
    discount = fields.Nested(
        MoneySchema,
        allow_none=True,
        metadata={"description": "Off the order (its line discounts included)"},
    )
    lines = fields.List(
        fields.Nested(CartLineSchema),
        metadata={"description": "ITEMS and BUY_X_GET_Y codes: the discount per line"},
    )
    shipping_discount = fields.Nested(MoneySchema, data_key="shippingDiscount", allow_none=True)
    free_products = fields.List(fields.String(), data_key="freeProducts")
    error = fields.Nested(
        CartCodeErrorSchema,
        allow_none=True,
        metadata={"description": "Why the code does not apply (null when it does)"},
    )
    redemption_id = fields.String(data_key="redemptionId", allow_none=True)


class AutomaticPromotionSchema(CartCodeSchema):
    """An automatic promotion that applies to the cart (no code was sent for it)."""

    name = fields.String(allow_none=True)


class CartResultSchema(Schema):
    codes = fields.List(fields.Nested(CartCodeSchema))
    automatic = fields.List(
        fields.Nested(AutomaticPromotionSchema),
        metadata={"description": "The tenant's automatic promotions that apply to this cart"},
    )
    total_discount = fields.Nested(MoneySchema, data_key="totalDiscount")
    shipping_total = fields.Nested(MoneySchema, data_key="shippingTotal", allow_none=True)
    shipping_discount = fields.Nested(MoneySchema, data_key="shippingDiscount", allow_none=True)
    order_total = fields.Nested(MoneySchema, data_key="orderTotal")
    total_after_discount = fields.Nested(MoneySchema, data_key="totalAfterDiscount")


class QualificationRequestSchema(_ShopperSchema, BasketMixin):
    """Body of POST /qualifications."""

    items = fields.List(
        fields.Nested(CartItemSchema),
        load_default=list,
        validate=validate.Length(max=MAX_CART_ITEMS),
    )


class QualificationSchema(Schema):
    code = fields.String()
    name = fields.String(allow_none=True)
    discount_type = fields.String(data_key="discountType")
    discount = fields.Nested(MoneySchema, metadata={"description": "On this cart, alone"})
    free_products = fields.List(fields.String(), data_key="freeProducts")
    exclusive = fields.Boolean()
    stacking_priority = fields.Integer(data_key="stackingPriority")
    valid_until = UTCDateTime(data_key="validUntil", allow_none=True)
    automatic = fields.Boolean(
        metadata={"description": "An automatic promotion: it applies with no code"}
    )
