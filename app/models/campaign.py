"""Campaigns: named batches of unique codes sharing one coupon template."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import utcnow
from app.extensions import db


class CampaignStatus:
    # queued: waiting for a worker; generating: a worker holds its lease;
    # completed: every asked code exists; failed: see failure_reason (retry or delete).
    QUEUED = "queued"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"
    ALL = (QUEUED, GENERATING, COMPLETED, FAILED)


class Campaign(db.Model):
    """A campaign's codes are rows of `codes`; the first lookup of one makes it a coupon
    row carrying the template (`coupons.campaign_id`), which every dialect redeems."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Codes asked for by generation (0: filled by import only).
    requested: Mapped[int] = mapped_column(default=0)
    generated: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    # {"charset", "pattern"} with prefix and postfix already part of the pattern.
    code_config: Mapped[dict] = mapped_column(default=dict)
    # The engine definition every code carries (JSON-safe: decimals and dates as text).
    template: Mapped[dict] = mapped_column(default=dict)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # The worker (or CLI run) generating it, until lease_until; then anyone may resume.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    # Codes are numbered in the campaign (`codes.position`); the last number used.
    positions: Mapped[int] = mapped_column(default=0)
    # Brand discounts hand out codes in position order; every one up to this is given.
    issue_cursor: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    # A budget shared by every code (each part optional), and what was used of it, net
    # of returns: kept only while a budget is set (set one and they are counted afresh).
    budget_max_redemptions: Mapped[int | None]
    budget_amount: Mapped[Decimal | None]
    budget_currency: Mapped[str | None] = mapped_column(String(3))
    budget_max_per_customer: Mapped[int | None]
    redemptions_used: Mapped[int] = mapped_column(default=0, server_default="0")
    discount_used: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    budget_exhausted_at: Mapped[datetime | None]

    @property
    def budgeted(self) -> bool:
        return not (
            self.budget_max_redemptions is None
            and self.budget_amount is None
            and self.budget_max_per_customer is None
        )


class Code(db.Model):
    """Every code of every tenant, once, by its case-folded key.

    The primary key is the database's guarantee that a code is unique in its
    tenant regardless of case, across coupons and campaigns: a trigger registers
    each coupon's code (see migration 0004), campaigns write theirs here in bulk.
    No foreign keys, so bulk loads run at COPY speed; rows are only ever written
    by the service and the trigger.
    """

    __tablename__ = "codes"
    __table_args__ = (Index("ix_codes_campaign", "campaign_id", "position"),)

    tenant_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    code_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    # Set for a campaign's codes: the campaign and the code's number in it.
    campaign_id: Mapped[int | None]
    position: Mapped[int | None]


class ImportStatus:
    # queued: waiting for a worker; running: a worker holds its lease; completed: every
    # line read (see the counts and problems); failed: see failure_reason.
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CampaignImport(db.Model):
    """A CSV file of codes being added to a campaign by the worker, a batch of lines per
    transaction: the file, how far it has been read, and the report so far."""

    __tablename__ = "campaign_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    # The uploaded file (emptied once read to the end) and the `code` column's index.
    data: Mapped[bytes] = mapped_column(LargeBinary)
    code_column: Mapped[int]
    # Characters of the decoded file read so far, and the last line number read.
    offset: Mapped[int] = mapped_column(default=0)
    lines_read: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    invalid: Mapped[int] = mapped_column(default=0)
    # The first refused lines: [{"line", "code", "reason"}].
    problems: Mapped[list] = mapped_column(default=list)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
