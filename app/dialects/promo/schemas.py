"""Promo dialect: its field names mapped to the engine's."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from app.dialects.fields import Amount, UTCDateTime, json_number
from app.dialects.promo.check_body import read_check
from app.engine import rules

_code = validate.Length(min=1, max=64)
_product = validate.Length(min=1, max=128)


class PromoWriteSchema(Schema):
    """Body of POST /promocodes/add (and, every field optional, of PATCH)."""

    active = fields.Boolean(metadata={"description": "Default true"})
    coupon = fields.String(required=True, validate=_code, metadata={"description": "The code"})
    full_price = Amount(
        data_key="fullPrice",
        allow_none=True,
        metadata={"description": "Minimum order total, tenant currency; default 0"},
    )
    gift = fields.String(
        data_key="code",
        required=True,
        validate=_product,
        metadata={"description": "Product code of the gift"},
    )
    date_from = UTCDateTime(data_key="dateFrom", allow_none=True)
    date_to = UTCDateTime(data_key="dateTo", allow_none=True)
    times = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=1_000_000_000),
        metadata={"description": "Maximum uses; null is unlimited"},
    )
    has_product = fields.String(
        data_key="hasProduct",
        allow_none=True,
        validate=_product,
        metadata={"description": "Product the order must contain"},
    )


class PromoPatchSchema(PromoWriteSchema):
    """Body of PATCH /promocodes/{id}: omitted fields keep their values."""

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class PromoSchema(Schema):
    """A promo code as listed by GET /promocodes/."""

    id = fields.Integer()
    active = fields.Boolean()
    coupon = fields.String(attribute="code")
    full_price = fields.Method("_full_price", data_key="fullPrice", metadata={"type": "number"})
    gift = fields.Method("_gift", data_key="code", metadata={"type": "string"})
    date_from = UTCDateTime(data_key="dateFrom", attribute="valid_from", allow_none=True)
    date_to = UTCDateTime(data_key="dateTo", attribute="valid_until", allow_none=True)
    times = fields.Method("_times", metadata={"type": "integer", "nullable": True})
    has_product = fields.String(
        data_key="hasProduct", attribute="required_product", allow_none=True
    )

    def _full_price(self, coupon):
        return json_number(coupon.min_order_amount or 0)

    def _gift(self, coupon):
        return (coupon.free_products or [None])[0]

    def _times(self, coupon):
        return None if coupon.max_redemptions == rules.UNLIMITED else coupon.max_redemptions


class PromoCreatedSchema(Schema):
    """Answer of add and PATCH."""

    id = fields.Integer()
    coupon = fields.String(attribute="code")
    active = fields.Boolean()
    gift = fields.Method("_gift", data_key="code", metadata={"type": "string"})

    def _gift(self, coupon):
        return (coupon.free_products or [None])[0]


class PromoDeletedSchema(Schema):
    status_code = fields.Integer(data_key="statusCode")
    message = fields.String()


class _Lenient(Schema):
    # Storefronts send whole order documents; only the fields below matter.
    class Meta:
        unknown = EXCLUDE


class PromoItemSchema(_Lenient):
    code = fields.String(validate=_product, allow_none=True)
    quantity = fields.Integer(
        strict=True,
        load_default=1,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "How many of the product (default 1); at least 1"},
    )


class PromoOrderSchema(_Lenient):
    items = fields.List(
        fields.Nested(PromoItemSchema), validate=validate.Length(max=1000), allow_none=True
    )


class OrderId(fields.Field):
    """An order reference: a string or an integer, kept as a string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("Must be a string or an integer.")
        value = str(value)
        if not 1 <= len(value) <= 128:
            raise ValidationError("Length must be between 1 and 128.")
        return value


class PromoRedeemOrderSchema(PromoOrderSchema):
    id = OrderId(required=True, metadata={"type": "string", "description": "Order reference"})


class PromoCustomerSchema(_Lenient):
    phone = fields.String(
        validate=validate.Length(max=32),
        allow_none=True,
        metadata={"description": "Accepted as clients send it; no promo rule reads it"},
    )


class PromoCheckSchema(Schema):
    """Body of POST /promocodes/ (check)."""

    coupon = fields.String(
        validate=_code, allow_none=True, metadata={"description": "No code: nothing to check"}
    )
    total = Amount(
        data_key="notGiftsAndNotDeliveryTotal",
        allow_none=True,
        metadata={"description": "Order total without gifts and delivery, tenant currency"},
    )
    order = fields.Nested(PromoOrderSchema, allow_none=True)
    customer = fields.Nested(PromoCustomerSchema, allow_none=True)

    def fast_load(self, data) -> dict | None:
        """What `load` answers for a body in the common shape, or None (check_body)."""
        return read_check(data)

    @post_load
    def products(self, data, **kwargs):
        """The product codes of the order, for the required-product rule."""
        items = (data.get("order") or {}).get("items") or []
        # Every item counts at least once: quantities below 1 were refused (400).
        data["products"] = frozenset(item["code"] for item in items if item.get("code"))
        return data


class PromoRedeemSchema(PromoCheckSchema):
    """Body of POST /promocodes/redeem: the check's plus a code and `order.id`."""

    coupon = fields.String(required=True, validate=_code)
    order = fields.Nested(PromoRedeemOrderSchema, required=True)
    ttl_seconds = fields.Integer(
        data_key="ttlSeconds",
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=86_400),
        metadata={
            "description": (
                "Hold the use for order.id this many seconds instead of consuming it; "
                "redeeming the same order.id without ttlSeconds confirms the hold"
            )
        },
    )


class PromoReservationSchema(Schema):
    id = fields.String()
    expires_at = UTCDateTime(data_key="expiresAt")


class PromoReleaseOrderSchema(_Lenient):
    id = OrderId(required=True, metadata={"type": "string", "description": "Order reference"})


class PromoReleaseSchema(Schema):
    """Body of POST /promocodes/release: the code and the order whose hold ends."""

    coupon = fields.String(required=True, validate=_code)
    order = fields.Nested(PromoReleaseOrderSchema, required=True)


class PromoReleasedSchema(Schema):
    status_code = fields.Integer(data_key="statusCode")
    message = fields.String()


class PromoCheckResultSchema(Schema):
    discount_total = Amount(data_key="discountTotal")
    discounts = fields.Integer()
    loyalty_program_errors = fields.List(fields.String(), data_key="loyaltyProgramErrors")
    free_products = fields.List(fields.String(), data_key="freeProducts")
    lost_gift = fields.List(fields.String(), data_key="lostGift")
    reservation = fields.Nested(
        PromoReservationSchema,
        metadata={"description": "Redeem with ttlSeconds: the hold kept for order.id"},
    )


class PromoErrorSchema(Schema):
    status_code = fields.Integer(data_key="statusCode")
    error = fields.String()
    message = fields.String()
    code = fields.String()
    details = fields.List(fields.Dict())
