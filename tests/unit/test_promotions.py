"""Line-item promotions (app.engine.promotions): worked examples of what storefronts
run, and the arithmetic proven with hypothesis for 0-, 2- and 3-decimal currencies."""

from decimal import Decimal
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.money import minor_units, percent_of
from app.engine.promotions import (
    ABSOLUTE,
    BUY_X_GET_Y,
    EACH,
    ITEMS,
    ORDER,
    PERCENT,
    SHIPPING,
    Basket,
    BuyXGetY,
    Line,
    Promotion,
    Selector,
    allocate,
    apply_in_order,
    claim,
    grant,
    promotion_of,
)

D = Decimal
SHOES = Selector(categories=frozenset({"shoes"}))
TSHIRT = Selector(products=frozenset({"tshirt"}))


def _cart(*lines: Line, order=None, shipping=None, currency="USD"):
    total = order if order is not None else sum((line.value for line in lines), D(0))
    return list(lines), Basket.of(currency, total, lines, shipping or D(0))


# --- worked examples --------------------------------------------------------------------


def test_twenty_percent_off_shoes():
    items, basket = _cart(
        Line("runner", D("100.00"), 1, frozenset({"shoes"})), Line("tshirt", D("30.00"), 2)
    )
    given_ = grant(Promotion(PERCENT, ITEMS, percentage=D(20), applies_to=SHOES), items, basket)
    assert given_.discount == D("20.00") and given_.lines == ((0, D("20.00")),)


def test_five_off_each_tshirt():
    items, basket = _cart(Line("tshirt", D("20.00"), 3), Line("cap", D("12.00"), 1))
    each = Promotion(ABSOLUTE, ITEMS, amount=D(5), applies_to=TSHIRT, allocation=EACH)
    assert grant(each, items, basket).lines == ((0, D("15.00")),)
    # Never more than a unit is worth.
    cheap, basket = _cart(Line("tshirt", D("3.00"), 2))
    assert grant(each, cheap, basket).discount == D("6.00")


def test_buy_two_get_one_free_discounts_the_cheapest():
    deal = BuyXGetY(buy=2, get=1, percent_off=D(100), buy_from=TSHIRT, get_from=TSHIRT)
    promotion = Promotion(BUY_X_GET_Y, ITEMS, buy_x_get_y=deal)
    items, basket = _cart(Line("tshirt", D("20.00"), 2), Line("tshirt", D("15.00"), 1))
    assert grant(promotion, items, basket).lines == ((1, D("15.00")),)
    # Five shirts: one application (the sixth unit is missing for a second).
    items, basket = _cart(Line("tshirt", D("20.00"), 5))
    assert grant(promotion, items, basket).discount == D("20.00")
    items, basket = _cart(Line("tshirt", D("20.00"), 6))
    assert grant(promotion, items, basket).discount == D("40.00")


def test_free_shipping():
    items, basket = _cart(Line("runner", D("60.00"), 1), shipping=D("7.50"))
    free = grant(Promotion(PERCENT, SHIPPING, percentage=D(100)), items, basket)
    assert free.shipping == D("7.50") and free.discount == 0
    assert grant(Promotion(ABSOLUTE, SHIPPING, amount=D(10)), items, basket).shipping == D("7.50")


def test_fifteen_percent_capped_at_thirty():
    capped = Promotion(PERCENT, ORDER, percentage=D(15), max_discount=D(30))
    assert grant(capped, *_cart(order=D(300))).discount == D(30)  # not 45
    assert grant(capped, *_cart(order=D(100))).discount == D(15)


def test_ten_percent_off_the_whole_cart():
    weekend = Promotion(PERCENT, ORDER, percentage=D(10))
    items, basket = _cart(Line("runner", D("60.00"), 1), Line("tshirt", D("10.00"), 2))
    assert grant(weekend, items, basket).discount == D("8.00")


