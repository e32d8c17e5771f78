"""What a promotion takes off a cart's lines, its order total and its shipping: pure
arithmetic (no database, no clock) beside `rules` and `stacking`.

A promotion targets the ORDER (money off what is left of the order total, as every
coupon did before targets), ITEMS (the lines it selects) or SHIPPING. Promotions
apply one after another to a `Basket` of what is left; `grant` says what one takes,
`Basket.after` what it leaves. The invariants, proven by property tests:

- A grant's line discounts add up exactly to its discount, each on the currency's
  minor unit, none negative, none above what was left of its line.
- Nothing exceeds what is left: of the order total (the whole discount), of a line,
  of the shipping total.
- `maxQuantity` discounts the most expensive units; `maxDiscount` caps a PERCENT.
- Buy X get Y discounts at most floor(buy-set units / X) x Y units (and at most
  `max_applications` times), a unit counts once, as bought or as got, and the units
  discounted are the cheapest the cart allows.

`promotion_of` reads the promotion a coupon (or a coupon's state) describes; `rules`
asks `grant` for one code's discount and `stacking` for a cart's codes in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from app.engine.money import minor_units, percent_of

ORDER, ITEMS, SHIPPING = "ORDER", "ITEMS", "SHIPPING"
ACROSS, EACH = "ACROSS", "EACH"
PERCENT, ABSOLUTE, BUY_X_GET_Y = "PERCENT", "ABSOLUTE", "BUY_X_GET_Y"
ZERO = Decimal(0)


@dataclass(frozen=True)
class Line:
    """A cart line: `quantity` units of `product` at `unit_price` each."""

    product: str
    unit_price: Decimal
    quantity: int
    categories: frozenset[str] = frozenset()

    @property
    def value(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Selector:
    """Lines by product or category: a line is selected when its product is listed or
    it has a listed category."""

    products: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    def selects(self, line: Line) -> bool:
        return line.product in self.products or not self.categories.isdisjoint(line.categories)


@dataclass(frozen=True)
class BuyXGetY:
    """For every `buy` units of the buy set, `get` units of the get set at `percent_off`
    (100 = free), at most `max_applications` times (None: as often as the cart allows)."""

    buy: int
    get: int
    percent_off: Decimal
    buy_from: Selector | None = None  # None: every line
    get_from: Selector | None = None
    max_applications: int | None = None


@dataclass(frozen=True)
class Promotion:
    discount_type: str  # PERCENT, ABSOLUTE or BUY_X_GET_Y (anything else grants nothing)
    target: str = ORDER
    percentage: Decimal | None = None
    amount: Decimal | None = None  # in the cart's currency
    applies_to: Selector | None = None  # None: every line
    excludes: Selector | None = None
    allocation: str = ACROSS
    max_quantity: int | None = None
    max_discount: Decimal | None = None
    buy_x_get_y: BuyXGetY | None = None

    def eligible(self, line: Line, selector: Selector | None = None) -> bool:
        chosen = selector if selector is not None else self.applies_to
        if chosen is not None and not chosen.selects(line):
            return False
        return self.excludes is None or not self.excludes.selects(line)


@dataclass(frozen=True)
class Grant:
    """What one promotion takes: `discount` off the order (its line discounts included)
    and, apart, `shipping` off the shipping total."""

    discount: Decimal = ZERO
    lines: tuple[tuple[int, Decimal], ...] = ()  # (index in the cart's lines, discount)
    shipping: Decimal = ZERO


@dataclass(frozen=True)
class Basket:
    """What is left to discount: of the order total, of each line, of the shipping."""

    currency: str
    order: Decimal
    lines: tuple[Decimal, ...] = ()
    shipping: Decimal = ZERO
    # How many units each line has (to value a part of a line).
    quantities: tuple[int, ...] = field(default=())

    @classmethod
    def of(cls, currency: str, order_total: Decimal, items: Sequence[Line], shipping=ZERO):
        return cls(
            currency,
            order_total,
            tuple(line.value for line in items),
            shipping,
            tuple(line.quantity for line in items),
        )

    def after(self, grant: Grant) -> Basket:
        lines = list(self.lines)
        for index, discount in grant.lines:
            lines[index] -= discount
        return Basket(
            self.currency,
            self.order - grant.discount,
            tuple(lines),
            self.shipping - grant.shipping,
            self.quantities,
        )

    def unit_value(self, index: int) -> Decimal:
        """What is left of one unit of the line (exact only as a weight)."""
        return self.lines[index] / self.quantities[index]


def _unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def floor_money(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded down to the currency's minor unit."""
    return amount.quantize(_unit(currency), rounding=ROUND_DOWN)


