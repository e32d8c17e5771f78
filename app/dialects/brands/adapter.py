"""Brands dialect's adapter: API-token authentication and discounts (fans: `fans`).

A discount is a template; each fan gets a coupon of the brand's tenant (the
same engine every dialect uses).

A discount with a fixed code has one shared coupon: changing the discount's
terms changes that coupon in the same transaction, and a fixed coupon that was
deleted or switched off through the tenant dialect is never handed out again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.engine import tenants
from app.engine.catalog import campaigns, coupons
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.errors import DomainError, Gone, NotFound, Unauthorized, ValidationFailed
from app.extensions import db
from app.models import (
    BrandDiscountType,
    Coupon,
    Discount,
    DiscountType,
    Origin,
)
from app.security import hash_token


class InvalidEmail(DomainError):
    status, type, message = 422, "invalid_email", "The email address is not valid"


class NoActiveDiscount(DomainError):
    status, type, message = 422, "no_active_discount", "The brand has no matching active discount"


class CodeWithdrawn(Gone):
    type, message = "code_withdrawn", "The discount's code was withdrawn; it cannot be issued"


# --- authentication -------------------------------------------------------------------

INVALID_API_TOKEN = "Invalid API token for this brand"


def authenticate(*, api_token: str | None, brand: str | None = None) -> TenantRef:
    """The brand owning this X-API-Token; 401 if unknown or another brand's (the same
    answer, so a valid token cannot be confirmed on someone else's path)."""
    if not api_token:
        raise Unauthorized("X-API-Token header required")
    # The lookup is by SHA-256 of the token, so no plaintext comparison happens at all.
    tenant = tenants.tenant_for_api_token(hash_token(api_token))
    if tenant is None or (brand is not None and brand != tenant.slug):
        raise Unauthorized(INVALID_API_TOKEN)
    return tenant


# --- discounts ------------------------------------------------------------------------

DISCOUNT_DEFAULTS = {
    "description": None,
    "usage_limit": 1,
    "free_shipping": False,
    "verify_email": False,
    "fixed_code": None,
    "date_expires": None,
    "campaign_id": None,
}


def _check_discount(values: dict) -> None:
    problems = []
    kind, amount = values.get("discount_type"), values.get("discount_amount")
    if kind == BrandDiscountType.PERCENT and amount is not None and not 0 < amount <= 100:
        problems.append(
            {
                "field": "discount_amount",
                "type": "invalid",
                "message": "A PERCENT discount is greater than 0 and at most 100",
            }
        )
    if kind == BrandDiscountType.FIXED_CART and amount is not None and amount <= 0:
        problems.append(
            {
                "field": "discount_amount",
                "type": "invalid",
                "message": "A FIXED_CART discount is positive",
            }
        )
    if values.get("campaign_id") is not None and values.get("fixed_code"):
        problems.append(
            {
                "field": "campaign_id",
                "type": "invalid",
                "message": "A discount gives a fixed code or a campaign's codes, not both",
            }
        )
    if problems:
        raise ValidationFailed(details=problems)


def _check_campaign(tenant: TenantRef, values: dict) -> None:
    if values.get("campaign_id") is not None:
        try:
            campaigns.get_campaign(tenant=tenant, campaign_id=values["campaign_id"])
        except NotFound:
            raise ValidationFailed(
                details=[{"field": "campaign_id", "type": "invalid", "message": "No such campaign"}]
            ) from None


def coupon_values(tenant: TenantRef, discount: Discount) -> dict:
    """The engine definition of the coupons this discount issues."""
    values = {
        "name": discount.name,
        "description": discount.description,
        "free_shipping": discount.free_shipping,
        "valid_until": discount.date_expires,
    }
    if discount.discount_type == BrandDiscountType.PERCENT:
        values.update(
            discount_type=DiscountType.PERCENT, discount_percentage=discount.discount_amount
        )
    else:
        values.update(
            discount_type=DiscountType.ABSOLUTE,
            discount_amount=discount.discount_amount,
            discount_currency=tenant.currency,
        )
    if discount.fixed_code:
        # One shared code: the usage limit applies to each customer.
        values.update(code=discount.fixed_code, max_redemptions_per_customer=discount.usage_limit)
    else:
        values.update(max_redemptions=discount.usage_limit)
    return values


