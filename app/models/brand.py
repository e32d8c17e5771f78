"""Brands dialect: discount templates and the fans they issue codes to."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.database import utcnow
from app.extensions import db


class BrandDiscountType:
    PERCENT = "PERCENT"
    FIXED_CART = "FIXED_CART"
    ALL = (PERCENT, FIXED_CART)


class Discount(db.Model):
    """A brand's template for the coupons its fans receive."""

    __tablename__ = "discounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    discount_type: Mapped[str] = mapped_column(String(16))
    discount_amount: Mapped[Decimal]
    usage_limit: Mapped[int] = mapped_column(default=1)
    free_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    verify_email: Mapped[bool] = mapped_column(Boolean, default=False)
    # Same code for every fan when set; else each fan gets a generated code.
    fixed_code: Mapped[str | None] = mapped_column(String(64))
    # Fans get the next unissued code of this campaign instead of a generated one.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    date_expires: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_modified: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Fan(db.Model):
    """One fan of one discount: pending email verification, then issued a code."""

    __tablename__ = "fans"
    # One code per inbox and discount: the key ignores case, `+tags`, look-alike forms.
    __table_args__ = (UniqueConstraint("discount_id", "email_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    discount_id: Mapped[int] = mapped_column(ForeignKey("discounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    facebook_handle: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the activation token; the token itself is only in the email.
    activation_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    activation_expires_at: Mapped[datetime | None]
    # The token is derived from SECRET_KEY and this salt (never stored), so a pending
    # registration mails the same link again; when it was last mailed.
    activation_salt: Mapped[str | None] = mapped_column(String(32))
    activation_sent_at: Mapped[datetime | None]
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id", ondelete="SET NULL"))
    issued_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
