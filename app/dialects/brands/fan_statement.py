"""A new fan, its coupon and the realizer post in one statement (PostgreSQL).

The common registration (an inbox new to the discount, a discount that neither asks
for a verified email nor hands out a fixed or campaign code) writes three rows that
nothing needs to read first. One autocommitted statement inserts them: the coupon's
id is drawn from its sequence first, so the fan row names it, and the coupon and the
post are inserted only for a fan row that went in. An inbox that already has a fan
of the discount inserts nothing (ON CONFLICT), and the registration takes the
general path, which reads that fan under its lock (app/dialects/brands/fans.py).
"""

from __future__ import annotations

import functools

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql

from app.database import every_column, typed_params
from app.direct import Direct
from app.engine.outbox import MESSAGE_FIELDS
from app.models import Coupon, Fan, OutboxMessage

_COUPONS, _FANS, _OUTBOX = Coupon.__table__, Fan.__table__, OutboxMessage.__table__
_COUPON_FIELDS = tuple(c.key for c in _COUPONS.columns if c.key != "id")
_FAN_FIELDS = tuple(c.key for c in _FANS.columns if c.key not in ("id", "coupon_id"))
# One fan per inbox and discount.
FAN_KEY = ("discount_id", "email_key")


@functools.cache
def statement() -> Direct:
    """Parameters f_<column> (the fan), c_<column> (the coupon), o_<column> (the post).
    Returns `issued`: 1 when the fan was new and all three rows went in, else 0."""
    drawn = select(
        func.nextval(func.pg_get_serial_sequence("coupons", "id")).label("coupon_id")
    ).cte("drawn")
    fan = (
        postgresql.insert(_FANS)
        .from_select(
            [*_FAN_FIELDS, "coupon_id"],
            select(*typed_params(_FANS, _FAN_FIELDS, "f_"), drawn.c.coupon_id),
        )
        .on_conflict_do_nothing(index_elements=FAN_KEY)
        .returning(_FANS.c.coupon_id)
        .cte("fan")
    )
    # The fan's reference is checked at the end of the statement, once its coupon is in.
    coupon = (
        insert(_COUPONS)
        .from_select(
            ["id", *_COUPON_FIELDS],
            select(fan.c.coupon_id, *typed_params(_COUPONS, _COUPON_FIELDS, "c_")),
        )
        .returning(_COUPONS.c.id)
        .cte("coupon")
    )
    posted = (
        insert(_OUTBOX)
        .from_select(
            list(MESSAGE_FIELDS),
            select(*typed_params(_OUTBOX, MESSAGE_FIELDS, "o_")).select_from(coupon),
        )
        .cte("posted")
    )
    issued = select(func.count()).select_from(coupon).scalar_subquery().label("issued")
    return Direct(select(issued).add_cte(posted))


def parameters(fan: dict, coupon: dict, message: dict) -> dict:
    """The statement's parameters from the three rows (columns not given take defaults)."""
    return {
        **{"f_" + k: v for k, v in every_column(_FANS, fan, without=("id", "coupon_id")).items()},
        **{"c_" + k: v for k, v in every_column(_COUPONS, coupon).items()},
        **{"o_" + name: message[name] for name in MESSAGE_FIELDS},
    }
