"""The ledger: every write that takes or gives back a use of a coupon.

A redemption bumps the coupon's counter with one guarded statement and inserts the
redemption row and its outbox event in the same statement (a PostgreSQL CTE;
SQLite, which serializes writers, runs the same statements one by one). The
guard makes the optimistic path exact: the counter goes up only if the coupon is
unchanged since it was read, has no live hold, and is under its limits. After a
decision taken under the coupon's row lock the write names the row alone. Giving
a use back, confirming a hold and closing one are the ledger's too.
"""

from __future__ import annotations

import enum
import functools
from datetime import datetime

from sqlalchemy import bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.database import engine_of, typed_params
from app.direct import Direct
from app.engine import idempotency, outbox, rules, webhooks
from app.engine.rules import Money
from app.engine.tenants import TenantRef
from app.engine.usage import budgets, rows
from app.engine.usage.state import (
    COUPONS,
    LOCK,
    REDEMPTIONS,
    C,
    CouponState,
    H,
    HoldExpired,
    HoldReleased,
    OrderAlreadyRedeemed,
    Outcome,
    R,
)
from app.errors import CouponNotFound
from app.extensions import db
from app.models import Hold, HoldStatus, OutboxMessage, RedemptionStatus

_OUTBOX = OutboxMessage.__table__
# Columns a redemption statement inserts (coupon_id comes from the guarded bump).
REDEMPTION_FIELDS = (
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
    "metadata",
)
EVENT_FIELDS = outbox.MESSAGE_FIELDS
# A redemption whose order id its owner already redeemed is skipped (the order is taken);
# any other conflict (a sequence behind its rows, say) fails the statement, bump and all.
ORDER_ID_KEY = ("coupon_id", "order_owner", "order_id")


class Written(enum.Enum):
    """What a redemption's write did."""

    REDEEMED = "redeemed"
    # The guard found the coupon changed, held or at a limit: nothing was written.
    REFUSED = "refused"
    # A concurrent request redeemed this order id first: the counter was given back.
    ORDER_TAKEN = "order_taken"


# --- the guarded write ------------------------------------------------------------------


def _now_param():
    return bindparam("now", type_=C.held_until.type)


@functools.cache
def bump_statement(per_customer: bool, locked: bool):
    """The counter increment. Optimistic: guarded (unchanged coupon, no live holds, under
    both limits) or no row. Locked: the rules already decided on a state read under the
    coupon's lock (holds counted), so only the row is named.

    Parameters coupon_id and, optimistic, seen (the updated_at read), now and, per
    customer, customer.
    """
    guard = [C.id == bindparam("coupon_id")]
    discount = bindparam("discount", type_=C.discount_used.type)
    if not locked:
        guard += [
            C.updated_at == bindparam("seen", type_=C.updated_at.type),
            # Live holds are counted only under the lock.
            or_(C.held_until.is_(None), C.held_until <= _now_param()),
            or_(C.max_redemptions == rules.UNLIMITED, C.redemption_count < C.max_redemptions),
            # The coupon's budget pays for this discount (with no live hold, nothing else
            # is reserved): exact in the one statement.
            or_(C.budget_amount.is_(None), C.discount_used + discount <= C.budget_amount),
        ]
    if per_customer and not locked:
        customer_count = (
            select(func.count())
            .where(
                R.coupon_id == bindparam("coupon_id"),
                R.customer_number == bindparam("customer"),
                R.status != RedemptionStatus.ROLLED_BACK,
            )
            .scalar_subquery()
        )
        guard.append(customer_count < C.max_redemptions_per_customer)
    return (
        update(COUPONS)
        .where(*guard)
        # A redemption is not a change of the definition: updated_at stays.
        .values(
            redemption_count=C.redemption_count + 1,
            discount_used=C.discount_used + _budgeted(discount),
            updated_at=C.updated_at,
        )
        .returning(C.id)
    )


def _budgeted(discount):
    currency = bindparam("discount_currency", type_=C.budget_currency.type)
    return budgets.counted_by_coupon(discount, currency)


