"""Brands dialect snake_case, the field names its clients send."""

from __future__ import annotations

from datetime import UTC, date, datetime

from marshmallow import Schema, ValidationError, fields, validate

from app.dialects.fields import Amount, UTCDateTime
from app.engine import codes
from app.models import BrandDiscountType


class ExpiryDate(UTCDateTime):
    """A datetime, or a plain date as its clients send it (`2022-12-31`, midnight UTC)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) == 10:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                raise self.make_error("invalid", input=value, obj_type="date") from None
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return super()._deserialize(value, attr, data, **kwargs)


def _code(value: str) -> None:
    if not codes.is_valid(value):
        raise ValidationError("Letters, digits, '_', '.', '-'; 1-64 characters.")


class DiscountWriteSchema(Schema):
    """A discount's terms, with their defaults."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    description = fields.String(allow_none=True, validate=validate.Length(max=4000))
    discount_type = fields.String(required=True, validate=validate.OneOf(BrandDiscountType.ALL))
    discount_amount = Amount(required=True)
    usage_limit = fields.Integer(strict=True, validate=validate.Range(min=1, max=1_000_000))
    free_shipping = fields.Boolean()
    verify_email = fields.Boolean()
    fixed_code = fields.String(allow_none=True, validate=_code)
    date_expires = ExpiryDate(allow_none=True)
    campaign_id = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Give each fan the next code of this campaign"},
    )


class DiscountPatchSchema(DiscountWriteSchema):
    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class DiscountSchema(Schema):
    id = fields.Integer()
    brand_id = fields.Integer(attribute="tenant_id")
    name = fields.String()
    description = fields.String(allow_none=True)
    discount_type = fields.String()
    discount_amount = Amount()
    usage_limit = fields.Integer()
    free_shipping = fields.Boolean()
    verify_email = fields.Boolean()
    fixed_code = fields.String(allow_none=True)
    date_expires = UTCDateTime(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    date_created = UTCDateTime()
    date_modified = UTCDateTime()


class FanSchema(Schema):
    """FanData. The email is checked by the service so that a bad one is a 422."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    facebook_handle = fields.String(allow_none=True, validate=validate.Length(max=255))
    discount_id = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=2_147_483_647)
    )


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.List(fields.Dict())
