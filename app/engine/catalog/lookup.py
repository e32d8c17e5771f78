"""Finding a coupon by its code: the one place that does it, campaign codes included.

A campaign's codes are rows of the `codes` registry until first looked up; the
first lookup (any dialect, any route) makes the code a coupon row carrying its
campaign's template (`materialize`), and from then on it is a coupon like any other.
"""

from __future__ import annotations

from sqlalchemy import select

from app.database import insert_or_ignore, read
from app.engine.canonical import code_key
from app.engine.definition import row_values
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.errors import CouponNotFound
from app.extensions import db
from app.models import Campaign, Code, Coupon


def find_by_id(*, tenant: TenantRef, coupon_id: int, origin: str | None = None) -> Coupon | None:
    """The tenant's live (not deleted) coupon with this numeric id, optionally of one origin."""
    conditions = [Coupon.tenant_id == tenant.id, Coupon.id == coupon_id, Coupon.deleted.is_(False)]
    if origin is not None:
        conditions.append(Coupon.origin == origin)
    return db.session.scalar(select(Coupon).where(*conditions))


def find(*, tenant: TenantRef, code: str, for_update: bool = False) -> Coupon | None:
    """The tenant's coupon with this code (any case), deleted ones included; a campaign's
    code becomes a coupon here the first time it is looked up."""
    query = select(Coupon).where(
        Coupon.tenant_id == tenant.id, Coupon.code_key == Coupon.key_for(code)
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    coupon = db.session.scalar(query)
    if coupon is None and materialize(tenant.id, code):
        coupon = db.session.scalar(query)
    return coupon


def get_coupon(*, tenant: TenantRef, code: str) -> Coupon:
    """The tenant's coupon, deleted ones included (managers' view)."""
    coupon = find(tenant=tenant, code=code)
    if coupon is None:
        raise CouponNotFound()
    return coupon


def materialize(tenant_id: int, code: str) -> bool:
    """Make a campaign's code a coupon row, the first time it is looked up; False when
    the code is no live campaign's.

    The campaign row is read FOR SHARE, so a template change (which holds it FOR
    UPDATE while it rewrites the campaign's coupons) is either wholly before this
    coupon is made or sees it. A concurrent first lookup inserts nothing.
    """
    key = code_key(code)
    found = read(
        db.session,
        select(Code.campaign_id, Code.code).where(
            Code.tenant_id == tenant_id, Code.code_key == key, Code.campaign_id.is_not(None)
        ),
    )
    if not found:
        return False
    with unit_of_work():
        campaign = db.session.scalar(
            select(Campaign)
            .where(Campaign.id == found[0].campaign_id, Campaign.deleted.is_(False))
            .with_for_update(read=True)
        )
        if campaign is None:
            return False
        values = row_values(campaign)
        db.session.execute(
            insert_or_ignore(db.session, Coupon), {"code": found[0].code, "code_key": key, **values}
        )
    return True
