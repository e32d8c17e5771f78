"""A coupon's state as the rules and the ledger see it, read in one statement.

The state is the coupon's rule columns, its live holds, the customer's uses
(redemptions and live holds) when the coupon limits customers, and, for an order
id, that order's redemption and live hold. It is read outside any transaction
before a decision, and again after the coupon's row lock (`locked_state`) when
the decision must be exact: statements after the lock see every redemption and
hold committed before it.

Live holds count like redemptions, but only while the coupon may have some
(`held_until` ahead): the correlated counts sit in a CASE that tests it first, so
a coupon without holds pays nothing for them. Order ids are their owner's
(`Caller.order_owner`): the shop's, a customer's, or anonymous callers'.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, bindparam, case, func, literal, or_, select
from sqlalchemy.orm import Session

from app.auth import Caller
from app.database import read
from app.direct import Direct
from app.engine import promotions, rules
from app.engine.catalog import lookup
from app.engine.rules import Money
from app.engine.tenants import TenantRef
from app.errors import Conflict, CouponNotFound, Gone, NotFound
from app.extensions import db
from app.models import Campaign, Coupon, Hold, HoldStatus, Redemption, RedemptionStatus

# The tables every usage module reads and writes, and their columns.
COUPONS, REDEMPTIONS, HOLDS = Coupon.__table__, Redemption.__table__, Hold.__table__
C, R, H = COUPONS.c, REDEMPTIONS.c, HOLDS.c


class OrderAlreadyRedeemed(Conflict):
    type = "coupon_order_already_redeemed"
    message = "This order id already redeemed the coupon for another customer"


class AlreadyRolledBack(Conflict):
    type = "redemption_already_rolled_back"
    message = "This redemption was rolled back already"


class RedemptionNotFound(NotFound):
    type, message = "redemption_not_found", "Redemption not found"


class OrderAlreadyHeld(Conflict):
    type = "coupon_order_already_held"
    message = "This order id holds the coupon for another customer"


class HoldDiffers(Conflict):
    type = "reservation_order_differs"
    message = (
        "This order id holds the coupon for another order total or discount: redeem it "
        "as held, or release the hold and redeem anew"
    )


class HoldNotFound(NotFound):
    type, message = "reservation_not_found", "Reservation not found"


class HoldReleased(NotFound):
    type, message = "reservation_released", "The reservation was released"


class HoldExpired(Gone):
    type, message = "reservation_expired", "The reservation has expired; its use was given back"


class HoldConfirmed(Conflict):
    type = "reservation_confirmed"
    message = "The reservation was confirmed; cancel the redemption instead"


@dataclass(frozen=True)
class Order:
    """What a dialect knows about the order a coupon is used for."""

    total: Money | None = None
    discount: Money | None = None
    products: frozenset[str] | None = None
    order_id: str | None = None
    # The order's lines with prices and its shipping total, when the caller sends them.
    lines: tuple[promotions.Line, ...] = ()
    shipping_total: Decimal | None = None
    # The caller's string pairs, kept on the redemption (or hold) and sent in its event.
    metadata: dict | None = None


@dataclass(frozen=True)
class Outcome:
    """A redemption, as values known inside its transaction (no reload after commit)."""

    redemption_id: str
    coupon_code: str
    discount: Decimal | None
    free_products: tuple[str, ...]
    # False: an order id already redeemed (or a hold already confirmed), answered again.
    created: bool


@dataclass(frozen=True)
class CouponState:
    """Everything a redemption decision reads of a coupon (a `rules.CouponLike`)."""

    id: int
    code: str
    deleted: bool
    active: bool
    allow_anonymous: bool
    valid_for: list
    valid_from: datetime | None
    valid_until: datetime | None
    max_redemptions: int
    max_redemptions_per_customer: int
    redemption_count: int
    discount_type: str
    discount_percentage: Decimal | None
    discount_amount: Decimal | None
    currency: str | None
    min_order_amount: Decimal | None
    required_product: str | None
    free_products: list
    exclusive: bool
    stacking_priority: int
    # The latest expiry of any hold: until then the coupon may have live holds.
    held_until: datetime | None
    # The definition's version: a redemption's guard requires it unchanged since the read.
    updated_at: datetime
    # Uses kept by live holds, and this customer's redemptions and live holds.
    live_holds: int = 0
    customer_uses: int = 0
    # For an order id: its redemption, and its live hold on the coupon, if any.
    replay_id: str | None = None
    replay_customer: str | None = None
    replay_discount: Decimal | None = None
    replay_status: str | None = None
    hold_id: str | None = None
    # What the discount comes off, and how (app.engine.promotions.promotion_of reads them).
    target: str = "ORDER"
    applies_to: dict | None = None
    excludes: dict | None = None
    allocation: str = "ACROSS"
    max_quantity: int | None = None
    max_discount_amount: Decimal | None = None
    buy_x_get_y: dict | None = None
    automatic: bool = False
    name: str | None = None
    # Budgets (app.engine.usage.budgets): the coupon's own and what its redemptions used,
    # and whether its campaign has one (then every use is decided under locks).
    budget_amount: Decimal | None = None
    budget_currency: str | None = None
    discount_used: Decimal = Decimal(0)
    campaign_id: int | None = None
    campaign_budgeted: bool = False

    def without_own_hold(self) -> CouponState:
        """This state with its order's own live hold not counted: the use it keeps is the
        one being redeemed now."""
        per_customer = self.max_redemptions_per_customer != rules.UNLIMITED
        return replace(
            self,
            live_holds=self.live_holds - 1,
            customer_uses=self.customer_uses - (1 if per_customer else 0),
        )

    def holds_live(self, now: datetime) -> bool:
        """The coupon may have live holds: its redemptions must count them, under its lock."""
        return self.held_until is not None and self.held_until > now

    def outcome(self, redemption_id: str, discount: Decimal | None, *, created: bool) -> Outcome:
        return Outcome(
            redemption_id=redemption_id,
            coupon_code=self.code,
            discount=discount,
            free_products=tuple(self.free_products or ()),
            created=created,
        )


# The columns of a state read from the coupon row itself.
_COUPON_FIELDS = tuple(
    f.name for f in fields(CouponState) if f.name in COUPONS.c and f.name != "hold_id"
)
RULE_COLUMNS = tuple(C[name] for name in _COUPON_FIELDS)


def _now_param():
    return bindparam("now", type_=C.held_until.type)


def live_holds_of_row(column, *conditions):
    """`column` of the live holds of the coupon row being read: a correlated query, run
    only while the coupon has some (the CASE around it tests `held_until` first)."""
    return select(column).where(
        H.coupon_id == C.id,
        H.status == HoldStatus.HELD,
        H.expires_at > _now_param(),
        *conditions,
    )


def _while_held(expression, otherwise):
    return case((C.held_until > _now_param(), expression), else_=otherwise)


def _counts(with_customer: bool):
    """The live holds, and (asked for) the customer's uses, of the coupon row read."""
    live = _while_held(live_holds_of_row(func.count()).scalar_subquery(), 0)
    if with_customer:
        redeemed = (
            select(func.count())
            .where(
                R.coupon_id == C.id,
                R.customer_number == bindparam("customer"),
                R.status != RedemptionStatus.ROLLED_BACK,  # its use was given back
            )
            .scalar_subquery()
        )
        customer_holds = live_holds_of_row(func.count(), H.customer_number == bindparam("customer"))
        uses = case(
            (
                C.max_redemptions_per_customer != rules.UNLIMITED,
                redeemed + _while_held(customer_holds.scalar_subquery(), 0),
            ),
            else_=0,
        )
    else:
        uses = literal(0)
    return live.label("live_holds"), uses.label("customer_uses")


