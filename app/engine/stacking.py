"""Several codes in one cart: which apply together, in what order, for how much.

Pure (no database, no clock), like `rules`, whose per-coupon discount it reuses:

- An exclusive coupon applies only alone. The cart gets the best of the options
  "every non-exclusive code together" and "one exclusive code alone": the largest
  total discount, then the fewest codes, then the option whose first code comes
  first in the request.
- Codes apply in order of `stacking_priority` (higher first), ABSOLUTE before
  PERCENT at equal priority, then in request order. Each takes its discount from
  what earlier codes left (`promotions.grant`): of the order total, of each line it
  targets, of the shipping. So a PERCENT is a share of the remainder, line by line,
  and the totals never exceed the order's, a line's or the shipping's.
- At most `max_codes` codes apply; later ones in that order are refused. Automatic
  promotions (no code) stack by the same rules but never count against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from app.engine import promotions, rules
from app.engine.rules import Money, Violation

NOT_COMBINABLE = "coupon_not_combinable"
STACKING_LIMIT = "coupon_stacking_limit"

# Money off first, then shares of what is left.
_TYPE_ORDER = {"ABSOLUTE": 0, "BUY_X_GET_Y": 1, "FREE_PRODUCT": 1, "PERCENT": 2}


class Stackable(rules.CouponLike, Protocol):
    exclusive: bool
    stacking_priority: int


@dataclass(frozen=True)
class Candidate:
    """A code that passed every rule of its own, at its place in the request."""

    code: str
    coupon: Stackable
    position: int
    # An automatic promotion (no code asked for it): never counted against max_codes.
    automatic: bool = False


@dataclass(frozen=True)
class Stack:
    """The codes that apply, in application order, with each one's discount (and what
    it takes off each line and the shipping: `grants`, by code)."""

    applied: tuple[tuple[Candidate, Decimal], ...] = ()
    refused: dict[str, Violation] = field(default_factory=dict)
    grants: dict[str, promotions.Grant] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum((discount for _, discount in self.applied), Decimal(0))


def application_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(
        candidates,
        key=lambda c: (
            -c.coupon.stacking_priority,
            _TYPE_ORDER.get(c.coupon.discount_type, 1),
            c.position,
        ),
    )


def _apply(candidates: Sequence[Candidate], items, basket: promotions.Basket, max_codes: int):
    """Apply in order on what remains; returns (applied with grants, refused for the
    code limit)."""
    applied: list[tuple[Candidate, promotions.Grant]] = []
    over: list[Candidate] = []
    codes = 0
    for candidate in application_order(candidates):
        if not candidate.automatic:
            if codes >= max_codes:
                over.append(candidate)
                continue
            codes += 1
        given = promotions.grant(promotions.promotion_of(candidate.coupon), items, basket)
        basket = basket.after(given)
        applied.append((candidate, given))
    return applied, over


def combine(
    candidates: Sequence[Candidate],
    order_total: Money,
    max_codes: int,
    items: Sequence[promotions.Line] = (),
    shipping_total: Decimal = Decimal(0),
) -> Stack:
    """The best combination of these codes for this order (see the module's rules)."""
    if not candidates:
        return Stack()
    basket = promotions.Basket.of(order_total.currency, order_total.amount, items, shipping_total)
    shared = [c for c in candidates if not c.coupon.exclusive]
    options = [_apply(shared, items, basket, max_codes)] if shared else []
    options += [_apply([c], items, basket, max_codes) for c in candidates if c.coupon.exclusive]

    def merit(option):
        applied, _ = option
        total = sum((g.discount + g.shipping for _, g in applied), Decimal(0))
        return (total, -len(applied), -min(c.position for c, _ in applied))

    applied, over = max(options, key=merit)
    chosen = {c.code for c, _ in applied}
    refused: dict[str, Violation] = {}
    for candidate in over:
        refused[candidate.code] = Violation(STACKING_LIMIT, {"max_codes_per_order": max_codes})
    for candidate in candidates:
        if candidate.code not in chosen and candidate.code not in refused:
            refused[candidate.code] = Violation(
                NOT_COMBINABLE,
                {"exclusive": bool(candidate.coupon.exclusive), "with": sorted(chosen)},
            )
    return Stack(
        applied=tuple((c, g.discount) for c, g in applied),
        refused=refused,
        grants={c.code: g for c, g in applied},
    )