def allocate(
    total: Decimal, weights: Sequence[Decimal], caps: Sequence[Decimal], currency: str
) -> list[Decimal]:
    """Split `total` over `weights` on the currency's minor unit: each share rounded down,
    the units left to the largest remainders (ties to the earlier), none above its cap.
    What the caps cannot hold in whole units is not given (the API refuses amounts finer
    than the unit, so this only guards against a 500)."""
    unit = _unit(currency)
    caps = [floor_money(cap, currency) for cap in caps]
    room = sum((cap for cap, w in zip(caps, weights, strict=True) if w > 0), ZERO)
    total = min(floor_money(total, currency), room)
    weight = sum(weights, ZERO)
    if total <= 0 or weight <= 0:
        return [ZERO] * len(weights)
    exact = [total * w / weight for w in weights]
    shares = [min(floor_money(e, currency), cap) for e, cap in zip(exact, caps, strict=True)]
    left = total - sum(shares, ZERO)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    while left > 0:
        for i in order:
            if left > 0 and weights[i] > 0 and shares[i] + unit <= caps[i]:
                shares[i] += unit
                left -= unit
    return shares


def grant(promotion: Promotion, items: Sequence[Line], basket: Basket) -> Grant:
    """What `promotion` takes from what is left in `basket` (see the module's rules)."""
    if promotion.target == SHIPPING:
        return Grant(shipping=_money_off(promotion, basket.shipping, basket.currency))
    if promotion.target == ITEMS or promotion.discount_type == BUY_X_GET_Y:
        return _spread(claim(promotion, items, basket), basket)
    return Grant(discount=_money_off(promotion, basket.order, basket.currency))


def _money_off(promotion: Promotion, base: Decimal, currency: str) -> Decimal:
    """A PERCENT (capped by max_discount) or ABSOLUTE amount off `base`, at most `base`."""
    if base <= 0:
        return ZERO
    if promotion.discount_type == PERCENT and promotion.percentage is not None:
        off = percent_of(base, promotion.percentage, currency)
        if promotion.max_discount is not None:
            off = min(off, promotion.max_discount)
        return min(off, base)
    if promotion.discount_type == ABSOLUTE and promotion.amount is not None:
        return min(promotion.amount, base)
    return ZERO


@dataclass(frozen=True)
class Claim:
    """The part of the cart a line promotion discounts: line index -> units."""

    units: dict[int, int]
    total: Decimal  # the discount asked, on the minor unit
    weights: dict[int, Decimal] | None = None  # None: the units' value


def _value(basket: Basket, index: int, units: int) -> Decimal:
    if units == basket.quantities[index]:
        return basket.lines[index]
    return basket.lines[index] * units / basket.quantities[index]


def _spread(claim: Claim, basket: Basket) -> Grant:
    """The claim, capped by what is left of the order, shared out over its lines."""
    indexes = sorted(claim.units)
    values = [_value(basket, i, claim.units[i]) for i in indexes]
    weights = [claim.weights[i] for i in indexes] if claim.weights is not None else values
    ceiling = floor_money(min(sum(values, ZERO), basket.order), basket.currency)
    total = max(ZERO, min(claim.total, ceiling))
    caps = [basket.lines[i] for i in indexes]
    shares = allocate(total, weights, caps, basket.currency)
    lines = tuple((i, s) for i, s in zip(indexes, shares, strict=True) if s > 0)
    return Grant(discount=sum((s for _, s in lines), ZERO), lines=lines)


def _by_unit_value(basket: Basket, indexes, *, descending: bool) -> list[int]:
    sign = -1 if descending else 1
    return sorted(indexes, key=lambda i: (sign * basket.unit_value(i), i))


