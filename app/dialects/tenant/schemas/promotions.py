"""Promotions on the tenant dialect's wire: line selectors, buy X get Y deals, cart
lines and shipping (camelCase)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from app.dialects.fields import Amount, MoneySchema, check_grid

_short = validate.Length(min=1, max=128)


class SelectorSchema(Schema):
    """Cart lines by product or category: a line is selected when its `product` is
    listed or it has a listed category."""

    products = fields.List(
        fields.String(validate=_short),
        validate=validate.Length(max=100),
        metadata={"example": ["sku-123"]},
    )
    categories = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=100),
        metadata={"example": ["shoes"]},
    )

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data.get("products") and not data.get("categories"):
            raise ValidationError("Name at least one product or category", "products")

    @post_load
    def _stored(self, data, **kwargs):
        return {"products": data.get("products", []), "categories": data.get("categories", [])}


class _BuySchema(Schema):
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1000))
    applies_to = fields.Nested(SelectorSchema, data_key="appliesTo", allow_none=True)


class _GetSchema(_BuySchema):
    percent_off = fields.Integer(
        data_key="percentOff",
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Percent off each got unit (100 = free)", "example": 100},
    )


class BuyXGetYSchema(Schema):
    """For every `buy.quantity` units bought from the buy set, `get.quantity` units of the
    get set at `get.percentOff`; the cheapest get-units, a unit counting once."""

    buy = fields.Nested(_BuySchema, required=True)
    get = fields.Nested(_GetSchema, required=True)
    max_applications = fields.Integer(
        data_key="maxApplications",
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "At most this many times per order (absent: no limit)"},
    )

    @post_load
    def _stored(self, data, **kwargs):
        return {
            "buy": data["buy"]["quantity"],
            "buy_from": data["buy"].get("applies_to"),
            "get": data["get"]["quantity"],
            "get_from": data["get"].get("applies_to"),
            "percent_off": data["get"]["percent_off"],
            "max_applications": data.get("max_applications"),
        }


def deal_fields(deal: dict | None) -> dict | None:
    """A stored deal in BuyXGetYSchema's fields (for dumping)."""
    if deal is None:
        return None
    return {
        "buy": {"quantity": deal["buy"], "applies_to": deal["buy_from"]},
        "get": {
            "quantity": deal["get"],
            "applies_to": deal["get_from"],
            "percent_off": deal["percent_off"],
        },
        "max_applications": deal["max_applications"],
    }


class CartItemSchema(Schema):
    product = fields.String(required=True, validate=validate.Length(min=1, max=128))
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=1_000_000)
    )
    price = Amount(required=True, metadata={"description": "Unit price, not negative"})
    categories = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=20),
        metadata={"description": "What ITEMS coupons select lines by", "example": ["shoes"]},
    )


class BasketMixin(Schema):
    """What an order's lines and shipping must agree with: the order total's currency."""

    shipping_total = fields.Nested(
        MoneySchema,
        data_key="shippingTotal",
        allow_none=True,
        metadata={"description": "What SHIPPING coupons take their discount off"},
    )

    @validates_schema
    def _one_currency(self, data, **kwargs):
        shipping, total = data.get("shipping_total"), data.get("order_total")
        if shipping and total and shipping["currency"] != total["currency"]:
            raise ValidationError("Must be in the order total's currency", "shippingTotal")

    @validates_schema
    def _prices_on_grid(self, data, **kwargs):
        total = data.get("order_total")
        if not total:
            return
        problems = {}
        for index, item in enumerate(data.get("items") or ()):
            try:
                check_grid(item["price"], total["currency"], "price")
            except ValidationError as error:
                problems[index] = error.normalized_messages()
        if problems:
            raise ValidationError({"items": problems})