@functools.cache
def state_query(with_customer: bool, with_order: bool):
    """The state's statement, built once per shape, run on the driver (it is the hottest).

    Parameters tenant_id, code_key, customer, order_id, order_owner, now.
    """
    return Direct(
        _state_select(
            with_customer,
            with_order,
            C.tenant_id == bindparam("tenant_id"),
            C.code_key == bindparam("code_key"),
        )
    )


@functools.cache
def cart_query(with_customer: bool, with_order: bool):
    """The states of a cart's codes and of the tenant's live automatic promotions, in one
    statement (parameters as `state_query`'s, with the list `code_keys` for `code_key`)."""
    automatic = and_(
        C.automatic.is_(True),
        C.deleted.is_(False),
        C.active.is_(True),
        or_(C.valid_until.is_(None), C.valid_until > _now_param()),
    )
    return _state_select(
        with_customer,
        with_order,
        C.tenant_id == bindparam("tenant_id"),
        or_(C.code_key.in_(bindparam("code_keys", expanding=True)), automatic),
    ).order_by(C.id)


def _campaign_budgeted():
    """Whether the coupon's campaign has a budget (read only for campaign codes)."""
    campaign = Campaign.__table__.c
    has = (
        select(literal(True))
        .where(
            campaign.id == C.campaign_id,
            or_(
                campaign.budget_max_redemptions.is_not(None),
                campaign.budget_amount.is_not(None),
                campaign.budget_max_per_customer.is_not(None),
            ),
        )
        .exists()
    )
    return case((C.campaign_id.is_not(None), has), else_=False).label("campaign_budgeted")


