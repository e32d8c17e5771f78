"""Validate, redeem and cancel: the one atomic redemption path of every dialect.

Redeeming locks the coupon row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
transactions start with BEGIN IMMEDIATE), re-evaluates the rules against the
locked state, and commits the counter, the redemption and its outbox event
together, so total and per-customer limits hold under any concurrency.

An order id already redeemed answers that redemption again, but only to a
caller who may use the coupon and who acts for the same customer: anyone else
gets the refusal they would get without it, or a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from app.auth import Caller
from app.database import utcnow
from app.errors import Conflict, NotFound, RuleViolated, Unauthorized
from app.extensions import db
from app.models import Coupon, Redemption
from app.services import coupons, outbox, rules
from app.services.rules import Money
from app.services.tenants import TenantRef
from app.services.uow import end_read, unit_of_work

REDEMPTION_TOPIC = "hybris.coupon.redemption"


class OrderAlreadyRedeemed(Conflict):
    type = "coupon_order_already_redeemed"
    message = "This order id already redeemed the coupon for another customer"


@dataclass(frozen=True)
class Order:
    """What a dialect knows about the order a coupon is used for."""

    total: Money | None = None
    discount: Money | None = None
    products: frozenset[str] | None = None
    order_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """A redemption, as values read inside its transaction (no reload after commit)."""

    redemption_id: str
    coupon_code: str
    discount: Decimal | None
    free_products: tuple[str, ...]
    # False: an order id already redeemed, answered again.
    created: bool

    @classmethod
    def of(cls, redemption: Redemption, coupon: Coupon, *, created: bool) -> Outcome:
        return cls(
            redemption_id=redemption.id,
            coupon_code=coupon.code,
            discount=redemption.discount_amount,
            free_products=tuple(coupon.free_products or ()),
            created=created,
        )


def _customer_redemptions(coupon: Coupon, customer_number: str | None) -> int:
    # Only a per-customer limit reads the count: spare the query otherwise.
    if customer_number is None or coupon.max_redemptions_per_customer == rules.UNLIMITED:
        return 0
    return db.session.scalar(
        select(func.count())
        .select_from(Redemption)
        .where(Redemption.coupon_id == coupon.id, Redemption.customer_number == customer_number)
    )


def _context(coupon: Coupon, caller: Caller, customer_hint: str | None, order: Order):
    customer = caller.acting_customer(customer_hint)
    return rules.Context(
        identified=caller.identified,
        customer_number=customer,
        customer_redemptions=_customer_redemptions(coupon, customer),
        order_total=order.total,
        discount=order.discount,
        products=order.products,
    )


def check(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    order: Order,
    customer_hint: str | None = None,
    now: datetime | None = None,
) -> tuple[Coupon, list[rules.Violation]]:
    """Evaluate without writing; returns the coupon and every violation."""
    coupon = coupons.find(tenant=tenant, code=code)
    if coupon is None:
        end_read()
        raise NotFound("Coupon not found")
    context = _context(coupon, caller, customer_hint, order)
    violations = rules.evaluate(coupon, context, now or utcnow())
    end_read(coupon)
    return coupon, violations


def validate(**kwargs) -> Coupon:
    """Check and raise the first violation, if any."""
    coupon, violations = check(**kwargs)
    if violations:
        raise RuleViolated(violations[0])
    return coupon


def redeem(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    order: Order,
    customer_hint: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Record one redemption atomically; an order id already redeemed is a replay."""
    with unit_of_work():
        coupon = coupons.find(tenant=tenant, code=code, for_update=True)
        if coupon is None:
            raise NotFound("Coupon not found")
        context = _context(coupon, caller, customer_hint, order)
        if order.order_id is not None:
            existing = db.session.scalar(
                select(Redemption).where(
                    Redemption.coupon_id == coupon.id, Redemption.order_id == order.order_id
                )
            )
            if existing is not None:
                _check_replay(coupon, context, existing)
                return Outcome.of(existing, coupon, created=False)
        now = now or utcnow()
        violations = rules.evaluate(coupon, context, now)
        if violations:
            raise RuleViolated(violations[0])

        discount = order.discount
        if discount is None and order.total is not None:
            discount = Money(rules.allowed_discount(coupon, order.total), order.total.currency)
        redemption = Redemption(
            tenant_id=tenant.id,
            coupon_id=coupon.id,
            customer_number=context.customer_number,
            order_total_amount=order.total.amount if order.total else None,
            order_total_currency=order.total.currency if order.total else None,
            discount_amount=discount.amount if discount else None,
            discount_currency=discount.currency if discount else None,
            order_id=order.order_id,
            redeemed_at=now,
        )
        # SQL-side increment: correct even if a backend ignored the row lock.
        coupon.redemption_count = Coupon.redemption_count + 1
        db.session.add(redemption)
        db.session.flush()
        outbox.enqueue(
            tenant_id=tenant.id,
            destination=outbox.EVENTS,
            topic=REDEMPTION_TOPIC,
            payload=event_payload(tenant, coupon, redemption),
        )
        return Outcome.of(redemption, coupon, created=True)


