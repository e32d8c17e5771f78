"""Returns: a redemption rolled back, in full (its use comes back) or in part (money
comes back, the use does not), one at a time or every redemption of an order.

The row stays, with its status, when and why; only what counts changes: a full
rollback gives the coupon's counter and the customer's count their use back, and
what was rolled back no longer counts in the discounts given. Each rollback runs
under its coupons' row locks (taken in id order, as carts do) and its redemption's,
so a use is given back once however many rollbacks race.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from app.auth import Caller
from app.database import utcnow
from app.engine import outbox, webhooks
from app.engine.rules import Money
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.engine.usage import budgets
from app.engine.usage.state import LOCK, AlreadyRolledBack, RedemptionNotFound
from app.errors import InsufficientScope, Unauthorized, ValidationFailed
from app.extensions import db
from app.models import Redemption, RedemptionStatus

ROLLED_BACK_TOPIC = "redemption.rolled_back"


@dataclass(frozen=True)
class Rollback:
    """What the caller asks: why, and how much (None: all of it, the use with it)."""

    reason: str
    amount: Money | None = None


def rollback(
    *,
    tenant: TenantRef,
    redemption_id: str,
    caller: Caller,
    customer_hint: str | None,
    request: Rollback,
) -> Redemption:
    """Roll one redemption back (see the module's rules)."""
    with unit_of_work() as session:
        _may_roll_back(caller)
        [redemption] = _locked(session, _redemptions(tenant, Redemption.id == redemption_id))
        _for_whom(caller, customer_hint, [redemption])
        _roll_back(session, tenant, redemption, request)
    return redemption


def rollback_order(
    *, tenant: TenantRef, order_id: str, caller: Caller, customer_hint: str | None, reason: str
) -> list[Redemption]:
    """Roll back, in full and in one transaction, every redemption of the order that is
    not rolled back yet (all the codes of a cart, its automatic promotions).

    Order ids are their owner's (see `Caller.order_owner`): a client's are the shop's; a
    manager's too, or, naming a customer, that customer's own (made with its own token).
    Never several owners' at once: a customer could otherwise pick the order id of a
    shop's refund and get its use back with it."""
    with unit_of_work() as session:
        _may_roll_back(caller)
        owner = customer_hint if caller.manages and customer_hint else caller.order_owner
        where = [Redemption.order_id == order_id, Redemption.order_owner == owner]
        redemptions = _locked(session, _redemptions(tenant, *where), "this order id")
        _for_whom(caller, customer_hint, redemptions)
        open_ = [r for r in redemptions if r.status != RedemptionStatus.ROLLED_BACK]
        if not open_:
            raise AlreadyRolledBack("Every redemption of this order was rolled back already")
        for redemption in open_:
            _roll_back(session, tenant, redemption, Rollback(reason))
    return redemptions


def _redemptions(tenant: TenantRef, *where) -> list[Redemption]:
    return list(
        db.session.scalars(
            select(Redemption).where(Redemption.tenant_id == tenant.id, *where)
        ).all()
    )


def _locked(session, found: list[Redemption], what: str = "this id") -> list[Redemption]:
    """The coupons' rows locked in id order (as carts lock them: no deadlock between a
    cart and a return), then the redemptions read again under their own locks (those
    removed meanwhile are gone: none left is a 404, as if never found)."""
    for coupon_id in sorted({r.coupon_id for r in found}):
        session.execute(LOCK, {"coupon_id": coupon_id})
    locked = list(
        session.scalars(
            select(Redemption)
            .where(Redemption.seq.in_([r.seq for r in found]))
            .order_by(Redemption.seq)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if not locked:
        raise RedemptionNotFound(f"No redemption has {what}")
    return locked


def _may_roll_back(caller: Caller) -> None:
    """A return is the shop's to make: a manager, or a client that redeems. A customer's
    own token may not: it would give itself its use back."""
    if caller.manages:
        return
    if caller.is_anonymous:
        raise Unauthorized("Sign in to roll back a redemption")
    if caller.kind != "client" or not caller.identified:
        raise InsufficientScope(
            "Rolling back takes the coupon_manage scope, or a client's redeem scope for "
            "its own customers' redemptions"
        )


def _for_whom(caller: Caller, customer_hint: str | None, redemptions) -> None:
    """Managers roll back any; a redeeming client only the redemptions of the customer it
    acts for (on behalf: the named one; else none, as it redeemed them)."""
    if caller.manages:
        return
    customer = caller.acting_customer(customer_hint)
    if any(r.customer_number != customer for r in redemptions):
        raise RedemptionNotFound()


def _roll_back(session, tenant: TenantRef, redemption: Redemption, request: Rollback) -> None:
    if redemption.status == RedemptionStatus.ROLLED_BACK:
        raise AlreadyRolledBack()
    now = utcnow()
    left = redemption.kept_discount or Decimal(0)
    if request.amount is None:
        redemption.status = RedemptionStatus.ROLLED_BACK
        redemption.rolled_back_amount = (redemption.rolled_back_amount or 0) + left
        budgets.give_back(
            session,
            redemption.coupon_id,
            uses=1,
            discount=left,
            currency=redemption.discount_currency,
        )
    else:
        _check_amount(redemption, request.amount, left)
        budgets.give_back(
            session,
            redemption.coupon_id,
            uses=0,
            discount=request.amount.amount,
            currency=request.amount.currency,
        )
        redemption.status = RedemptionStatus.PARTIALLY_ROLLED_BACK
        redemption.rolled_back_amount = (redemption.rolled_back_amount or 0) + request.amount.amount
    redemption.rolled_back_at = now
    redemption.rollback_reason = request.reason
    payload = event_payload(tenant, redemption, request)
    if outbox.events_wanted():
        outbox.enqueue(
            tenant_id=tenant.id, destination=outbox.EVENTS, topic=ROLLED_BACK_TOPIC, payload=payload
        )
    webhooks.emit(session, tenant.id, ROLLED_BACK_TOPIC, payload)


def _check_amount(redemption: Redemption, amount: Money, left: Decimal) -> None:
    currency = redemption.discount_currency
    if currency and amount.currency != currency:
        raise ValidationFailed(
            details=[_invalid(f"Must be in the discount's currency, {currency}")]
        )
    if amount.amount <= 0 or amount.amount > left:
        raise ValidationFailed(
            details=[_invalid(f"More than 0 and at most what is left of the discount ({left})")]
        )


def _invalid(message: str) -> dict:
    return {"field": "amount", "type": "invalid", "message": message}


def event_payload(tenant: TenantRef, redemption: Redemption, request: Rollback) -> dict:
    """The `redemption.rolled_back` event's data."""
    return {
        "tenant": tenant.slug,
        "couponCode": redemption.coupon.code,
        "redemptionId": redemption.id,
        "orderId": redemption.order_id,
        "customerNumber": redemption.customer_number,
        "status": redemption.status,
        "amount": None
        if request.amount is None
        else {"amount": str(request.amount.amount), "currency": request.amount.currency},
        "reason": request.reason,
    }
