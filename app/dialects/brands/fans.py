"""Brands dialect: fans. A fan registers for a brand's discount and gets a coupon of the
brand's tenant, at once or after verifying their email by a link; the realizer post
and the verification email go through the outbox in the same transaction.

One fan per inbox and discount (the email's canonical key). Activation tokens are
derived from SECRET_KEY and a salt and never stored, so a pending registration
mails the same link again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from app.database import column_values, engine_of, insert_or_ignore, read, utcnow
from app.dialects.brands import fan_statement
from app.dialects.brands.adapter import (
    CodeWithdrawn,
    InvalidEmail,
    NoActiveDiscount,
    coupon_values,
    fixed_coupon,
    issuable,
)
from app.direct import Direct
from app.engine import canonical, outbox
from app.engine.catalog import campaigns, coupons
from app.engine.tenants import TenantRef
from app.engine.uow import in_unit_of_work, unit_of_work
from app.errors import Gone, NotFound
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


def _number(value: Decimal | None) -> int | float:
    if value is None:
        return 0
    return int(value) if value == value.to_integral_value() else float(value)


@functools.cache
def _discount_query(by_id: bool):
    """The discounts a fan may register for, newest first, built once (a fan registration
    spent a fifth of its CPU building it anew). Parameters tenant_id, now, discount_id."""
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
    now = bindparam("now", type_=Discount.date_expires.type)
    query = select(Discount).where(
        Discount.tenant_id == bindparam("tenant_id"),
        Discount.deleted.is_(False),
        or_(Discount.date_expires.is_(None), Discount.date_expires > now),
        or_(Discount.fixed_code.is_(None), fixed_coupon_live),
        or_(Discount.campaign_id.is_(None), campaign_has_codes),
    )
    if by_id:
        query = query.where(Discount.id == bindparam("discount_id"))
    return query.order_by(Discount.id.desc()).limit(1)


# The fan row of an inbox and discount, locked and read afresh.
_LOCKED_FAN = (
    select(Fan)
    .where(Fan.discount_id == bindparam("discount_id"), Fan.email_key == bindparam("email_key"))
    .with_for_update()
    .execution_options(populate_existing=True)
)

# A brand's new coupon, its row given as parameters (Core: the row is all it needs).
_NEW_COUPON = insert(Coupon.__table__).returning(Coupon.id)


@functools.cache
def _discount_read(by_id: bool) -> Direct:
    return Direct(_discount_query(by_id))


def _pick_discount(tenant: TenantRef, discount_id: int | None) -> Discount:
    """The requested discount, else the brand's newest one that can still issue a code
    (read on its own, autocommitted: a detached object, read for its values)."""
    params = {"tenant_id": tenant.id, "now": utcnow(), "discount_id": discount_id}
    found = read(db.session, _discount_read(discount_id is not None), params)
    if not found:
        raise NoActiveDiscount()
    return Discount(**found[0])


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
    discount = _pick_discount(tenant, discount_id)
    fan = Fan(
        tenant_id=tenant.id,
        discount_id=discount.id,
        email=email,
        email_key=key,
        name=name,
        facebook_handle=facebook_handle,
        created_at=now,
        issued_at=now,
    )
    if _issued_at_once(tenant, discount, fan):
        return "issued"
    with unit_of_work():
        db.session.execute(
            insert_or_ignore(db.session, Fan),
            {
                "tenant_id": tenant.id,
                "discount_id": discount.id,
                "email": email,
                "email_key": key,
                "name": name,
                "facebook_handle": facebook_handle,
                "created_at": now,
            },
        )
        fan = db.session.scalar(_LOCKED_FAN, {"discount_id": discount.id, "email_key": key})
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


def _issued_at_once(tenant: TenantRef, discount: Discount, fan: Fan) -> bool:
    """A new fan of a discount that issues a new code without verification: the fan, its
    coupon and the realizer post in one statement (see fan_statement). False when the
    registration is not of that kind or nothing was written (the inbox has a fan of the
    discount, or the code drawn is taken): the general path then decides."""
    if discount.verify_email or discount.fixed_code or discount.campaign_id is not None:
        return False
    engine = engine_of(db.session)
    if in_unit_of_work() or engine.dialect.name != "postgresql":
        return False
    coupon = coupons.new_coupon(
        tenant=tenant, values=coupon_values(tenant, discount), origin=Origin.BRANDS
    )
    coupon.discount_id = discount.id
    message = outbox.message_values(
        tenant_id=tenant.id,
        destination=outbox.COUPON_REALIZER,
        path="/coupon",
        payload=_realizer_payload(fan, discount, coupon),
    )
    params = fan_statement.parameters(column_values(fan), column_values(coupon), message)
    try:
        (row,) = fan_statement.statement().autocommit_rows(engine, params)
    except IntegrityError:
        return False  # a generated code already taken: the general path draws another
    return row["issued"] == 1


def _issue(tenant: TenantRef, discount: Discount, fan: Fan) -> Coupon:
    """Give the fan its code and queue the realizer post (in the caller's unit of work)."""
    if discount.fixed_code:
        coupon = fixed_coupon(discount)
        if not issuable(coupon):
            raise CodeWithdrawn()
    elif discount.campaign_id is not None:
        coupon = campaigns.issue_next(discount.campaign_id, tenant)
    else:
        coupon = coupons.new_coupon(
            tenant=tenant, values=coupon_values(tenant, discount), origin=Origin.BRANDS
        )
        coupon.discount_id = discount.id
        # A Core insert: the row is all this request needs (a flush's bookkeeping was a
        # fifth of a registration's CPU); the object stays a description of it.
        coupon.id = db.session.execute(_NEW_COUPON, column_values(coupon)).scalar_one()
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
    """The realizer post, describing the coupon actually issued (not the template)."""
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


@dataclass(frozen=True)
class FanRow:
    """A fan as the console lists it: who, for which discount, and where they stand."""

    name: str
    email: str
    discount: str
    state: str  # "issued" | "pending" | "expired"
    code: str | None
    created_at: object


def list_fans(*, tenant: TenantRef, page: int, page_size: int) -> tuple[list[FanRow], int]:
    """One page of the brand's fans, newest first, and how many there are."""
    query = (
        select(Fan, Discount.name, Coupon.code)
        .join(Discount, Discount.id == Fan.discount_id)
        .outerjoin(Coupon, Coupon.id == Fan.coupon_id)
        .where(Fan.tenant_id == tenant.id)
        .order_by(Fan.id.desc())
    )
    total = db.session.scalar(select(func.count()).where(Fan.tenant_id == tenant.id)) or 0
    now = utcnow()
    found = []
    for fan, discount, code in db.session.execute(
        query.offset((page - 1) * page_size).limit(page_size)
    ):
        if fan.coupon_id is not None:
            state = "issued"
        elif fan.activation_expires_at is not None and fan.activation_expires_at > now:
            state = "pending"
        else:
            state = "expired"
        found.append(FanRow(fan.name, fan.email, discount, state, code, fan.created_at))
    return found, total