def create_discount(*, tenant: TenantRef, values: dict) -> Discount:
    """A new discount; a fixed code becomes its (shared) tenant coupon right away."""
    values = {**DISCOUNT_DEFAULTS, **values}
    _check_discount(values)
    _check_campaign(tenant, values)
    with unit_of_work():
        discount = Discount(tenant_id=tenant.id, **values)
        db.session.add(discount)
        db.session.flush()
        if discount.fixed_code:
            coupon = coupons.new_coupon(
                tenant=tenant, values=coupon_values(tenant, discount), origin=Origin.BRANDS
            )
            coupon.discount_id = discount.id
            try:
                with db.session.begin_nested():
                    db.session.add(coupon)
            except IntegrityError:
                raise coupons.CouponCodeExists(
                    "fixed_code is already a coupon code of this brand"
                ) from None
    return discount


def list_discounts(*, tenant: TenantRef) -> list[Discount]:
    """The brand's discounts in creation order."""
    return list(
        db.session.scalars(
            select(Discount)
            .where(Discount.tenant_id == tenant.id, Discount.deleted.is_(False))
            .order_by(Discount.id)
        )
    )


def get_discount(*, tenant: TenantRef, discount_id: int) -> Discount:
    """One of the brand's discounts."""
    discount = db.session.scalar(
        select(Discount).where(
            Discount.id == discount_id, Discount.tenant_id == tenant.id, Discount.deleted.is_(False)
        )
    )
    if discount is None:
        raise NotFound("Discount not found")
    return discount


def update_discount(
    *, tenant: TenantRef, discount_id: int, values: dict, replace: bool
) -> Discount:
    """PUT (replace) or PATCH; a fixed code's shared coupon takes the new terms at once."""
    with unit_of_work():
        discount = get_discount(tenant=tenant, discount_id=discount_id)
        if "fixed_code" in values and values["fixed_code"] != discount.fixed_code:
            raise ValidationFailed(
                details=[
                    {
                        "field": "fixed_code",
                        "type": "invalid",
                        "message": "fixed_code cannot change; create a new discount",
                    }
                ]
            )
        merged = (
            {**DISCOUNT_DEFAULTS, "fixed_code": discount.fixed_code, **values}
            if replace
            else {
                "discount_type": discount.discount_type,
                "discount_amount": discount.discount_amount,
                "fixed_code": discount.fixed_code,
                **values,
            }
        )
        _check_discount(merged)
        _check_campaign(tenant, merged)
        for key, value in merged.items():
            setattr(discount, key, value)
        fixed = fixed_coupon(discount)
        if fixed is not None and not fixed.deleted:
            terms = coupon_values(tenant, discount)
            del terms["code"]
            coupons.change_coupon(fixed, terms)
    return discount


def delete_discount(*, tenant: TenantRef, discount_id: int) -> None:
    """Retire a discount: no new fans; codes already issued stay valid."""
    with unit_of_work():
        get_discount(tenant=tenant, discount_id=discount_id).deleted = True


def fixed_coupon(discount: Discount) -> Coupon | None:
    """The shared coupon of a fixed-code discount (deleted ones included)."""
    if not discount.fixed_code:
        return None
    return db.session.scalar(
        select(Coupon).where(
            Coupon.discount_id == discount.id,
            Coupon.code_key == Coupon.key_for(discount.fixed_code),
        )
    )


def issuable(coupon: Coupon | None) -> bool:
    return coupon is not None and not coupon.deleted and coupon.active
