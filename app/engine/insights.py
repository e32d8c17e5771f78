"""What a tenant's overview shows: uses per day, the most used coupons, live holds and how
deliveries fare. Read-only, every query scoped by the tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Date, cast, func, select

from app.database import read, utcnow
from app.engine.tenants import TenantRef
from app.extensions import db
from app.models import (
    Coupon,
    Hold,
    HoldStatus,
    OutboxMessage,
    OutboxStatus,
    Redemption,
    RedemptionStatus,
    WebhookEndpoint,
)


@dataclass(frozen=True)
class Day:
    """One day's redemptions (rolled back ones not counted) and the discount they kept."""

    day: date
    redemptions: int
    discount: Decimal


@dataclass(frozen=True)
class Overview:
    days: list[Day]
    top_coupons: list[tuple[str, int]]
    live_holds: int
    outbox_pending: int
    outbox_dead: int
    endpoints_failing: int
    endpoints_disabled: int
    currency: str


def _day_of(column):
    """The UTC calendar day of a timestamp column, on either database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # SQLite keeps UTC text


def overview(tenant: TenantRef, *, days: int = 30, top: int = 5) -> Overview:
    """The last `days` days (today included, UTC) and the tenant's current figures."""
    now = utcnow()
    first = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    day = _day_of(Redemption.redeemed_at).label("day")
    kept = Redemption.status != RedemptionStatus.ROLLED_BACK
    per_day = read(
        db.session,
        select(
            day,
            func.count(),
            func.sum(_kept_discount()),
        )
        .where(Redemption.tenant_id == tenant.id, Redemption.redeemed_at >= since, kept)
        .group_by(day),
    )
    found = {_as_date(row[0]): (row[1], Decimal(row[2] or 0)) for row in per_day}
    series = [
        Day(d, *found.get(d, (0, Decimal(0))))
        for d in (first + timedelta(days=n) for n in range(days))
    ]
    top_coupons = [
        (row[0], row[1])
        for row in read(
            db.session,
            select(Coupon.code, Coupon.redemption_count)
            .where(
                Coupon.tenant_id == tenant.id,
                Coupon.deleted.is_(False),
                Coupon.redemption_count > 0,
            )
            .order_by(Coupon.redemption_count.desc(), Coupon.id)
            .limit(top),
        )
    ]
    return Overview(
        days=series,
        top_coupons=top_coupons,
        live_holds=_count(
            select(func.count()).where(
                Hold.tenant_id == tenant.id, Hold.status == HoldStatus.HELD, Hold.expires_at > now
            )
        ),
        outbox_pending=_count(
            select(func.count()).where(
                OutboxMessage.tenant_id == tenant.id,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
        ),
        outbox_dead=_count(
            select(func.count()).where(
                OutboxMessage.tenant_id == tenant.id, OutboxMessage.status == OutboxStatus.DEAD
            )
        ),
        endpoints_failing=_count(
            select(func.count()).where(
                WebhookEndpoint.tenant_id == tenant.id,
                WebhookEndpoint.active.is_(True),
                WebhookEndpoint.failing_since.is_not(None),
            )
        ),
        endpoints_disabled=_count(
            select(func.count()).where(
                WebhookEndpoint.tenant_id == tenant.id, WebhookEndpoint.active.is_(False)
            )
        ),
        currency=tenant.currency,
    )


def _kept_discount():
    return func.coalesce(Redemption.discount_amount, 0) - func.coalesce(
        Redemption.rolled_back_amount, 0
    )


def _count(query) -> int:
    return int(read(db.session, query)[0][0] or 0)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