def test_a_percent_after_money_off_takes_its_share_of_what_is_left_of_the_line():
    items, basket = _cart(Line("tshirt", D("20.00"), 1), Line("cap", D("10.00"), 1))
    five = Promotion(ABSOLUTE, ITEMS, amount=D(5), applies_to=TSHIRT)
    half = Promotion(PERCENT, ITEMS, percentage=D(50))
    first, second = apply_in_order([five, half], items, basket)
    assert first.lines == ((0, D("5.00")),)
    assert second.lines == ((0, D("7.50")), (1, D("5.00")))


def test_max_quantity_takes_the_most_expensive_units():
    items, basket = _cart(Line("a", D("10.00"), 2), Line("b", D("30.00"), 1), Line("c", D("5"), 4))
    two = Promotion(PERCENT, ITEMS, percentage=D(100), max_quantity=2)
    assert claim(two, items, basket).units == {1: 1, 0: 1}
    assert grant(two, items, basket).discount == D("40.00")


def test_excluded_lines_are_not_discounted():
    items, basket = _cart(
        Line("runner", D("100"), 1, frozenset({"shoes"})), Line("sock", D("10"), 1)
    )
    promotion = Promotion(PERCENT, ITEMS, percentage=D(10), excludes=SHOES)
    assert grant(promotion, items, basket).lines == ((1, D("1.00")),)


def test_line_discounts_never_exceed_what_is_left_of_the_order():
    items, basket = _cart(Line("runner", D("100.00"), 1), order=D("30.00"))
    assert grant(Promotion(PERCENT, ITEMS, percentage=D(50)), items, basket).discount == D(30)


fine = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False)


