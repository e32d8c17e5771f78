"""Coupons: create, read, list, replace, update, soft delete.

What a valid coupon is, every dialect alike, is `app.engine.definition`; finding one
by its code is `lookup`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.exc import IntegrityError

from app.auth import Caller
from app.database import paged, utcnow
from app.engine import canonical, codes, rules, webhooks
from app.engine.catalog import lookup
from app.engine.definition import (
    CODE_RULE,
    DEFAULTS,
    apply_definition,
    definition_of,
    invalid,
    validated,
)
from app.engine.tenants import TenantRef
from app.engine.uow import stale_reads, unit_of_work
from app.engine.usage import budgets
from app.errors import Conflict, CouponNotFound, RuleViolated, ValidationFailed
from app.extensions import db
from app.models import Coupon, Origin, Redemption, Tenant


class CouponCodeExists(Conflict):
    type, message = "coupon_code_exists", "A coupon with this code already exists"


def new_coupon(
    *, tenant: TenantRef, values: dict, origin: str = Origin.COUPON, code_prefix: str = ""
) -> Coupon:
    """Build (not commit) a valid coupon; the caller owns the transaction."""
    values = dict(values)
    code = values.pop("code", None)
    if code is not None and not codes.is_valid(code):
        raise ValidationFailed(details=[invalid("code", CODE_RULE)])
    definition = validated({**DEFAULTS, **values}, set(values))
    coupon = Coupon(tenant_id=tenant.id, origin=origin, redemption_count=0, deleted=False)
    coupon.code = canonical.code(code) if code else codes.generate(prefix=code_prefix)
    coupon.code_key = Coupon.key_for(coupon.code)
    apply_definition(coupon, definition)
    return coupon


# Every cart reads its tenant's live automatic promotions: a bounded number.
MAX_AUTOMATIC = 100


def _check_automatic_room(coupon: Coupon) -> None:
    """Refuse a live automatic promotion beyond the tenant's MAX_AUTOMATIC."""
    if not live_automatic(coupon):
        return
    # Two creates counting at once would both see room for one: the tenant's row lock
    # makes them count one after the other (PostgreSQL; SQLite writes one at a time).
    db.session.execute(select(Tenant.id).where(Tenant.id == coupon.tenant_id).with_for_update())
    others = db.session.scalar(
        select(func.count()).where(
            Coupon.tenant_id == coupon.tenant_id,
            Coupon.automatic.is_(True),
            Coupon.deleted.is_(False),
            Coupon.active.is_(True),
            or_(Coupon.valid_until.is_(None), Coupon.valid_until > utcnow()),
            Coupon.id != (coupon.id or 0),
        )
    )
    if others >= MAX_AUTOMATIC:
        raise ValidationFailed(
            details=[
                invalid("automatic", f"A tenant has at most {MAX_AUTOMATIC} live automatic ones")
            ]
        )


def live_automatic(coupon: Coupon) -> bool:
    return bool(
        coupon.automatic
        and coupon.active
        and not coupon.deleted
        and (coupon.valid_until is None or coupon.valid_until > utcnow())
    )


def create_coupon(*, tenant: TenantRef, values: dict, origin: str = Origin.COUPON) -> Coupon:
    """Create a coupon; a missing code is generated (retried on the rare collision)."""
    attempts = 1 if values.get("code") else 5
    with unit_of_work():
        for _ in range(attempts):
            coupon = new_coupon(tenant=tenant, values=values, origin=origin)
            _check_automatic_room(coupon)
            try:
                with db.session.begin_nested():  # a taken code undoes only this attempt
                    db.session.add(coupon)
                _announce(coupon, "coupon.created")
                return coupon
            except IntegrityError:
                continue
        raise CouponCodeExists()


def get_for_caller(*, tenant: TenantRef, code: str, caller: Caller, customer_number: str | None):
    """A coupon as `caller` may see it: managers see all, others only what they may use."""
    coupon = lookup.find(tenant=tenant, code=code)
    if coupon is None or (coupon.deleted and not caller.manages):
        raise CouponNotFound()
    if caller.manages:
        return coupon
    context = rules.Context(
        identified=caller.identified, customer_number=caller.acting_customer(customer_number)
    )
    if not rules.may_use(coupon, context):
        raise RuleViolated(rules.Violation(rules.FORBIDDEN))
    return coupon


def list_coupons(
    *,
    tenant: TenantRef,
    page: int = 1,
    page_size: int | None,
    show_deleted: bool = False,
    deleted: bool | None = None,
    origin: str | None = None,
    metadata: dict[str, str] | None = None,
    code_prefix: str | None = None,
    status: str | None = None,
) -> tuple[list[Coupon], int]:
    """One page of the tenant's coupons in creation order (all if no page size), and the
    count; with `metadata`, only coupons carrying every one of those pairs; with
    `code_prefix`, codes starting so (as codes match: case-insensitively); with `status`,
    those `coupon_status` says are in it."""
    conditions = [Coupon.tenant_id == tenant.id]
    if code_prefix:
        conditions.append(Coupon.code_key.startswith(Coupon.key_for(code_prefix), autoescape=True))
    if status is not None:
        conditions.append(_in_status(status, utcnow()))
    for key, value in (metadata or {}).items():
        conditions.append(Coupon.meta[key].as_string() == value)
    # An explicit `deleted` filter wins over showDeleted (the tenant dialect's rule).
    if deleted is not None:
        conditions.append(Coupon.deleted.is_(deleted))
    elif not show_deleted:
        conditions.append(Coupon.deleted.is_(False))
    if origin is not None:
        conditions.append(Coupon.origin == origin)
    query = select(Coupon).where(*conditions).order_by(Coupon.id)
    # A list may be a little stale: it reads the replica when there is one.
    return stale_reads(lambda session: paged(session, query, page, page_size))


