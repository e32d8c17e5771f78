"""What a use of a coupon writes, built before the write: the redemption row and its events."""

from __future__ import annotations

import uuid
from datetime import datetime

from app.engine import outbox, rules, webhooks
from app.engine.rules import Money
from app.engine.tenants import TenantRef
from app.engine.usage.state import CouponState, Order

REDEMPTION_TOPIC = "hybris.coupon.redemption"


def redemption_row(
    *,
    tenant_id: int,
    coupon_id: int,
    customer: str | None,
    total: Money | None,
    discount: Money | None,
    order_id: str | None,
    owner: str,
    now: datetime,
    metadata: dict | None = None,
) -> dict:
    """A new redemption row (its order id `owner`'s: see `Caller.order_owner`)."""
    return {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant_id,
        "coupon_id": coupon_id,
        "customer_number": customer,
        "order_total_amount": total.amount if total else None,
        "order_total_currency": total.currency if total else None,
        "discount_amount": discount.amount if discount else None,
        "discount_currency": discount.currency if discount else None,
        "order_id": order_id,
        "order_owner": owner,
        "redeemed_at": now,
        "metadata": metadata,
    }


def order_row(
    tenant: TenantRef, state: CouponState, customer, order: Order, now: datetime, owner: str
) -> dict:
    """The redemption row for this order; the discount is the order's, else the most the
    coupon allows on its total."""
    discount = order.discount
    if discount is None and order.total is not None:
        allowed = rules.allowed_discount(state, order.total, order.lines, order.shipping_total)
        discount = Money(allowed, order.total.currency)
    return redemption_row(
        tenant_id=tenant.id,
        coupon_id=state.id,
        customer=customer,
        total=order.total,
        discount=discount,
        order_id=order.order_id,
        owner=owner,
        now=now,
        metadata=order.metadata,
    )


def _money(amount, currency) -> dict | None:
    return None if amount is None else {"amount": str(amount), "currency": currency}


def event_payload(tenant_slug: str, coupon_code: str, redemption: dict) -> dict:
    """The `hybris.coupon.redemption` event's data (sent in a Standard Webhooks envelope)."""
    return {
        "tenant": tenant_slug,
        "couponCode": coupon_code,
        "redemptionId": redemption["id"],
        "customerNumber": redemption["customer_number"],
        "orderTotal": _money(redemption["order_total_amount"], redemption["order_total_currency"]),
        "discount": _money(redemption["discount_amount"], redemption["discount_currency"]),
        "orderId": redemption["order_id"],
        "redeemedAt": redemption["redeemed_at"].isoformat(),
        "metadata": redemption["metadata"],
    }


def hook(tenant: TenantRef, state: CouponState, row: dict) -> dict:
    """The `redemption.created` webhook parameters (one message per endpoint that wants
    it, inserted by the redemption's own statement)."""
    payload = event_payload(tenant.slug, state.code, row)
    return webhooks.hook_params(tenant.id, "redemption.created", payload, row["redeemed_at"])


def event(tenant: TenantRef, state: CouponState, row: dict) -> dict | None:
    """The outbox row of a redemption's event, or None when events go nowhere."""
    if not outbox.events_wanted():
        return None
    return outbox.message_values(
        tenant_id=tenant.id,
        destination=outbox.EVENTS,
        topic=REDEMPTION_TOPIC,
        payload=event_payload(tenant.slug, state.code, row),
    )