def _check_replay(coupon: Coupon, context: rules.Context, existing: Redemption) -> None:
    """A replay is for a caller who may use the coupon, acting for the same customer."""
    if coupon.deleted:
        raise NotFound("Coupon not found")
    if not rules.may_use(coupon, context):
        raise RuleViolated(rules.Violation(rules.FORBIDDEN))
    if existing.customer_number != context.customer_number:
        raise OrderAlreadyRedeemed()


def _money(amount, currency) -> dict | None:
    return None if amount is None else {"amount": str(amount), "currency": currency}


def event_payload(tenant: TenantRef, coupon: Coupon, redemption: Redemption) -> dict:
    """The `hybris.coupon.redemption` event's data (sent in a Standard Webhooks envelope)."""
    return {
        "tenant": tenant.slug,
        "couponCode": coupon.code,
        "redemptionId": redemption.id,
        "customerNumber": redemption.customer_number,
        "orderTotal": _money(redemption.order_total_amount, redemption.order_total_currency),
        "discount": _money(redemption.discount_amount, redemption.discount_currency),
        "orderId": redemption.order_id,
        "redeemedAt": redemption.redeemed_at.isoformat(),
    }


def list_redemptions(*, tenant: TenantRef, code: str, page: int, page_size: int):
    """One page of a coupon's redemptions in creation order, and the total."""
    coupon = coupons.get_coupon(tenant=tenant, code=code)
    condition = Redemption.coupon_id == coupon.id
    total = db.session.scalar(select(func.count()).select_from(Redemption).where(condition))
    items = db.session.scalars(
        select(Redemption)
        .where(condition)
        .order_by(Redemption.seq)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(items), total or 0


def get_redemption(
    *, tenant: TenantRef, code: str, redemption_id: str, caller: Caller, customer_hint: str | None
) -> Redemption:
    """One redemption: managers see any, others only their own (or on behalf)."""
    if caller.is_anonymous:
        raise Unauthorized("Sign in to read a redemption")
    _, redemption = _find_redemption(tenant, code, redemption_id)
    if caller.manages:
        return redemption
    customer = caller.acting_customer(customer_hint)
    if customer is None or redemption.customer_number != customer:
        raise NotFound("Redemption not found")
    return redemption


def cancel(*, tenant: TenantRef, code: str, redemption_id: str) -> None:
    """Delete a redemption and give its use back, under the same row lock."""
    with unit_of_work():
        coupon, redemption = _find_redemption(tenant, code, redemption_id, for_update=True)
        db.session.delete(redemption)
        coupon.redemption_count = Coupon.redemption_count - 1


def _find_redemption(
    tenant: TenantRef, code: str, redemption_id: str, *, for_update: bool = False
) -> tuple[Coupon, Redemption]:
    """The coupon (locked, if asked) and one of its redemptions, or NotFound."""
    coupon = coupons.find(tenant=tenant, code=code, for_update=for_update)
    redemption = None
    if coupon is not None:
        redemption = db.session.scalar(
            select(Redemption).where(
                Redemption.coupon_id == coupon.id, Redemption.id == redemption_id
            )
        )
    if redemption is None:
        raise NotFound("Redemption not found")
    return coupon, redemption
