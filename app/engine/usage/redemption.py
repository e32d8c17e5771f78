"""Validate, redeem and cancel: the one atomic redemption path of every dialect.

Checking reads the coupon (only the columns the rules need) and, when it has a
per-customer limit, the customer's count, in one statement outside any
transaction. Redeeming does that same read and evaluates the rules before it
takes a lock, then writes with one guarded statement: the coupon's counter goes
up only if the coupon is unchanged since the read and under its limits, and the
redemption row and its outbox event are inserted by the same statement (a
PostgreSQL CTE; SQLite, which serializes writers, runs the same statements one
by one). The row lock is held for that statement and the COMMIT. A coupon with
a per-customer limit is locked first, so that the count the guard reads is taken
after the lock, never from an older snapshot. When the guard refuses (a race for
the last use, or the coupon changed meanwhile), the coupon is re-read under the
lock and the rules decide again.

Live holds (see `holds`) count like redemptions. While a coupon may have any
(`held_until` ahead) the guard refuses, so its redemptions take the locked path,
which counts them; a redemption for an order id that holds the coupon confirms
that hold instead.

An order id already redeemed answers that redemption again, but only to a
caller who may use the coupon and who acts for the same customer: anyone else
gets the refusal they would get without it, or a conflict.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Row, and_, bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.auth import Caller
from app.database import read, typed_params, utcnow
from app.engine import observe, outbox, rules
from app.engine.catalog import lookup
from app.engine.rules import Money
from app.engine.tenants import TenantRef
from app.engine.uow import unit_of_work
from app.errors import Conflict, CouponNotFound, NotFound, RuleViolated, Unauthorized
from app.extensions import db
from app.models import Coupon, OutboxMessage, Redemption, Reservation, ReservationStatus

REDEMPTION_TOPIC = "hybris.coupon.redemption"
_COUPONS, _REDEMPTIONS, _OUTBOX = Coupon.__table__, Redemption.__table__, OutboxMessage.__table__
_C, _R, _H = _COUPONS.c, _REDEMPTIONS.c, Reservation.__table__.c
# Columns a redemption statement inserts (coupon_id comes from the guarded bump).
_REDEMPTION_FIELDS = (
    "id",
    "tenant_id",
    "customer_number",
    "order_total_amount",
    "order_total_currency",
    "discount_amount",
    "discount_currency",
    "order_id",
    "order_owner",
    "redeemed_at",
)
_EVENT_FIELDS = outbox.MESSAGE_FIELDS
# What the rules read of a coupon, and what a redemption needs besides.
_RULE_COLUMNS = (
    _C.id,
    _C.code,
    _C.deleted,
    _C.active,
    _C.allow_anonymous,
    _C.valid_for,
    _C.valid_from,
    _C.valid_until,
    _C.max_redemptions,
    _C.max_redemptions_per_customer,
    _C.redemption_count,
    _C.discount_type,
    _C.discount_percentage,
    _C.discount_amount,
    _C.currency,
    _C.min_order_amount,
    _C.required_product,
    _C.free_products,
    _C.exclusive,
    _C.stacking_priority,
    _C.held_until,
    # The definition's version: a redemption's guard requires it unchanged since the read.
    _C.updated_at,
)


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
    """A redemption, as values known inside its transaction (no reload after commit)."""

    redemption_id: str
    coupon_code: str
    discount: Decimal | None
    free_products: tuple[str, ...]
    # False: an order id already redeemed, answered again.
    created: bool


# --- reading --------------------------------------------------------------------------


def _now_param():
    return bindparam("now", type_=_C.held_until.type)


def _live_holds(column, *conditions):
    """`column` of the live holds of the coupon row being read: a correlated query, run
    only while the coupon has some (the CASE around it tests `held_until` first)."""
    return select(column).where(
        _H.coupon_id == _C.id,
        _H.status == ReservationStatus.HELD,
        _H.expires_at > _now_param(),
        *conditions,
    )


def _while_held(expression, otherwise):
    return case((_C.held_until > _now_param(), expression), else_=otherwise)


@functools.cache
def _state_query(with_customer: bool, with_order: bool):
    """The coupon's rule columns, live holds, the customer's count (redemptions and holds)
    and any redemption or live hold of this order id.

    Built once per shape; parameters tenant_id, code_key, customer, order_id,
    order_owner (whose order ids: see `Caller.order_owner`), now.
    """
    held = _while_held(_live_holds(func.count()).scalar_subquery(), 0)
    if with_customer:
        redeemed = (
            select(func.count())
            .where(_R.coupon_id == _C.id, _R.customer_number == bindparam("customer"))
            .scalar_subquery()
        )
        customer_held = _live_holds(func.count(), _H.customer_number == bindparam("customer"))
        count = case(
            (
                _C.max_redemptions_per_customer != rules.UNLIMITED,
                redeemed + _while_held(customer_held.scalar_subquery(), 0),
            ),
            else_=0,
        )
    else:
        count = literal(0)
    query = select(*_RULE_COLUMNS, held.label("held"), count.label("customer_redemptions")).where(
        _C.tenant_id == bindparam("tenant_id"), _C.code_key == bindparam("code_key")
    )
    if with_order:
        replay = _REDEMPTIONS.alias("replay")
        order_hold = _live_holds(
            _H.id,
            _H.order_id == bindparam("order_id"),
            _H.order_owner == bindparam("order_owner"),
        ).limit(1)
        query = query.add_columns(
            replay.c.id.label("replay_id"),
            replay.c.customer_number.label("replay_customer"),
            replay.c.discount_amount.label("replay_discount"),
            _while_held(order_hold.scalar_subquery(), None).label("hold_id"),
        ).select_from(
            _COUPONS.outerjoin(
                replay,
                and_(
                    replay.c.coupon_id == _C.id,
                    replay.c.order_id == bindparam("order_id"),
                    replay.c.order_owner == bindparam("order_owner"),
                ),
            )
        )
    return query


def _state(executor, tenant_id: int, code: str, customer, order_id, owner: str, now):
    """Run the state query through `executor(statement, parameters)`."""
    statement = _state_query(customer is not None, order_id is not None)
    params = {
        "tenant_id": tenant_id,
        "code_key": Coupon.key_for(code),
        "customer": customer,
        "order_id": order_id,
        "order_owner": owner,
        "now": now,
    }
    return executor(statement, params)


def read_state(
    tenant: TenantRef,
    code: str,
    customer: str | None,
    order_id: str | None,
    now: datetime,
    owner: str = "",
) -> Row:
    """The coupon's state for the rules (a campaign code becomes a coupon here), or NotFound.

    `owner` says whose `order_id` it is (`Caller.order_owner`)."""

    def run():
        return _state(
            lambda q, p: read(db.session, q, p), tenant.id, code, customer, order_id, owner, now
        )

    rows = run()
    if not rows and lookup.materialize(tenant.id, code):  # a campaign code's first use
        rows = run()
    if not rows:
        raise CouponNotFound()
    return rows[0]


def locked_state(
    session: Session, tenant: TenantRef, coupon_id: int, customer, order_id, now, owner: str = ""
):
    """Lock the coupon row, then read its state: statements after the lock see every
    redemption and hold committed before it."""
    connection = session.connection()
    locked = connection.execute(_LOCKED_STATE, {"coupon_id": coupon_id}).one()
    return _state(
        lambda q, p: connection.execute(q, p).one(),
        tenant.id,
        locked.code,
        customer,
        order_id,
        owner,
        now,
    )


def holds_live(state, now: datetime) -> bool:
    """The coupon may have live holds: its redemptions must count them, under its lock."""
    return state.held_until is not None and state.held_until > now


def context(state, caller: Caller, customer: str | None, order: Order) -> rules.Context:
    """What the rules need to know of this caller and order, with the state's counts."""
    return rules.Context(
        identified=caller.identified,
        customer_number=customer,
        customer_redemptions=state.customer_redemptions,
        held=state.held,
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
) -> tuple[rules.CouponLike, list[rules.Violation]]:
    """Evaluate without writing (one statement); returns the coupon and every violation."""
    customer = caller.acting_customer(customer_hint)
    now = now or utcnow()
    state = read_state(tenant, code, customer, None, now)
    return state, rules.evaluate(state, context(state, caller, customer, order), now)


