"""Webhook endpoints (tenant coupon dialect). camelCase on the wire."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.dialects.fields import UTCDateTime
from app.engine.webhooks import TYPES

_EVENTS_DOC = {
    "description": 'Event types to receive, or ["*"] for all',
    "example": ["redemption.created", "redemption.rolled_back"],
}


def _url(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Length(min=1, max=2048),
        metadata={
            "description": "Where events are POSTed (https in production; a public address)",
            "example": "https://shop.example.com/hooks/coupons",
        },
        **kwargs,
    )


def _events(**kwargs) -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf([*TYPES, "*"])),
        validate=validate.Length(min=1, max=len(TYPES) + 1),
        metadata=_EVENTS_DOC,
        **kwargs,
    )


class WebhookRequestSchema(Schema):
    """Body of POST /webhooks."""

    url = _url(required=True)
    events = _events(required=True)
    description = fields.String(validate=validate.Length(max=500), load_default=None)


class WebhookPatchSchema(Schema):
    """Body of PATCH /webhooks/{endpointId}: only the fields sent change."""

    url = _url()
    events = _events()
    description = fields.String(validate=validate.Length(max=500), allow_none=True)
    active = fields.Boolean(metadata={"description": "true again clears disabledReason"})


class WebhookSchema(Schema):
    """An endpoint as read back (never its secret)."""

    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String(allow_none=True)
    active = fields.Boolean()
    disabled_reason = fields.String(
        data_key="disabledReason",
        allow_none=True,
        metadata={"description": "Why it was switched off (3 days of failed deliveries)"},
    )
    previous_until = UTCDateTime(
        data_key="previousSecretUntil",
        allow_none=True,
        metadata={"description": "Until then deliveries are signed with the old secret too"},
    )
    created_at = UTCDateTime(data_key="createdAt")
    updated_at = UTCDateTime(data_key="updatedAt")


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(
        metadata={"description": "whsec_...: shown this once; verify signatures with it"}
    )


class SecretSchema(Schema):
    secret = fields.String(metadata={"description": "The new whsec_... secret, shown once"})
    previous_until = UTCDateTime(data_key="previousSecretUntil")


class TestSentSchema(Schema):
    message_id = fields.String(data_key="messageId")


class AttemptSchema(Schema):
    message_id = fields.String(data_key="messageId")
    event_type = fields.String(data_key="eventType")
    attempt = fields.Integer()
    status_code = fields.Integer(data_key="statusCode", allow_none=True)
    error = fields.String(allow_none=True)
    at = UTCDateTime()
