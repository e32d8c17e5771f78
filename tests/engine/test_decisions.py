"""Redemption, hold and cart decisions, through the engine alone (no HTTP)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.database import utcnow
from app.engine import rules
from app.engine.usage import carts, holds, ledger, redemption, rows
from app.engine.usage.carts import Cart, CartNotApplicable
from app.engine.usage.redemption import Step, decide
from app.engine.usage.state import OrderAlreadyHeld, context, read_state
from app.errors import RuleViolated
from app.models import Hold, HoldStatus, Redemption
from tests.engine.conftest import ON_BEHALF, SHOP, customer, order


def _count(db, model) -> int:
    count = db.session.scalar(select(func.count()).select_from(model))
    db.session.rollback()
    return count


def test_the_ladder_replays_an_order_then_confirms_its_hold_else_evaluates(shop, coupon):
    code = coupon()
    now = utcnow()
    fresh = read_state(shop, code, order_id="O-1", now=now)
    ctx = context(fresh, SHOP, None, order(order_id="O-1"))
    assert decide(fresh, ctx, order(order_id="O-1"), now) is Step.PROCEED

    redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-1"))
    replayed = read_state(shop, code, order_id="O-1", now=now)
    assert decide(replayed, ctx, order(order_id="O-1"), now) is Step.REPLAY

    holds.hold(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-2"))
    held = read_state(shop, code, order_id="O-2", now=utcnow())
    assert decide(held, ctx, order(order_id="O-2"), utcnow()) is Step.ORDER_HOLD

    minimum = coupon("MIN", min_order_amount=Decimal(50), min_order_currency="USD")
    small = read_state(shop, minimum, now=now)
    with pytest.raises(RuleViolated) as refused:
        decide(small, context(small, SHOP, None, order(total=5)), order(total=5), now)
    assert refused.value.violation.type == rules.TOTAL_TOO_LOW


def test_an_order_id_redeems_once_and_answers_again(shop, coupon, db):
    code = coupon()
    first = redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-1"))
    again = redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-1"))
    assert first.created and not again.created
    assert again.redemption_id == first.redemption_id
    assert _count(db, Redemption) == 1


def test_a_limit_reached_refuses_and_a_cancel_gives_the_use_back(shop, coupon):
    code = coupon(max_redemptions=1)
    done = redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order())
    with pytest.raises(RuleViolated) as refused:
        redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order())
    assert refused.value.violation.type == rules.EXCEEDED
    redemption.cancel(tenant=shop, code=code, redemption_id=done.redemption_id)
    assert redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order()).created


def test_a_hold_takes_the_last_use_until_released(shop, coupon):
    code = coupon(max_redemptions=1)
    made = holds.hold(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-1"))
    with pytest.raises(RuleViolated):
        redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-2"))
    holds.release(tenant=shop, code=code, hold_id=made.id, caller=SHOP)
    assert redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order()).created


def test_redeeming_a_held_order_confirms_its_hold(shop, coupon, db):
    code = coupon(max_redemptions=1)
    made = holds.hold(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-1"))
    outcome = redemption.redeem(tenant=shop, code=code, caller=SHOP, order=order(order_id="O-1"))
    assert outcome.created
    found = db.session.scalars(select(Hold).where(Hold.id == made.id)).one()
    assert (found.status, found.redemption_id) == (HoldStatus.CONFIRMED, outcome.redemption_id)


def test_another_customers_hold_on_an_order_is_a_conflict(shop, coupon):
    code = coupon(max_redemptions_per_customer=1)
    holds.hold(
        tenant=shop, code=code, caller=ON_BEHALF, order=order(order_id="O-1"), customer_hint="C1"
    )
    with pytest.raises(OrderAlreadyHeld):
        redemption.redeem(
            tenant=shop,
            code=code,
            caller=ON_BEHALF,
            order=order(order_id="O-1"),
            customer_hint="C2",
        )


def test_own_hold_is_not_counted_against_its_own_redemption(shop, coupon):
    code = coupon(max_redemptions_per_customer=1)
    holds.hold(tenant=shop, code=code, caller=customer("C7"), order=order(order_id="O-1"))
    state = read_state(shop, code, customer="C7", order_id="O-1", now=utcnow())
    assert (state.live_holds, state.customer_uses) == (1, 1)
    freed = state.without_own_hold()
    assert (freed.live_holds, freed.customer_uses) == (0, 0)


def test_the_guard_refuses_a_write_on_a_coupon_changed_since_it_was_read(shop, coupon, db):
    from app.engine.catalog import coupons

    code = coupon()
    now = utcnow()
    state = read_state(shop, code, now=now)
    coupons.update_coupon(tenant=shop, code=code, changes={"name": "renamed"})
    row = rows.order_row(shop, state, None, order(), now, "")
    with db.session.begin():
        event, hook = rows.event(shop, state, row), rows.hook(shop, state, row)
        written = ledger.write(db.session(), state, row, event, hook)
    assert written is ledger.Written.REFUSED
    assert _count(db, Redemption) == 0


def test_a_cart_redeems_all_its_codes_or_none(shop, coupon, db):
    coupon("A")
    coupon("B", max_redemptions=1)
    redemption.redeem(tenant=shop, code="B", caller=SHOP, order=order())
    cart = Cart(order_total=order().total, products=frozenset(), codes=("A", "B"))
    with pytest.raises(CartNotApplicable) as refused:
        carts.redeem(tenant=shop, caller=SHOP, cart=cart)
    assert [d["field"] for d in refused.value.details] == ["codes.1"]
    assert _count(db, Redemption) == 1  # only B's earlier one
    both = Cart(order_total=order().total, products=frozenset(), codes=("A",))
    assert [
        c.redemption_id is not None for c in carts.redeem(tenant=shop, caller=SHOP, cart=both).codes
    ] == [True]