def replace_coupon(*, tenant: TenantRef, code: str, values: dict) -> Coupon:
    """PUT: the whole definition is replaced; the code itself cannot change."""
    coupon = lookup.get_coupon(tenant=tenant, code=code)
    return _save(coupon, {**DEFAULTS, **_without_code(coupon, values)}, set(values))


def update_coupon(*, tenant: TenantRef, code: str, changes: dict) -> Coupon:
    """PATCH: only the given fields change."""
    coupon = lookup.get_coupon(tenant=tenant, code=code)
    return _save(coupon, {**definition_of(coupon), **_without_code(coupon, changes)}, set(changes))


def change_coupon(coupon: Coupon, changes: dict, *, new_code: str | None = None) -> Coupon:
    """PATCH a loaded coupon, renaming it too (for dialects whose ids are not codes)."""
    if new_code is not None and not codes.is_valid(new_code):
        raise ValidationFailed(details=[invalid("code", CODE_RULE)])
    with unit_of_work():
        try:
            with db.session.begin_nested():  # a code taken meanwhile is a conflict, not a 500
                if new_code is not None:
                    # Same code in another case: kept as given, still the same key.
                    coupon.code = canonical.code(new_code)
                    coupon.code_key = Coupon.key_for(new_code)
                return _save(coupon, {**definition_of(coupon), **changes}, set(changes))
        except IntegrityError:
            raise CouponCodeExists() from None


def _without_code(coupon: Coupon, values: dict) -> dict:
    values = dict(values)
    code = values.pop("code", None)
    if code is not None and Coupon.key_for(code) != coupon.code_key:
        raise ValidationFailed(details=[invalid("code", "The code of a coupon cannot change")])
    return values


def _save(coupon: Coupon, definition: dict, explicit: set[str]) -> Coupon:
    if coupon.deleted:
        raise Conflict("A deleted coupon cannot be changed")
    definition = validated(definition, explicit)
    if coupon.campaign_id is not None and definition["budget_amount"] is not None:
        # A template rewrites its codes: a code's own budget would silently go.
        raise ValidationFailed(
            details=[invalid("budget", "A campaign's code shares the campaign's budget")]
        )
    with unit_of_work() as session:
        counted_in = (coupon.budget_amount is not None, coupon.budget_currency)
        apply_definition(coupon, definition)
        if (coupon.budget_amount is not None, coupon.budget_currency) != counted_in:
            _recount_budget(session, coupon)
        _check_automatic_room(coupon)
        _announce(coupon, "coupon.updated")
    return coupon


def _recount_budget(session, coupon: Coupon) -> None:
    """A budget set, or set in another currency: what the coupon's redemptions kept, in
    that currency alone, is what it has used (under the coupon's row lock, so no use is
    taken meanwhile; other currencies' discounts are not its money)."""
    session.execute(select(Coupon.id).where(Coupon.id == coupon.id).with_for_update())
    _, coupon.discount_used = budgets.kept(
        session, Redemption.coupon_id == coupon.id, currency=coupon.budget_currency
    )


def delete_coupon(*, tenant: TenantRef, code: str) -> None:
    """Soft delete: the coupon stays readable by managers and its code stays taken."""
    with unit_of_work():
        coupon = lookup.get_coupon(tenant=tenant, code=code)
        coupon.deleted = True
        _announce(coupon, "coupon.deleted")


def _announce(coupon: Coupon, event_type: str) -> None:
    """The coupon's webhook event, in the transaction of its change."""
    payload = {"code": coupon.code, "name": coupon.name, "origin": coupon.origin}
    webhooks.emit(db.session(), coupon.tenant_id, event_type, payload)


def _in_status(status: str, now: datetime):
    """SQL for `rules.status(coupon, now) == status`."""
    expired = and_(Coupon.valid_until.is_not(None), Coupon.valid_until < now)
    # IS NOT NULL first: a NULL comparison would make NOT(...) NULL, not true.
    not_yet = and_(Coupon.valid_from.is_not(None), Coupon.valid_from > now)
    inactive = or_(Coupon.active.is_(False), not_yet)
    used = and_(
        Coupon.max_redemptions != rules.UNLIMITED,
        Coupon.redemption_count >= Coupon.max_redemptions,
    )
    return {
        "EXPIRED": expired,
        "INACTIVE": and_(not_(expired), inactive),
        "USED": and_(not_(expired), not_(inactive), used),
        "VALID": and_(not_(expired), not_(inactive), not_(used)),
    }[status]


def coupon_status(coupon: Coupon, now: datetime) -> str:
    """INACTIVE / VALID / EXPIRED / USED."""
    return rules.status(coupon, now)
