"""Holds (reservations): a use of a coupon kept for one order while the shopper pays."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import utcnow
from app.extensions import db
from app.models.coupon import Coupon


class HoldStatus:
    # held: counts against the limits until expires_at; confirmed: became a redemption;
    # released: given back by the caller. An expired hold stays `held` until purged:
    # it stops counting by its expires_at alone, so no job is needed for correctness.
    HELD = "held"
    CONFIRMED = "confirmed"
    RELEASED = "released"


def _reservation_id() -> str:
    return uuid.uuid4().hex


class Hold(db.Model):
    __tablename__ = "reservations"
    __table_args__ = (
        # The live holds of a coupon: what every limit check counts.
        Index(
            "ix_reservations_live",
            "coupon_id",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        Index("ix_reservations_coupon_order", "coupon_id", "order_id"),
        # The worker's purge of old holds.
        Index("ix_reservations_expires_at", "expires_at"),
    )

    # `seq` orders holds by creation; `id` is the public, unguessable id.
    seq: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, default=_reservation_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))
    customer_number: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(128))
    # Whose order id it is (see Redemption.order_owner).
    order_owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    order_total_amount: Mapped[Decimal | None]
    order_total_currency: Mapped[str | None] = mapped_column(String(3))
    discount_amount: Mapped[Decimal | None]
    discount_currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.HELD)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    # The redemption a confirmed hold became.
    redemption_id: Mapped[str | None] = mapped_column(String(32))
    # The tenant's own string pairs ("metadata" on the wire), given to its redemption.
    meta: Mapped[dict | None] = mapped_column("metadata")

    coupon: Mapped[Coupon] = relationship()
