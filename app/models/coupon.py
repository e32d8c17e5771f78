"""Coupons and their redemptions: the one model every dialect shares."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import utcnow
from app.engine.canonical import code_key
from app.extensions import db


class DiscountType:
    PERCENT = "PERCENT"
    ABSOLUTE = "ABSOLUTE"
    FREE_PRODUCT = "FREE_PRODUCT"
    BUY_X_GET_Y = "BUY_X_GET_Y"
    ALL = (PERCENT, ABSOLUTE, FREE_PRODUCT, BUY_X_GET_Y)


class Target:
    """What a coupon's discount comes off: the order total, cart lines, or shipping."""

    ORDER = "ORDER"
    ITEMS = "ITEMS"
    SHIPPING = "SHIPPING"
    ALL = (ORDER, ITEMS, SHIPPING)


class Allocation:
    """How an ITEMS discount is shared: across the eligible lines, or off each unit."""

    ACROSS = "ACROSS"
    EACH = "EACH"
    ALL = (ACROSS, EACH)


class Origin:
    """Which dialect created a coupon."""

    COUPON = "coupon"
    PROMO = "promo"
    BRANDS = "brands"
    CAMPAIGN = "campaign"


UNLIMITED = -1


class Coupon(db.Model):
    __tablename__ = "coupons"
    __table_args__ = (
        # Codes are unique per tenant regardless of case, deleted ones included.
        UniqueConstraint("tenant_id", "code_key"),
        CheckConstraint("redemption_count >= 0", name="redemption_count_non_negative"),
        CheckConstraint(
            "max_redemptions = -1 OR max_redemptions > 0", name="max_redemptions_valid"
        ),
        CheckConstraint(
            "max_redemptions_per_customer = -1 OR max_redemptions_per_customer > 0",
            name="max_redemptions_per_customer_valid",
        ),
        Index("ix_coupons_tenant_listing", "tenant_id", "deleted", "id"),
        # A campaign's codes in id order: export pages, template changes, brand issuing.
        Index("ix_coupons_campaign", "campaign_id", "id"),
        Index("ix_coupons_tenant_automatic", "tenant_id", "automatic"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    code_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)

    discount_type: Mapped[str] = mapped_column(String(16))
    discount_percentage: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    discount_amount: Mapped[Decimal | None]
    # Currency of the coupon: the discount's for ABSOLUTE, else the minimum order's.
    currency: Mapped[str | None] = mapped_column(String(3))
    free_products: Mapped[list] = mapped_column(default=list)
    free_shipping: Mapped[bool] = mapped_column(Boolean, default=False)

    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    min_order_amount: Mapped[Decimal | None]
    required_product: Mapped[str | None] = mapped_column(String(128))
    valid_for: Mapped[list] = mapped_column(default=list)

    allow_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    max_redemptions: Mapped[int] = mapped_column(default=UNLIMITED)
    max_redemptions_per_customer: Mapped[int] = mapped_column(default=UNLIMITED)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    redemption_count: Mapped[int] = mapped_column(default=0)
    # Stacking in a cart: an exclusive coupon applies only alone; a higher priority
    # applies earlier (a PERCENT then takes its share of what is left).
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    stacking_priority: Mapped[int] = mapped_column(default=0, server_default="0")
    # The latest expiry of any hold on this coupon. Until then the hot redemption path
    # (which counts no holds) steps aside for the locked one, which counts them.
    held_until: Mapped[datetime | None]
    # Offered to shoppers by qualifications; never unless the tenant says so.
    listable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Promotions on cart lines (see app.engine.promotions): what the discount comes off,
    # which lines ({"products": [...], "categories": [...]}), how it is shared, a cap on
    # units and on a PERCENT's amount (in `currency`), and a buy X get Y deal.
    target: Mapped[str] = mapped_column(String(16), default=Target.ORDER, server_default="ORDER")
    applies_to: Mapped[dict | None]
    excludes: Mapped[dict | None]
    allocation: Mapped[str] = mapped_column(
        String(8), default=Allocation.ACROSS, server_default="ACROSS"
    )
    max_quantity: Mapped[int | None]
    max_discount_amount: Mapped[Decimal | None]
    buy_x_get_y: Mapped[dict | None]
    # A cap on the discounts its redemptions and live holds grant (budget_currency), and
    # what its redemptions granted, net of returns: kept by every write of a use.
    budget_amount: Mapped[Decimal | None]
    budget_currency: Mapped[str | None] = mapped_column(String(3))
    discount_used: Mapped[Decimal] = mapped_column(default=0, server_default="0")
    # When a refusal first found the budget spent (budget.exhausted is sent once).
    budget_exhausted_at: Mapped[datetime | None]
    # Applies to every cart it fits, no code needed (carts read the tenant's live ones).
    automatic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The tenant's own string pairs ("metadata" on the wire; the name is SQLAlchemy's).
    meta: Mapped[dict | None] = mapped_column("metadata")

    origin: Mapped[str] = mapped_column(String(16), default=Origin.COUPON)
    # The brands dialect's discount that issued this coupon, if any.
    discount_id: Mapped[int | None] = mapped_column(
        ForeignKey("discounts.id", ondelete="SET NULL"), index=True
    )
    # The campaign whose template this code carries, if any.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    redemptions: Mapped[list[Redemption]] = relationship(
        back_populates="coupon", order_by="Redemption.seq", passive_deletes=True
    )

    @staticmethod
    def key_for(code: str) -> str:
        """The lookup key of a code: its NFKC case fold (look-alikes are one code)."""
        return code_key(code)