def validate(**kwargs) -> rules.CouponLike:
    """Check and raise the first violation, if any."""
    coupon, violations = check(**kwargs)
    if violations:
        raise RuleViolated(violations[0])
    return coupon


# --- redeeming ------------------------------------------------------------------------


def redeem(**kwargs) -> Outcome:
    """Record one redemption atomically; an order id already redeemed is a replay."""
    try:
        outcome = _redeem(**kwargs)
    except RuleViolated as refused:
        observe.redemption(refused.violation.type)
        raise
    except NotFound:
        observe.redemption(rules.NOT_FOUND)
        raise
    observe.redemption("redeemed" if outcome.created else "replayed")
    return outcome


def _redeem(
    *,
    tenant: TenantRef,
    code: str,
    caller: Caller,
    order: Order,
    customer_hint: str | None = None,
    now: datetime | None = None,
) -> Outcome:
    customer = caller.acting_customer(customer_hint)
    now = now or utcnow()
    state = read_state(tenant, code, customer, order.order_id, now, caller.order_owner)
    ctx = context(state, caller, customer, order)
    if order.order_id is not None and state.replay_id is not None:
        _check_replay(state, ctx, state.replay_customer)
        return _replayed(state, state.replay_id, state.replay_discount)
    if order.order_id is not None and state.hold_id is not None:
        from app.engine.usage import holds

        return holds.confirm_for_order(tenant, state, ctx, state.hold_id, now)
    violations = rules.evaluate(state, ctx, now)
    if violations:
        raise RuleViolated(violations[0])

    values = redemption_values(tenant, state, customer, order, now, caller.order_owner)
    with unit_of_work() as session:
        if holds_live(state, now) or (
            write(session, state, values, event(tenant, state, values)) != "redeemed"
        ):
            return _decide_under_lock(session, tenant, state, caller, customer, order, values)
    return created(state, values)