@functools.cache
def redeem_statement(per_customer: bool, locked: bool, with_event: bool = True, keyed=False):
    """PostgreSQL: the bump, the redemption and its event in one statement (built once, run
    on the driver: see app/direct.py), and, `keyed`, the Idempotency-Key's record after
    the redemption (`idempotency.insert_after`).

    Parameters: the bump's, r_<column> for the redemption, e_<column> for the event
    (when `with_event`), the record's (when `keyed`).
    Returns how many rows were bumped and added (0 or 1 each).
    """
    bumped = bump_statement(per_customer, locked).cte("bumped")
    added = (
        postgresql.insert(REDEMPTIONS)
        .from_select(
            [*REDEMPTION_FIELDS, "coupon_id"],
            select(*typed_params(REDEMPTIONS, REDEMPTION_FIELDS, "r_"), bumped.c.id),
        )
        .on_conflict_do_nothing(index_elements=ORDER_ID_KEY)
        .returning(R.id)
        .cte("added")
    )
    # The outer SELECT never reads `queued`: PostgreSQL runs a data-modifying CTE whether
    # or not it is referenced, so the event row is inserted for each redemption added.
    queued = (
        insert(_OUTBOX)
        .from_select(
            list(EVENT_FIELDS),
            select(*typed_params(_OUTBOX, EVENT_FIELDS, "e_")).select_from(added),
        )
        .cte("queued")
    )
    # The tenant's webhook endpoints that want it: one message each (none: no row).
    hooked = (
        insert(_OUTBOX)
        .from_select(
            list(webhooks.FAN_OUT_COLUMNS),
            webhooks.fan_out_select("postgresql").where(select(added.c.id).exists()),
        )
        .cte("hooked")
    )
    counts = select(
        select(func.count()).select_from(bumped).scalar_subquery().label("bumped"),
        select(func.count()).select_from(added).scalar_subquery().label("added"),
    ).add_cte(hooked)
    if keyed:
        counts = counts.add_cte(idempotency.insert_after(added).cte("kept"))
    return Direct(counts.add_cte(queued) if with_event else counts)


GIVE_BACK = (
    update(COUPONS)
    .where(C.id == bindparam("coupon_id"))
    .values(
        redemption_count=C.redemption_count - 1,
        discount_used=C.discount_used
        - _budgeted(bindparam("discount", type_=C.discount_used.type)),
        updated_at=C.updated_at,
    )
)
_ADD_IN_STEPS = (
    sqlite.insert(REDEMPTIONS).on_conflict_do_nothing(index_elements=ORDER_ID_KEY).returning(R.id)
)
_HOOKS_IN_STEPS = insert(_OUTBOX).from_select(
    list(webhooks.FAN_OUT_COLUMNS), webhooks.fan_out_select("sqlite")
)


def write(
    session: Session,
    state: CouponState,
    row: dict,
    event_row: dict | None,
    hook_row: dict,
    *,
    locked: bool = False,
    alone: bool = False,
    record: dict | None = None,
) -> Written:
    """Bump the counter and insert the redemption and its event (if any).

    Optimistic (not `locked`): guarded, see `bump_statement`. `alone`: the optimistic
    write as one autocommitted statement, its own transaction (no BEGIN, no COMMIT round
    trip), for a use no row can conflict with (`redemption.writes_alone` says when);
    `record`: with an Idempotency-Key's record, its parameters (an `idempotency.Offer`).
    """
    per_customer, bump = _bump(state, row)
    params = _params(bump, row, event_row, hook_row)
    statement = redeem_statement(per_customer, locked, event_row is not None, record is not None)
    if record is not None:
        params.update(record)
    if alone:
        (counts,) = statement.autocommit_rows(engine_of(session), params)
        if counts["bumped"] and not counts["added"]:  # no order id, so no order conflict
            raise RuntimeError("a redemption without an order id was skipped")
        return Written.REDEEMED if counts["bumped"] else Written.REFUSED
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return _write_in_steps(
            connection, bump_statement(per_customer, locked), bump, row, event_row, hook_row
        )
    if per_customer and not locked:
        # Lock first: the guard's count then comes from a snapshot taken after the lock.
        connection.execute(LOCK, bump)
    (counts,) = statement.rows(connection, params)
    if not counts["bumped"]:
        return Written.REFUSED
    if not counts["added"]:
        connection.execute(GIVE_BACK, bump)  # under the lock the bump took: exact
        return Written.ORDER_TAKEN
    return Written.REDEEMED


def counts_customer(state: CouponState, customer: str | None) -> bool:
    """Whether the guarded bump counts the customer's uses (read after the row lock)."""
    return customer is not None and state.max_redemptions_per_customer != rules.UNLIMITED


def _bump(state: CouponState, row: dict) -> tuple[bool, dict]:
    """Whether the bump counts the customer's uses, and its parameters."""
    customer = row["customer_number"]
    return counts_customer(state, customer), {
        "coupon_id": state.id,
        "seen": state.updated_at,
        "customer": customer,
        "now": row["redeemed_at"],
        "discount": row["discount_amount"] or 0,
        "discount_currency": row["discount_currency"],
    }