def _state_select(with_customer: bool, with_order: bool, *where):
    query = select(*RULE_COLUMNS, *_counts(with_customer), _campaign_budgeted()).where(*where)
    if with_order:
        replay = REDEMPTIONS.alias("replay")
        order_hold = live_holds_of_row(
            H.id,
            H.order_id == bindparam("order_id"),
            H.order_owner == bindparam("order_owner"),
        ).limit(1)
        query = query.add_columns(
            replay.c.id.label("replay_id"),
            replay.c.customer_number.label("replay_customer"),
            replay.c.discount_amount.label("replay_discount"),
            replay.c.status.label("replay_status"),
            _while_held(order_hold.scalar_subquery(), None).label("hold_id"),
        ).select_from(
            COUPONS.outerjoin(
                replay,
                and_(
                    replay.c.coupon_id == C.id,
                    replay.c.order_id == bindparam("order_id"),
                    replay.c.order_owner == bindparam("order_owner"),
                ),
            )
        )
    return query


def _parameters(tenant_id: int, code: str, customer, order_id, owner: str, now) -> dict:
    return {
        "tenant_id": tenant_id,
        "code_key": Coupon.key_for(code),
        "customer": customer,
        "order_id": order_id,
        "order_owner": owner,
        "now": now,
    }


def read_state(
    tenant: TenantRef,
    code: str,
    *,
    now: datetime,
    customer: str | None = None,
    order_id: str | None = None,
    owner: str = "",
    replica: bool = False,
) -> CouponState:
    """The coupon's state, or CouponNotFound; a campaign's code becomes a coupon here the
    first time it is looked up (see `lookup.materialize`: that commits its row).

    `owner` says whose `order_id` it is (`Caller.order_owner`). `replica`: a read that
    decides nothing written may come from the read replica (a code made a coupon just
    now is read back from the primary, where it is)."""
    statement = state_query(customer is not None, order_id is not None)
    params = _parameters(tenant.id, code, customer, order_id, owner, now)
    rows = read(db.session, statement, params, replica=replica)
    if not rows and lookup.materialize(tenant.id, code):
        rows = read(db.session, statement, params)
    if not rows:
        raise CouponNotFound()
    return CouponState(**rows[0])


def cart_states(
    tenant: TenantRef,
    codes: tuple[str, ...],
    *,
    now: datetime,
    customer: str | None = None,
    order_id: str | None = None,
    owner: str = "",
    replica: bool = False,
) -> tuple[list[CouponState | None], list[CouponState]]:
    """The state of each code of a cart (None: no such coupon) and the tenant's live
    automatic promotions, read in one statement; a campaign's code seen for the first
    time becomes a coupon and is read on its own."""
    keys = [Coupon.key_for(code) for code in codes]
    params = {
        **_parameters(tenant.id, "", customer, order_id, owner, now),
        "code_keys": keys or [""],
    }
    statement = cart_query(customer is not None, order_id is not None)
    rows = read(db.session, statement, params, replica=replica)  # see read_state
    found = [CouponState(**row._mapping) for row in rows]
    by_key = {Coupon.key_for(state.code): state for state in found}
    states: list[CouponState | None] = []
    for code, key in zip(codes, keys, strict=True):
        state = by_key.get(key)
        if state is None and lookup.materialize(tenant.id, code):
            try:
                state = read_state(
                    tenant, code, now=now, customer=customer, order_id=order_id, owner=owner
                )
            except CouponNotFound:  # deleted meanwhile
                state = None
        states.append(state)
    return states, [state for state in found if state.automatic]


LOCK = select(C.id).where(C.id == bindparam("coupon_id")).with_for_update()
_LOCKED_CODE = select(C.code).where(C.id == bindparam("coupon_id")).with_for_update()


def locked_state(
    session: Session,
    tenant: TenantRef,
    coupon_id: int,
    *,
    now: datetime,
    customer: str | None = None,
    order_id: str | None = None,
    owner: str = "",
) -> CouponState:
    """Lock the coupon row, then read its state: statements after the lock see every
    redemption and hold committed before it."""
    connection = session.connection()
    code = connection.execute(_LOCKED_CODE, {"coupon_id": coupon_id}).scalar_one()
    params = _parameters(tenant.id, code, customer, order_id, owner, now)
    (row,) = state_query(customer is not None, order_id is not None).rows(connection, params)
    return CouponState(**row)


def context(
    state: CouponState,
    caller: Caller,
    customer: str | None,
    order: Order,
    budget: rules.BudgetLeft | None = None,
):
    """What the rules need to know of this caller and order, with the state's counts and
    what its budgets leave (`budgets.left`)."""
    return rules.Context(
        budget=budget,
        identified=caller.identified,
        customer_number=customer,
        customer_uses=state.customer_uses,
        live_holds=state.live_holds,
        order_total=order.total,
        discount=order.discount,
        products=order.products,
        lines=order.lines,
        shipping_total=order.shipping_total,
    )


def hold_by_id(hold_id: str, *, lock: bool = False) -> Hold:
    """A hold by its id (locked, if asked: always after its coupon's lock)."""
    query = select(Hold).where(Hold.id == hold_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return db.session.scalars(query).one()