def event(tenant, state, values: dict) -> dict:
    """The outbox row of a redemption's event."""
    return outbox.message_values(
        tenant_id=tenant.id,
        destination=outbox.EVENTS,
        topic=REDEMPTION_TOPIC,
        payload=event_payload(tenant.slug, state.code, values),
    )


def created(state, values: dict) -> Outcome:
    return Outcome(
        redemption_id=values["id"],
        coupon_code=state.code,
        discount=values["discount_amount"],
        free_products=tuple(state.free_products or ()),
        created=True,
    )


def redemption_values(tenant, state, customer, order: Order, now: datetime, owner: str) -> dict:
    """The redemption row for this order (its id `owner`'s); the discount is the order's,
    else the most allowed."""
    discount = order.discount
    if discount is None and order.total is not None:
        discount = Money(rules.allowed_discount(state, order.total), order.total.currency)
    return {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant.id,
        "coupon_id": state.id,
        "customer_number": customer,
        "order_total_amount": order.total.amount if order.total else None,
        "order_total_currency": order.total.currency if order.total else None,
        "discount_amount": discount.amount if discount else None,
        "discount_currency": discount.currency if discount else None,
        "order_id": order.order_id,
        "order_owner": owner,
        "redeemed_at": now,
    }


def _per_customer(state, customer: str | None) -> bool:
    return customer is not None and state.max_redemptions_per_customer != rules.UNLIMITED


@functools.cache
def _bump(per_customer: bool, locked: bool):
    """The counter increment. Optimistic: guarded (unchanged coupon, no live holds, under
    both limits) or no row. Locked: the rules already decided on a state read under the
    coupon's lock (holds counted), so only the row is named.

    Parameters coupon_id and, optimistic, seen (the updated_at read), now and, per
    customer, customer.
    """
    guard = [_C.id == bindparam("coupon_id")]
    if not locked:
        guard += [
            _C.updated_at == bindparam("seen", type_=_C.updated_at.type),
            # Live holds are counted only under the lock.
            or_(_C.held_until.is_(None), _C.held_until <= _now_param()),
            or_(_C.max_redemptions == rules.UNLIMITED, _C.redemption_count < _C.max_redemptions),
        ]
    if per_customer and not locked:
        customer_count = (
            select(func.count())
            .where(
                _R.coupon_id == bindparam("coupon_id"),
                _R.customer_number == bindparam("customer"),
            )
            .scalar_subquery()
        )
        guard.append(customer_count < _C.max_redemptions_per_customer)
    return (
        update(_COUPONS)
        .where(*guard)
        # A redemption is not a change of the definition: updated_at stays.
        .values(redemption_count=_C.redemption_count + 1, updated_at=_C.updated_at)
        .returning(_C.id)
    )


@functools.cache
def _redeem_statement(per_customer: bool, locked: bool):
    """PostgreSQL: the bump, the redemption and its event in one statement (built once).

    Parameters: the bump's, r_<column> for the redemption, e_<column> for the event.
    Returns how many rows were bumped and added (0 or 1 each).
    """
    bumped = _bump(per_customer, locked).cte("bumped")
    added = (
        postgresql.insert(_REDEMPTIONS)
        .from_select(
            [*_REDEMPTION_FIELDS, "coupon_id"],
            select(*typed_params(_REDEMPTIONS, _REDEMPTION_FIELDS, "r_"), bumped.c.id),
        )
        .on_conflict_do_nothing()
        .returning(_R.id)
        .cte("added")
    )
    queued = (
        insert(_OUTBOX)
        .from_select(
            list(_EVENT_FIELDS),
            select(*typed_params(_OUTBOX, _EVENT_FIELDS, "e_")).select_from(added),
        )
        .cte("queued")
    )
    return select(
        select(func.count()).select_from(bumped).scalar_subquery(),
        select(func.count()).select_from(added).scalar_subquery(),
    ).add_cte(queued)


