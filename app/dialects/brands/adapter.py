"""Brands dialect: API-token authentication, discounts, fans and their codes.

A discount is a template; each fan gets a coupon of the brand's tenant (the
same engine every dialect uses), and the downstream posts go through the outbox
in the same transaction, so the API answers at once and never loses a message.

A discount with a fixed code has one shared coupon: changing the discount's
terms changes that coupon in the same transaction, and a fixed coupon that was
deleted or switched off through the tenant dialect is never handed out again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError

from app.database import insert_or_ignore, utcnow
from app.engine import canonical, outbox, tenants
from app.engine.catalog import campaigns, coupons
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.errors import DomainError, Gone, NotFound, Unauthorized, ValidationFailed
from app.extensions import db
from app.models import (
    BrandDiscountType,
    Campaign,
    Code,
    Coupon,
    Discount,
    DiscountType,
    Fan,
    Origin,
    Tenant,
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


def _coupon_values(tenant: TenantRef, discount: Discount) -> dict:
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
                tenant=tenant, values=_coupon_values(tenant, discount), origin=Origin.BRANDS
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
        fixed = _fixed_coupon(discount)
        if fixed is not None and not fixed.deleted:
            terms = _coupon_values(tenant, discount)
            del terms["code"]
            coupons.change_coupon(fixed, terms)
    return discount


def delete_discount(*, tenant: TenantRef, discount_id: int) -> None:
    """Retire a discount: no new fans; codes already issued stay valid."""
    with unit_of_work():
        get_discount(tenant=tenant, discount_id=discount_id).deleted = True


def _fixed_coupon(discount: Discount) -> Coupon | None:
    """The shared coupon of a fixed-code discount (deleted ones included)."""
    if not discount.fixed_code:
        return None
    return db.session.scalar(
        select(Coupon).where(
            Coupon.discount_id == discount.id,
            Coupon.code_key == Coupon.key_for(discount.fixed_code),
        )
    )


def _issuable(coupon: Coupon | None) -> bool:
    return coupon is not None and not coupon.deleted and coupon.active


# --- fans -------------------------------------------------------------------------------


def _number(value: Decimal | None) -> int | float:
    if value is None:
        return 0
    return int(value) if value == value.to_integral_value() else float(value)


def _pick_discount(tenant: TenantRef, discount_id: int | None) -> Discount:
    """The requested discount, else the brand's newest one that can still issue a code."""
    fixed_coupon_live = exists().where(
        Coupon.discount_id == Discount.id,
        Coupon.deleted.is_(False),
        Coupon.active.is_(True),
    )
    campaign_has_codes = exists().where(
        Campaign.id == Discount.campaign_id,
        Campaign.deleted.is_(False),
        Campaign.active.is_(True),
        exists().where(Code.campaign_id == Campaign.id, Code.position > Campaign.issue_cursor),
    )
    query = select(Discount).where(
        Discount.tenant_id == tenant.id,
        Discount.deleted.is_(False),
        or_(Discount.date_expires.is_(None), Discount.date_expires > utcnow()),
        or_(Discount.fixed_code.is_(None), fixed_coupon_live),
        or_(Discount.campaign_id.is_(None), campaign_has_codes),
    )
    if discount_id is not None:
        query = query.where(Discount.id == discount_id)
    discount = db.session.scalars(query.order_by(Discount.id.desc()).limit(1)).first()
    if discount is None:
        raise NoActiveDiscount()
    return discount


@dataclass(frozen=True)
class ActivationSettings:
    """How activation links are made: the public base URL (never the request's Host),
    the key their tokens are derived with, how long they live, and how soon the same
    link may be mailed again."""

    base_url: str
    secret: str
    ttl_seconds: int
    resend_seconds: int


