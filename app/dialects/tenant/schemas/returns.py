"""Returns (tenant coupon dialect): rolling redemptions back. camelCase on the wire."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.dialects.fields import CustomerNumber, MoneySchema
from app.dialects.tenant.schemas.coupons import RedemptionSchema


def _reason() -> fields.String:
    return fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Why (kept on the redemption, sent in the event)"},
    )


def _on_behalf(description="The customer, for a client redeeming on behalf") -> CustomerNumber:
    return CustomerNumber(
        data_key="customerNumber", load_default=None, metadata={"description": description}
    )


class RollbackRequestSchema(Schema):
    """Body of POST /redemptions/{redemptionId}/rollback."""

    reason = _reason()
    amount = fields.Nested(
        MoneySchema,
        metadata={
            "description": "Absent: a full rollback, the use comes back. Given: this much of "
            "the discount comes back (at most what is left of it), the use does not."
        },
    )
    customer_number = _on_behalf()


class OrderRollbackRequestSchema(Schema):
    """Body of POST /orders/{orderId}/rollback."""

    reason = _reason()
    customer_number = _on_behalf(
        "The customer, for a client redeeming on behalf. For a manager: the customer "
        "whose own order id it is (made with its own token); absent, the shop's"
    )


class OrderRollbackSchema(Schema):
    """Answer of POST /orders/{orderId}/rollback: the order's redemptions, as they are now."""

    order_id = fields.String(data_key="orderId")
    redemptions = fields.List(fields.Nested(RedemptionSchema))