@given(
    total=fine,
    parts=st.lists(st.tuples(fine, fine), min_size=1, max_size=5),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_allocation_off_the_grid_never_raises_and_stays_under_every_cap(total, parts, currency):
    weights, caps = [w for w, _ in parts], [c for _, c in parts]
    shares = allocate(total, weights, caps, currency)
    assert all(0 <= share <= cap for share, cap in zip(shares, caps, strict=True))
    assert sum(shares) <= total
    unit = Decimal(1).scaleb(-minor_units(currency))
    assert all(share == share.quantize(unit) for share in shares)


def test_allocation_rounds_by_largest_remainder_ties_to_the_earlier_line():
    assert allocate(D("0.10"), [D(1)] * 3, [D(5)] * 3, "USD") == [D("0.04"), D("0.03"), D("0.03")]
    assert allocate(D(10), [D(1), D(1), D(1)], [D(10)] * 3, "JPY") == [D(4), D(3), D(3)]
    assert allocate(D("1.000"), [D(2), D(1)], [D(5)] * 2, "KWD") == [D("0.667"), D("0.333")]


# --- properties -------------------------------------------------------------------------

CURRENCIES = ("JPY", "USD", "KWD")
PRODUCTS = ("a", "b", "c")
CATEGORIES = ("x", "y")


@st.composite
def carts(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    scale = D(1).scaleb(-minor_units(currency))
    lines = draw(
        st.lists(
            st.builds(
                Line,
                product=st.sampled_from(PRODUCTS),
                unit_price=st.integers(0, 5_000).map(lambda n: n * scale),
                quantity=st.integers(1, 4),
                categories=st.frozensets(st.sampled_from(CATEGORIES)),
            ),
            min_size=1,
            max_size=5,
        )
    )
    value = sum((line.value for line in lines), D(0))
    order = draw(st.sampled_from([value, value * 2, (value / 2).quantize(scale)]))
    shipping = draw(st.integers(0, 2_000)) * scale
    return lines, Basket.of(currency, order, lines, shipping)


selectors = st.none() | st.builds(
    Selector,
    products=st.frozensets(st.sampled_from(PRODUCTS), min_size=1),
    categories=st.frozensets(st.sampled_from(CATEGORIES)),
)


@st.composite
def promotions(draw, currency="USD"):
    kind = draw(st.sampled_from([PERCENT, ABSOLUTE, BUY_X_GET_Y]))
    target = ITEMS if kind == BUY_X_GET_Y else draw(st.sampled_from([ORDER, ITEMS, SHIPPING]))
    money = st.integers(1, 100_000).map(lambda n: n * D(1).scaleb(-minor_units(currency)))
    deal = None
    each = kind == ABSOLUTE and target == ITEMS and draw(st.booleans())
    if kind == BUY_X_GET_Y:
        deal = BuyXGetY(
            buy=draw(st.integers(1, 3)),
            get=draw(st.integers(1, 2)),
            percent_off=D(draw(st.integers(1, 100))),
            buy_from=draw(selectors),
            get_from=draw(selectors),
            max_applications=draw(st.none() | st.integers(1, 3)),
        )
    return Promotion(
        kind,
        target,
        percentage=D(draw(st.integers(1, 100))) if kind == PERCENT else None,
        amount=draw(money) if kind == ABSOLUTE else None,
        applies_to=draw(selectors),
        excludes=draw(st.none() | selectors),
        allocation=EACH if each else "ACROSS",
        max_quantity=draw(st.none() | st.integers(1, 5)) if target == ITEMS else None,
        max_discount=draw(st.none() | money) if kind == PERCENT else None,
        buy_x_get_y=deal,
    )


def _on_grid(amount: Decimal, currency: str) -> bool:
    return amount == amount.quantize(D(1).scaleb(-minor_units(currency)))


@settings(max_examples=300, deadline=None)
@given(cart=carts(), data=st.data())
def test_grants_add_up_and_never_exceed_what_is_left(cart, data):
    items, basket = cart
    chosen = data.draw(st.lists(promotions(basket.currency), min_size=1, max_size=4))
    start = basket
    for promotion in chosen:
        given_ = grant(promotion, items, basket)
        assert 0 <= given_.discount <= basket.order
        assert 0 <= given_.shipping <= basket.shipping
        assert _on_grid(given_.discount, basket.currency)
        assert _on_grid(given_.shipping, basket.currency)
        if given_.lines:
            assert sum(d for _, d in given_.lines) == given_.discount
        for index, discount in given_.lines:
            assert 0 < discount <= basket.lines[index]
            assert _on_grid(discount, basket.currency)
        if promotion.target == ORDER and promotion.discount_type != BUY_X_GET_Y:
            assert given_.lines == ()
        basket = basket.after(given_)
    assert 0 <= basket.order <= start.order and 0 <= basket.shipping <= start.shipping
    assert all(left >= 0 for left in basket.lines)


@settings(max_examples=200, deadline=None)
@given(cart=carts(), percentage=st.integers(1, 100), cap=st.integers(1, 500))
def test_max_discount_caps_exactly(cart, percentage, cap):
    items, basket = cart
    promotion = Promotion(PERCENT, ORDER, percentage=D(percentage), max_discount=D(cap))
    uncapped = percent_of(basket.order, D(percentage), basket.currency)
    assert grant(promotion, items, basket).discount == min(uncapped, D(cap), basket.order)


@settings(max_examples=200, deadline=None)
@given(cart=carts(), limit=st.integers(1, 6), selector=selectors)
def test_max_quantity_discounts_the_most_expensive_units(cart, limit, selector):
    items, basket = cart
    promotion = Promotion(PERCENT, ITEMS, percentage=D(10), applies_to=selector, max_quantity=limit)
    units = claim(promotion, items, basket).units
    eligible = [i for i, line in enumerate(items) if line.value > 0 and promotion.eligible(line)]
    assert sum(units.values()) == min(limit, sum(items[i].quantity for i in eligible))
    taken = [items[i].unit_price for i in units]
    left_out = [items[i].unit_price for i in eligible if units.get(i, 0) < items[i].quantity]
    if taken and left_out:
        assert min(taken) >= max(left_out)


def _units(items, indexes):
    return [(i, u) for i in indexes for u in range(items[i].quantity)]


@settings(max_examples=200, deadline=None)
@given(
    cart=carts(),
    buy=st.integers(1, 3),
    get=st.integers(1, 2),
    most=st.none() | st.integers(1, 3),
    buy_from=selectors,
    get_from=selectors,
)
def test_buy_x_get_y_counts_a_unit_once_and_takes_the_cheapest(
    cart, buy, get, most, buy_from, get_from
):
    items, basket = cart
    deal = BuyXGetY(buy, get, D(100), buy_from, get_from, most)
    promotion = Promotion(BUY_X_GET_Y, ITEMS, buy_x_get_y=deal)
    units = claim(promotion, items, basket).units
    live = [i for i, line in enumerate(items) if line.value > 0]
    in_buy = [i for i in live if promotion.eligible(items[i], buy_from)]
    in_get = [i for i in live if promotion.eligible(items[i], get_from)]
    buy_units = sum(items[i].quantity for i in in_buy)
    discounted = sum(units.values())
    assert discounted % get == 0 and discounted <= (buy_units // buy) * get
    if most is not None:
        assert discounted <= most * get
    assert all(i in in_get and n <= items[i].quantity for i, n in units.items())
    # Brute force over the cart's units: the most applications any disjoint choice of
    # bought and got units allows, and the cheapest got-units at that many.
    pool = _units(items, in_get)
    buyable = set(_units(items, in_buy))
    best_times, best_value = 0, D(0)
    if len(pool) <= 10:
        for times in range(1, len(pool) // get + 1):
            if most is not None and times > most:
                break
            cheapest = None
            for got in combinations(pool, times * get):
                if len(buyable - set(got)) >= times * buy:
                    value = sum(items[i].unit_price for i, _ in got)
                    cheapest = value if cheapest is None else min(cheapest, value)
            if cheapest is None:
                break
            best_times, best_value = times, cheapest
        assert discounted == best_times * get
        assert sum(items[i].unit_price * n for i, n in units.items()) == best_value


def _as_coupon(promotion: Promotion, exclusive: bool, priority: int):
    """A coupon-like object describing `promotion`, as stacking reads coupons."""
    from types import SimpleNamespace

    def stored(selector):
        if selector is None:
            return None
        return {"products": sorted(selector.products), "categories": sorted(selector.categories)}

    deal = promotion.buy_x_get_y
    return SimpleNamespace(
        discount_type=promotion.discount_type,
        discount_percentage=promotion.percentage,
        discount_amount=promotion.amount,
        target=promotion.target,
        applies_to=stored(promotion.applies_to),
        excludes=stored(promotion.excludes),
        allocation=promotion.allocation,
        max_quantity=promotion.max_quantity,
        max_discount_amount=promotion.max_discount,
        buy_x_get_y=None
        if deal is None
        else {
            "buy": deal.buy,
            "get": deal.get,
            "percent_off": int(deal.percent_off),
            "buy_from": stored(deal.buy_from),
            "get_from": stored(deal.get_from),
            "max_applications": deal.max_applications,
        },
        exclusive=exclusive,
        stacking_priority=priority,
    )


@settings(max_examples=150, deadline=None)
@given(cart=carts(), data=st.data())
def test_stacked_promotions_stay_in_bounds_and_never_lose_to_an_exclusive_alone(cart, data):
    from app.engine import stacking
    from app.engine.rules import Money

    items, basket = cart
    chosen = data.draw(st.lists(promotions(basket.currency), min_size=1, max_size=4))
    candidates = [
        stacking.Candidate(
            f"C{i}",
            _as_coupon(p, data.draw(st.booleans()), data.draw(st.integers(-1, 1))),
            i,
        )
        for i, p in enumerate(chosen)
    ]
    total = Money(basket.order, basket.currency)
    stack = stacking.combine(candidates, total, 5, items, basket.shipping)
    grants = stack.grants.values()
    assert sum((g.discount for g in grants), D(0)) <= basket.order
    assert sum((g.shipping for g in grants), D(0)) <= basket.shipping
    for index, value in enumerate(basket.lines):
        taken = sum((d for g in grants for i, d in g.lines if i == index), D(0))
        assert taken <= value
    merit = sum((g.discount + g.shipping for g in grants), D(0))
    for candidate in candidates:
        if candidate.coupon.exclusive:
            alone = grant(promotion_of(candidate.coupon), items, basket)
            assert merit >= alone.discount + alone.shipping