_LOCK = select(_C.id).where(_C.id == bindparam("coupon_id")).with_for_update()
_LOCKED_STATE = select(*_RULE_COLUMNS).where(_C.id == bindparam("coupon_id")).with_for_update()
_GIVE_BACK = (
    update(_COUPONS)
    .where(_C.id == bindparam("coupon_id"))
    .values(redemption_count=_C.redemption_count - 1, updated_at=_C.updated_at)
)
_ADD_IN_STEPS = sqlite.insert(_REDEMPTIONS).on_conflict_do_nothing().returning(_R.id)


def write(session: Session, state, values: dict, event: dict, *, locked: bool = False) -> str:
    """Bump the counter and insert the redemption and its event.

    Optimistic (not `locked`): guarded, see `_bump`. Returns "redeemed", "refused"
    (the guard found the coupon changed, held or at a limit: nothing written) or
    "order_taken" (a concurrent request redeemed this order id first: the counter
    was given back).
    """
    customer = values["customer_number"]
    per_customer = _per_customer(state, customer)
    bump = {
        "coupon_id": state.id,
        "seen": state.updated_at,
        "customer": customer,
        "now": values["redeemed_at"],
    }
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return _write_in_steps(connection, _bump(per_customer, locked), bump, values, event)
    if per_customer and not locked:
        # Lock first: the guard's count then comes from a snapshot taken after the lock.
        connection.execute(_LOCK, bump)
    params = {
        **bump,
        **{"r_" + name: values[name] for name in _REDEMPTION_FIELDS},
        **{"e_" + name: event[name] for name in _EVENT_FIELDS},
    }
    statement = _redeem_statement(per_customer, locked)
    was_bumped, was_added = connection.execute(statement, params).one()
    if not was_bumped:
        return "refused"
    if not was_added:
        connection.execute(_GIVE_BACK, bump)  # under the lock the bump took: exact
        return "order_taken"
    return "redeemed"


def _write_in_steps(connection, bump_statement, bump: dict, values: dict, event: dict):
    """The same writes as separate statements (SQLite: BEGIN IMMEDIATE serializes writers)."""
    if connection.execute(bump_statement, bump).first() is None:
        return "refused"
    if connection.execute(_ADD_IN_STEPS, values).first() is None:
        connection.execute(_GIVE_BACK, bump)
        return "order_taken"
    connection.execute(insert(_OUTBOX), event)
    return "redeemed"


def _decide_under_lock(
    session: Session, tenant, state, caller: Caller, customer, order: Order, values: dict
) -> Outcome:
    """Lock the coupon, read it afresh (holds counted) and let the rules decide again."""
    now, owner = values["redeemed_at"], values["order_owner"]
    fresh = locked_state(session, tenant, state.id, customer, order.order_id, now, owner)
    ctx = context(fresh, caller, customer, order)
    if order.order_id is not None and fresh.replay_id is not None:
        _check_replay(fresh, ctx, fresh.replay_customer)
        return _replayed(fresh, fresh.replay_id, fresh.replay_discount)
    if order.order_id is not None and fresh.hold_id is not None:
        from app.engine.usage import holds

        return holds.confirm_for_order(tenant, fresh, ctx, fresh.hold_id, now)
    violations = rules.evaluate(fresh, ctx, now)
    if violations:
        raise RuleViolated(violations[0])
    values = redemption_values(tenant, fresh, customer, order, now, owner)
    if write(session, fresh, values, event(tenant, fresh, values), locked=True) != "redeemed":
        raise OrderAlreadyRedeemed()  # the order id was redeemed for another customer
    return created(fresh, values)


def _replayed(state, redemption_id: str, discount: Decimal | None) -> Outcome:
    return Outcome(
        redemption_id=redemption_id,
        coupon_code=state.code,
        discount=discount,
        free_products=tuple(state.free_products or ()),
        created=False,
    )


def _check_replay(coupon, context: rules.Context, replay_customer: str | None) -> None:
    """A replay is for a caller who may use the coupon, acting for the same customer."""
    if coupon.deleted:
        raise CouponNotFound()
    if not rules.may_use(coupon, context):
        raise RuleViolated(rules.Violation(rules.FORBIDDEN))
    if replay_customer != context.customer_number:
        raise OrderAlreadyRedeemed()


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
    }


def list_redemptions(*, tenant: TenantRef, code: str, page: int, page_size: int):
    """One page of a coupon's redemptions in creation order, and the total."""
    coupon = lookup.get_coupon(tenant=tenant, code=code)
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
    coupon = lookup.find(tenant=tenant, code=code, for_update=for_update)
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