def _redemption_id() -> str:
    return uuid.uuid4().hex


class RedemptionStatus:
    # A full rollback gives the use back; a partial one gives money back (budgets), not
    # the use. Either way the row stays, with when and why.
    REDEEMED = "REDEEMED"
    ROLLED_BACK = "ROLLED_BACK"
    PARTIALLY_ROLLED_BACK = "PARTIALLY_ROLLED_BACK"


class Redemption(db.Model):
    __tablename__ = "redemptions"
    __table_args__ = (
        # One redemption per order and coupon: a repeated order id records nothing.
        # Order ids are their owner's (the shop's, or a customer's: see Caller.order_owner).
        UniqueConstraint("coupon_id", "order_owner", "order_id"),
        Index("ix_redemptions_coupon_customer", "coupon_id", "customer_number"),
        # A customer's uses across a campaign (its per-customer budget).
        Index("ix_redemptions_tenant_customer", "tenant_id", "customer_number"),
        # A tenant's redemptions by time (the console's overview); its tenant_id prefix
        # serves the tenant-wide lookups the single-column index did.
        Index("ix_redemptions_tenant_redeemed", "tenant_id", "redeemed_at"),
    )

    # `seq` orders redemptions by creation; `id` is the public, unguessable id.
    seq: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, default=_redemption_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))
    customer_number: Mapped[str | None] = mapped_column(String(64))
    order_total_amount: Mapped[Decimal | None]
    order_total_currency: Mapped[str | None] = mapped_column(String(3))
    discount_amount: Mapped[Decimal | None]
    discount_currency: Mapped[str | None] = mapped_column(String(3))
    order_id: Mapped[str | None] = mapped_column(String(128))
    # Whose order id it is: "" the shop's (client tokens), else the customer's or "*".
    order_owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    redeemed_at: Mapped[datetime] = mapped_column(default=utcnow)
    meta: Mapped[dict | None] = mapped_column("metadata")
    # The database's default only: the ledger's INSERT ... SELECT would otherwise send a
    # Python-side default as a parameter it never fills.
    status: Mapped[str] = mapped_column(String(24), server_default=RedemptionStatus.REDEEMED)
    rolled_back_at: Mapped[datetime | None]
    # What of the discount came back (all of it, on a full rollback).
    rolled_back_amount: Mapped[Decimal | None]
    rollback_reason: Mapped[str | None] = mapped_column(String(500))

    coupon: Mapped[Coupon] = relationship(back_populates="redemptions")

    @property
    def kept_discount(self) -> Decimal | None:
        """The discount the order still has, after what was rolled back."""
        if self.discount_amount is None:
            return None
        return self.discount_amount - (self.rolled_back_amount or 0)