def _params(bump: dict, row: dict, event_row: dict | None, hook_row: dict) -> dict:
    params = {**bump, **{"r_" + name: row[name] for name in REDEMPTION_FIELDS}, **hook_row}
    if event_row is not None:
        params.update({"e_" + name: event_row[name] for name in EVENT_FIELDS})
    return params


def _write_in_steps(
    connection, statement, bump: dict, row: dict, event_row: dict | None, hook_row: dict
) -> Written:
    """The same writes as separate statements (SQLite: BEGIN IMMEDIATE serializes writers)."""
    if connection.execute(statement, bump).first() is None:
        return Written.REFUSED
    if connection.execute(_ADD_IN_STEPS, row).first() is None:
        connection.execute(GIVE_BACK, bump)
        return Written.ORDER_TAKEN
    if event_row is not None:
        connection.execute(insert(_OUTBOX), event_row)
    connection.execute(_HOOKS_IN_STEPS, hook_row)
    return Written.REDEEMED


def record(tenant: TenantRef, session: Session, state: CouponState, row: dict) -> Outcome:
    """Write a redemption decided under the coupon's lock; a conflict when its order id
    was redeemed meanwhile for another customer."""
    written = write(
        session,
        state,
        row,
        rows.event(tenant, state, row),
        rows.hook(tenant, state, row),
        locked=True,
    )
    if written != Written.REDEEMED:
        raise OrderAlreadyRedeemed()
    budgets.spend(session, state, row["discount_amount"], row["discount_currency"])
    return state.outcome(row["id"], row["discount_amount"], created=True)


# --- holds: their use taken, confirmed, given back ---------------------------------------


def redeem_hold(tenant: TenantRef, state: CouponState, hold: Hold, now: datetime) -> Outcome:
    """Under the coupon's and the hold's locks: the hold's redemption, its event and the hold
    closed (the hold took its use: no limit is asked again), or a refusal."""
    if hold.status == HoldStatus.CONFIRMED:
        return state.outcome(hold.redemption_id, hold.discount_amount, created=False)
    if hold.status == HoldStatus.RELEASED:
        raise HoldReleased()
    if hold.expires_at <= now:
        raise HoldExpired()
    if state.deleted:
        raise CouponNotFound()
    row = rows.redemption_row(
        tenant_id=tenant.id,
        coupon_id=state.id,
        customer=hold.customer_number,
        total=_stored_money(hold.order_total_amount, hold.order_total_currency),
        discount=_stored_money(hold.discount_amount, hold.discount_currency),
        order_id=hold.order_id,
        owner=hold.order_owner,
        now=now,
        metadata=hold.meta,
    )
    outcome = record(tenant, db.session(), state, row)
    confirm_hold(hold, row["id"], now)
    return outcome


def _stored_money(amount, currency) -> Money | None:
    return None if amount is None else Money(amount, currency)


def confirm_hold(hold: Hold, redemption_id: str, now: datetime) -> None:
    """The hold became this redemption (in the redemption's transaction)."""
    hold.status = HoldStatus.CONFIRMED
    hold.redemption_id = redemption_id
    close_hold(hold, now)
    announce_hold(hold, "hold.confirmed")


def announce_hold(hold: Hold, event_type: str) -> None:
    """A hold's webhook event, in the transaction of its change."""
    payload = {
        "holdId": hold.id,
        "couponCode": hold.coupon.code,
        "orderId": hold.order_id,
        "customerNumber": hold.customer_number,
        "expiresAt": hold.expires_at.isoformat().replace("+00:00", "Z"),
        "redemptionId": hold.redemption_id,
    }
    webhooks.emit(db.session(), hold.tenant_id, event_type, payload)


def close_hold(hold: Hold, now: datetime) -> None:
    """A hold was confirmed or released (under the coupon's lock): the coupon's `held_until`
    becomes its latest live hold's expiry, or NULL, and its redemptions take the hot path
    again as soon as no hold lives."""
    hold.closed_at = now
    db.session.flush()
    latest = (
        select(func.max(H.expires_at))
        .where(H.coupon_id == hold.coupon_id, H.status == HoldStatus.HELD, H.expires_at > now)
        .scalar_subquery()
    )
    db.session.execute(
        update(COUPONS)
        .where(C.id == hold.coupon_id)
        .values(held_until=latest, updated_at=C.updated_at)
    )


def extend_held_until(session: Session, coupon_id: int, expires_at: datetime) -> None:
    """A new hold on the coupon: until its expiry, redemptions count holds (locked path)."""
    session.execute(
        update(COUPONS)
        .where(C.id == coupon_id)
        .values(
            held_until=case(
                (or_(C.held_until.is_(None), C.held_until < expires_at), expires_at),
                else_=C.held_until,
            ),
            updated_at=C.updated_at,  # not a change of the definition
        )
    )
