"""Typed SQLAlchemy 2.0 models. Models never commit; services do."""

from app.models.brand import BrandDiscountType, Discount, Fan
from app.models.campaign import Campaign, CampaignImport, CampaignStatus, Code, ImportStatus
from app.models.coupon import (
    Allocation,
    Coupon,
    DiscountType,
    Origin,
    Redemption,
    RedemptionStatus,
    Target,
)
from app.models.customer import Customer
from app.models.hold import Hold, HoldStatus
from app.models.idempotency import IdempotencyRecord
from app.models.outbox import OutboxMessage, OutboxStatus
from app.models.tenant import Client, ConsoleSession, Tenant
from app.models.webhook import WebhookAttempt, WebhookEndpoint

__all__ = [
    "Allocation",
    "BrandDiscountType",
    "Campaign",
    "CampaignImport",
    "CampaignStatus",
    "Code",
    "Discount",
    "Fan",
    "Client",
    "Coupon",
    "Customer",
    "DiscountType",
    "IdempotencyRecord",
    "ImportStatus",
    "Origin",
    "OutboxMessage",
    "OutboxStatus",
    "Redemption",
    "RedemptionStatus",
    "Hold",
    "WebhookAttempt",
    "WebhookEndpoint",
    "HoldStatus",
    "Target",
    "Tenant",
    "ConsoleSession",
]