def _items(promotion: Promotion, items: Sequence[Line], basket: Basket) -> Claim:
    eligible = [
        i for i, line in enumerate(items) if basket.lines[i] > 0 and promotion.eligible(line)
    ]
    units = {i: basket.quantities[i] for i in eligible}
    if promotion.max_quantity is not None:  # the most expensive units first
        left, units = promotion.max_quantity, {}
        for i in _by_unit_value(basket, eligible, descending=True):
            if left <= 0:
                break
            units[i] = min(left, basket.quantities[i])
            left -= units[i]
    currency = basket.currency
    if promotion.discount_type == ABSOLUTE and promotion.allocation == EACH:
        amount = promotion.amount or ZERO
        each = {
            i: min(amount * n, floor_money(_value(basket, i, n), currency))
            for i, n in units.items()
        }
        return Claim(units, sum(each.values(), ZERO), weights=each)
    value = sum((_value(basket, i, n) for i, n in units.items()), ZERO)
    return Claim(units, _money_off(promotion, floor_money(value, currency), currency))


def claim(promotion: Promotion, items: Sequence[Line], basket: Basket) -> Claim:
    """The units of each line a line promotion discounts, and the discount it asks for
    (before what is left of the order caps it)."""
    if promotion.discount_type == BUY_X_GET_Y:
        return _buy_x_get_y(promotion, items, basket)
    return _items(promotion, items, basket)


def _buy_x_get_y(promotion: Promotion, items: Sequence[Line], basket: Basket) -> Claim:
    deal = promotion.buy_x_get_y
    if deal is None:
        return Claim({}, ZERO)
    live = [i for i, line in enumerate(items) if basket.lines[i] > 0]
    in_buy = {i for i in live if promotion.eligible(items[i], deal.buy_from)}
    in_get = {i for i in live if promotion.eligible(items[i], deal.get_from)}
    count = basket.quantities
    buy_units = sum(count[i] for i in in_buy)
    get_units = sum(count[i] for i in in_get)
    either = sum(count[i] for i in in_buy | in_get)
    times = min(get_units // deal.get, buy_units // deal.buy, either // (deal.buy + deal.get))
    if deal.max_applications is not None:
        times = min(times, deal.max_applications)
    # The cheapest get-units, leaving the buy set enough units to be bought.
    wanted, shared_budget = times * deal.get, buy_units - times * deal.buy
    units: dict[int, int] = {}
    for i in _by_unit_value(basket, in_get, descending=False):
        if wanted <= 0:
            break
        take = min(wanted, count[i])
        if i in in_buy:
            take = min(take, shared_budget)
            shared_budget -= take
        if take > 0:
            units[i] = take
            wanted -= take
    value = sum((_value(basket, i, n) for i, n in units.items()), ZERO)
    off = percent_of(value, deal.percent_off, basket.currency)
    return Claim(units, min(off, floor_money(value, basket.currency)))


def apply_in_order(
    promotions: Sequence[Promotion], items: Sequence[Line], basket: Basket
) -> list[Grant]:
    """Each promotion's grant, each taking from what the ones before it left."""
    grants = []
    for promotion in promotions:
        given = grant(promotion, items, basket)
        grants.append(given)
        basket = basket.after(given)
    return grants


def promotion_of(coupon) -> Promotion:
    """The promotion a coupon (or a coupon's state) describes; a coupon without the
    promotion columns is an ORDER discount."""
    return Promotion(
        discount_type=coupon.discount_type,
        target=getattr(coupon, "target", None) or ORDER,
        percentage=coupon.discount_percentage,
        amount=coupon.discount_amount,
        applies_to=_selector(getattr(coupon, "applies_to", None)),
        excludes=_selector(getattr(coupon, "excludes", None)),
        allocation=getattr(coupon, "allocation", None) or ACROSS,
        max_quantity=getattr(coupon, "max_quantity", None),
        max_discount=getattr(coupon, "max_discount_amount", None),
        buy_x_get_y=_deal(getattr(coupon, "buy_x_get_y", None)),
    )


def _selector(stored: dict | None) -> Selector | None:
    if stored is None:
        return None
    return Selector(
        frozenset(stored.get("products") or ()), frozenset(stored.get("categories") or ())
    )


def _deal(stored: dict | None) -> BuyXGetY | None:
    if stored is None:
        return None
    return BuyXGetY(
        buy=stored["buy"],
        get=stored["get"],
        percent_off=Decimal(stored["percent_off"]),
        buy_from=_selector(stored.get("buy_from")),
        get_from=_selector(stored.get("get_from")),
        max_applications=stored.get("max_applications"),
    )


def on_lines(promotion: Promotion) -> bool:
    """True when the promotion discounts cart lines (it needs the cart's items)."""
    return promotion.target == ITEMS or promotion.discount_type == BUY_X_GET_Y