def _activation_token(settings: ActivationSettings, fan: Fan) -> str:
    """The fan's activation token, derived from the key and the fan's salt: the same link
    can be mailed again without the token being stored anywhere."""
    message = f"fan-activation:{fan.id}:{fan.activation_salt}".encode()
    digest = hmac.new(settings.secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def register_fan(
    *,
    tenant: TenantRef,
    name: str,
    email: str,
    activation: ActivationSettings,
    facebook_handle: str | None = None,
    discount_id: int | None = None,
) -> str:
    """Register a fan: issue the code now, or send the verification email first.

    Returns "issued", "verification_sent", "pending" or "already_issued". One fan per
    inbox and discount (the email's canonical key: case, `+tags` and look-alikes do
    not make another fan). A pending registration is kept as it is, name included,
    and its same link is mailed again at most once per `resend_seconds`. Racing
    registrations of one inbox queue behind the first one's fan row.
    """
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidEmail(
            details=[{"field": "email", "type": "invalid", "message": str(error)}]
        ) from None
    key = canonical.email_key(email)
    now = utcnow()
    with unit_of_work():
        discount = _pick_discount(tenant, discount_id)
        db.session.execute(
            insert_or_ignore(
                db.session,
                Fan,
                tenant_id=tenant.id,
                discount_id=discount.id,
                email=email,
                email_key=key,
                name=name,
                facebook_handle=facebook_handle,
                created_at=now,
            )
        )
        fan = db.session.scalar(
            select(Fan)
            .where(Fan.discount_id == discount.id, Fan.email_key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if fan.coupon_id is not None:
            return "already_issued"
        pending = (
            fan.activation_salt is not None
            and fan.activation_expires_at is not None
            and fan.activation_expires_at > now
        )
        if pending:
            if fan.activation_sent_at > now - timedelta(seconds=activation.resend_seconds):
                return "pending"  # mailed lately: not again
        else:
            fan.name, fan.facebook_handle = name, facebook_handle
            if not discount.verify_email:
                _issue(tenant, discount, fan)
                return "issued"
            fan.activation_salt = secrets.token_hex(16)
            fan.activation_expires_at = now + timedelta(seconds=activation.ttl_seconds)
        token = _activation_token(activation, fan)
        fan.activation_token_hash = hash_token(token)
        fan.activation_sent_at = now
        outbox.enqueue(
            tenant_id=tenant.id,
            destination=outbox.EMAIL_VERIFIER,
            path="/email",
            payload={
                "email": fan.email,
                "token": token,
                "brand": tenant.slug,
                "brand_id": tenant.id,
                "activation_url": f"{activation.base_url.rstrip('/')}/fans/{token}",
            },
        )
        return "verification_sent"


def _issue(tenant: TenantRef, discount: Discount, fan: Fan) -> Coupon:
    """Give the fan its code and queue the realizer post (in the caller's unit of work)."""
    if discount.fixed_code:
        coupon = _fixed_coupon(discount)
        if not _issuable(coupon):
            raise CodeWithdrawn()
    elif discount.campaign_id is not None:
        coupon = campaigns.issue_next(discount.campaign_id, tenant)
    else:
        coupon = coupons.new_coupon(
            tenant=tenant, values=_coupon_values(tenant, discount), origin=Origin.BRANDS
        )
        coupon.discount_id = discount.id
        db.session.add(coupon)
        db.session.flush()
    fan.coupon_id = coupon.id
    fan.issued_at = utcnow()
    fan.activation_token_hash = None  # used: the link answers 404 from now on
    outbox.enqueue(
        tenant_id=tenant.id,
        destination=outbox.COUPON_REALIZER,
        path="/coupon",
        payload=_realizer_payload(fan, discount, coupon),
    )
    return coupon


def _realizer_payload(fan: Fan, discount: Discount, coupon: Coupon) -> dict:
    """The seed's realizer post, describing the coupon actually issued (not the template)."""
    percent = coupon.discount_type == DiscountType.PERCENT
    limit = coupon.max_redemptions_per_customer if discount.fixed_code else coupon.max_redemptions
    return {
        "fan_name": fan.name,
        "email": fan.email,
        "facebook_handle": fan.facebook_handle,
        "discount_name": coupon.name if coupon.name is not None else discount.name,
        "coupon_code": coupon.code,
        "discount_type": BrandDiscountType.PERCENT if percent else BrandDiscountType.FIXED_CART,
        "discount_amount": _number(
            coupon.discount_percentage if percent else coupon.discount_amount
        ),
        "description": coupon.description,
        "usage_limit": limit,
        "free_shipping": coupon.free_shipping,
    }


def activate(*, token: str) -> None:
    """The activation link: issue the code once; unknown or used 404, expired or withdrawn 410."""
    with unit_of_work():
        fan = db.session.scalar(
            select(Fan).where(Fan.activation_token_hash == hash_token(token)).with_for_update()
        )
        if fan is None:
            raise NotFound("Unknown or already used activation token")
        if fan.activation_expires_at is None or fan.activation_expires_at <= utcnow():
            raise Gone("The activation link has expired")
        discount = db.session.get(Discount, fan.discount_id)
        if discount.deleted or (
            discount.date_expires is not None and discount.date_expires <= utcnow()
        ):
            raise CodeWithdrawn("The discount was retired or has expired; no code is issued")
        tenant = db.session.get(Tenant, fan.tenant_id)
        _issue(tenant, discount, fan)
