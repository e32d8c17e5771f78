"""Budgets (tenant coupon dialect): a coupon's money, a campaign's redemptions, money and
uses per customer; as written, and as read back with what was used and what is left."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.dialects.fields import MoneySchema

_COUNT = validate.Range(min=1, max=1_000_000_000)


class _NotEmpty(Schema):
    """A budget names at least one cap: `{}` would silently mean none (null removes one)."""

    @validates_schema
    def _names_a_cap(self, data, **kwargs):
        if not any(value is not None for value in data.values()):
            raise ValidationError("Name at least one cap, or send null to remove the budget")


class CouponBudgetSchema(_NotEmpty):
    max_discount_total = fields.Nested(
        MoneySchema,
        data_key="maxDiscountTotal",
        required=True,
        metadata={
            "description": "The discounts its redemptions and live holds grant never add up "
            "to more (in the coupon's currency)",
            "example": {"amount": 5000, "currency": "USD"},
        },
    )


class CampaignBudgetSchema(_NotEmpty):
    """Shared by every code of the campaign; any part may be left out (or null)."""

    max_redemptions = fields.Integer(
        data_key="maxRedemptions", strict=True, allow_none=True, validate=_COUNT
    )
    max_discount_total = fields.Nested(MoneySchema, data_key="maxDiscountTotal", allow_none=True)
    max_redemptions_per_customer = fields.Integer(
        data_key="maxRedemptionsPerCustomer",
        strict=True,
        allow_none=True,
        validate=_COUNT,
        metadata={"description": "1: one code per customer across the campaign"},
    )


class BudgetUseSchema(Schema):
    """What a budget allows, what redemptions used (net of returns), what live holds
    keep, and what is left."""

    max_discount_total = fields.Nested(MoneySchema, data_key="maxDiscountTotal", allow_none=True)
    used = fields.Nested(MoneySchema, allow_none=True)
    held = fields.Nested(MoneySchema, allow_none=True)
    remaining = fields.Nested(MoneySchema, allow_none=True)
    max_redemptions = fields.Integer(data_key="maxRedemptions", allow_none=True)
    redemptions_used = fields.Integer(data_key="redemptionsUsed", allow_none=True)
    redemptions_remaining = fields.Integer(data_key="redemptionsRemaining", allow_none=True)
    max_redemptions_per_customer = fields.Integer(
        data_key="maxRedemptionsPerCustomer", allow_none=True
    )
