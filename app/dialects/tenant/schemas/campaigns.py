"""Campaigns in the tenant coupon dialect (camelCase)."""

from __future__ import annotations

from marshmallow import Schema, fields, pre_dump, validate

from app.database import utcnow
from app.dialects.fields import MoneySchema, UTCDateTime
from app.dialects.tenant.schemas.budgets import BudgetUseSchema, CampaignBudgetSchema
from app.dialects.tenant.schemas.coupons import CouponSchema, CouponWriteSchema
from app.engine.catalog import transfer
from app.engine.codes import CHARSETS, DEFAULT_CHARSET, MAX_CHARSET
from app.engine.definition import template_coupon
from app.engine.usage import budgets
from app.models import CampaignStatus

_affix = validate.Length(min=1, max=60)


class CodeConfigSchema(Schema):
    length = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=64),
        metadata={"description": "Random characters per code (default 8); or give a pattern"},
    )
    pattern = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "Each '#' is a random character of the charset: 'SPRING-####-####'"
        },
    )
    prefix = fields.String(validate=_affix)
    postfix = fields.String(validate=_affix)
    charset = fields.String(
        metadata={
            "enum": list(CHARSETS),
            "description": f"A named charset (default {DEFAULT_CHARSET}: no 0/O, 1/I/L)",
        }
    )
    characters = fields.String(
        validate=validate.Length(min=2, max=MAX_CHARSET),
        metadata={"description": "Or your own characters (letters and digits)"},
    )


class _TemplateSchema(CouponWriteSchema):
    """The coupon definition every code of the campaign carries."""

    class Meta:
        exclude = ("code", "active")


class _TemplatePatchSchema(_TemplateSchema):
    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class CampaignWriteSchema(Schema):
    """Body of POST /campaigns."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    count = fields.Integer(
        strict=True,
        allow_none=True,
        metadata={"description": "Codes to generate; leave out for a campaign filled by import"},
    )
    code_config = fields.Nested(CodeConfigSchema, data_key="codeConfig", load_default=dict)
    template = fields.Nested(_TemplateSchema, required=True)
    budget = fields.Nested(
        CampaignBudgetSchema,
        allow_none=True,
        metadata={"description": "Shared by every code: redemptions, money, uses per customer"},
    )


class CampaignPatchSchema(Schema):
    """Body of PATCH /campaigns/{id}: rename, (de)activate every code, change the template."""

    name = fields.String(validate=validate.Length(min=1, max=255))
    active = fields.Boolean()
    template = fields.Nested(_TemplatePatchSchema)
    budget = fields.Nested(
        CampaignBudgetSchema,
        allow_none=True,
        metadata={"description": "Replaces the whole budget; null removes it"},
    )


class _TemplateOutSchema(CouponSchema):
    class Meta:
        exclude = (
            "id",
            "code",
            "active",
            "deleted",
            "status",
            "redemption_count",
            "created_at",
            "updated_at",
        )


class TotalsSchema(Schema):
    codes = fields.Integer()
    codes_used = fields.Integer(data_key="codesUsed")
    redemptions = fields.Integer()
    discount_given = fields.List(fields.Nested(MoneySchema), data_key="discountGiven")
    budget = fields.Nested(BudgetUseSchema, allow_none=True)


class CampaignSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String(metadata={"enum": list(CampaignStatus.ALL)})
    active = fields.Boolean()
    count = fields.Integer(metadata={"description": "Codes asked for by generation"})
    generated = fields.Integer()
    imported = fields.Integer()
    progress = fields.Float(metadata={"description": "Generated / count, 0 to 1"})
    code_config = fields.Dict(data_key="codeConfig")
    template = fields.Nested(_TemplateOutSchema)
    failure_reason = fields.String(data_key="failureReason", allow_none=True)
    totals = fields.Nested(TotalsSchema, metadata={"description": "Only when reading one campaign"})
    created_at = UTCDateTime(data_key="createdAt")
    updated_at = UTCDateTime(data_key="updatedAt")
    finished_at = UTCDateTime(data_key="finishedAt", allow_none=True)

    @pre_dump
    def flatten(self, item, **kwargs):
        # A campaign, or {"campaign", "totals"} when one campaign is read.
        campaign, totals = (
            (item["campaign"], item["totals"]) if isinstance(item, dict) else (item, None)
        )
        out = {
            "id": campaign.id,
            "name": campaign.name,
            "status": campaign.status,
            "active": campaign.active,
            "count": campaign.requested,
            "generated": campaign.generated,
            "imported": campaign.imported,
            "progress": (
                round(campaign.generated / campaign.requested, 4) if campaign.requested else 1.0
            ),
            "code_config": dict(campaign.code_config),
            "template": template_coupon(campaign),
            "failure_reason": campaign.failure_reason,
            "created_at": campaign.created_at,
            "updated_at": campaign.updated_at,
            "finished_at": campaign.finished_at,
        }
        if totals is not None:
            out["totals"] = {
                "codes": totals.codes,
                "codes_used": totals.codes_used,
                "redemptions": totals.redemptions,
                "discount_given": totals.discounts,
                "budget": budgets.campaign_budget(campaign, utcnow()),
            }
        return out


class CampaignCreatedSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    link = fields.String(required=True)


class ImportProblemSchema(Schema):
    line = fields.Integer()
    code = fields.String(allow_none=True)
    reason = fields.String()


class ImportSchema(Schema):
    """A CSV import: queued, running (lines read so far), completed or failed."""

    id = fields.Integer()
    campaign_id = fields.Integer(data_key="campaignId")
    status = fields.String(metadata={"enum": ["queued", "running", "completed", "failed"]})
    lines_read = fields.Integer(data_key="linesRead", metadata={"description": "Header included"})
    imported = fields.Integer()
    duplicates = fields.Integer()
    invalid = fields.Integer()
    problems = fields.List(
        fields.Nested(ImportProblemSchema),
        metadata={"description": f"The first {transfer.MAX_REPORTED} refused lines"},
    )
    failure_reason = fields.String(data_key="failureReason", allow_none=True)
    created_at = UTCDateTime(data_key="createdAt")
    finished_at = UTCDateTime(data_key="finishedAt", allow_none=True)


class ImportQueuedSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    link = fields.String(required=True)
