"""Stacking several codes in one cart: pure arithmetic, no database."""

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.engine import stacking
from app.engine.money import percent_of
from app.engine.rules import Money
from app.engine.stacking import NOT_COMBINABLE, STACKING_LIMIT, Candidate, combine


@dataclass(frozen=True)
class Def:
    discount_type: str = "ABSOLUTE"
    discount_amount: Decimal | None = None
    discount_percentage: Decimal | None = None
    exclusive: bool = False
    stacking_priority: int = 0


def absolute(amount, **kw) -> Def:
    return Def("ABSOLUTE", discount_amount=Decimal(str(amount)), **kw)


def percent(pct, **kw) -> Def:
    return Def("PERCENT", discount_percentage=Decimal(str(pct)), **kw)


def gift(**kw) -> Def:
    return Def("FREE_PRODUCT", **kw)


def usd(amount) -> Money:
    return Money(Decimal(str(amount)), "USD")


def cart(*defs: Def) -> list[Candidate]:
    return [Candidate(f"C{i}", d, i) for i, d in enumerate(defs)]


def discounts(stack) -> dict[str, Decimal]:
    return {c.code: d for c, d in stack.applied}


# --- worked examples ----------------------------------------------------------------------


def test_percent_applies_to_what_the_absolute_left():
    stack = combine(cart(percent(10), absolute(10)), usd(100), 5)
    assert [c.code for c, _ in stack.applied] == ["C1", "C0"]  # ABSOLUTE first
    assert discounts(stack) == {"C1": Decimal(10), "C0": Decimal("9.00")}
    assert stack.total == Decimal("19.00") and not stack.refused


def test_priority_orders_application_before_the_type():
    stack = combine(cart(percent(10, stacking_priority=1), absolute(10)), usd(100), 5)
    assert [c.code for c, _ in stack.applied] == ["C0", "C1"]
    assert discounts(stack) == {"C0": Decimal("10.00"), "C1": Decimal(10)}
    assert stack.total == Decimal(20)


def test_total_is_capped_at_the_order_total():
    stack = combine(cart(absolute(80), absolute(50), percent(50)), usd(100), 5)
    assert discounts(stack) == {"C0": Decimal(80), "C1": Decimal(20), "C2": Decimal("0.00")}
    assert stack.total == Decimal(100)


def test_an_exclusive_code_that_gives_more_wins_alone():
    stack = combine(cart(absolute(10), percent(30, exclusive=True), absolute(5)), usd(100), 5)
    assert discounts(stack) == {"C1": Decimal("30.00")}
    assert {code: v.type for code, v in stack.refused.items()} == {
        "C0": NOT_COMBINABLE,
        "C2": NOT_COMBINABLE,
    }
    assert stack.refused["C0"].data == {"exclusive": False, "with": ["C1"]}


def test_the_shared_codes_win_when_together_they_give_more():
    stack = combine(cart(absolute(20), percent(15, exclusive=True), absolute(5)), usd(100), 5)
    assert discounts(stack) == {"C0": Decimal(20), "C2": Decimal(5)}
    assert stack.refused["C1"].type == NOT_COMBINABLE
    assert stack.refused["C1"].data["exclusive"] is True


def test_the_best_of_several_exclusive_codes_wins():
    stack = combine(
        cart(
            percent(10, exclusive=True), absolute(25, exclusive=True), percent(20, exclusive=True)
        ),
        usd(100),
        5,
    )
    assert discounts(stack) == {"C1": Decimal(25)}
    assert set(stack.refused) == {"C0", "C2"}


def test_a_tie_goes_to_fewer_codes_then_to_the_earlier_code():
    stack = combine(cart(absolute(10), absolute(10), absolute(20, exclusive=True)), usd(100), 5)
    assert discounts(stack) == {"C2": Decimal(20)}  # 20 either way: one code beats two
    stack = combine(cart(absolute(20, exclusive=True), absolute(20, exclusive=True)), usd(100), 5)
    assert discounts(stack) == {"C0": Decimal(20)}


def test_codes_beyond_the_limit_are_refused_in_application_order():
    stack = combine(
        cart(absolute(1), absolute(2, stacking_priority=5), absolute(3), gift()), usd(100), 2
    )
    assert discounts(stack) == {"C1": Decimal(2), "C0": Decimal(1)}
    assert {code: v.type for code, v in stack.refused.items()} == {
        "C2": STACKING_LIMIT,
        "C3": STACKING_LIMIT,
    }
    assert stack.refused["C2"].data == {"max_codes_per_order": 2}


def test_a_gift_applies_with_no_money_discount():
    stack = combine(cart(gift(), absolute(5)), usd(100), 5)
    assert discounts(stack) == {"C0": Decimal(0), "C1": Decimal(5)}


def test_nothing_to_combine():
    assert combine([], usd(100), 5).total == 0


# --- properties -------------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(500), places=2)
definitions = st.one_of(
    st.builds(absolute, amounts, exclusive=st.booleans(), stacking_priority=st.integers(-2, 2)),
    st.builds(
        percent,
        st.decimals(min_value=Decimal("0.5"), max_value=Decimal(100), places=1),
        exclusive=st.booleans(),
        stacking_priority=st.integers(-2, 2),
    ),
    st.builds(gift, exclusive=st.booleans(), stacking_priority=st.integers(-2, 2)),
)


@given(
    st.lists(definitions, min_size=1, max_size=8),
    st.decimals(min_value=0, max_value=Decimal(1000), places=2),
    st.integers(min_value=1, max_value=6),
)
def test_stacking_invariants(defs, total, max_codes):
    candidates = cart(*defs)
    stack = combine(candidates, usd(total), max_codes)
    applied = [c for c, _ in stack.applied]

    # Every code is applied or refused, never both; the refusals are typed.
    assert {c.code for c in applied}.isdisjoint(stack.refused)
    assert {c.code for c in applied} | set(stack.refused) == {c.code for c in candidates}
    assert {v.type for v in stack.refused.values()} <= {NOT_COMBINABLE, STACKING_LIMIT}

    # Never more than the order total, nothing negative, at most max_codes codes.
    assert all(d >= 0 for _, d in stack.applied)
    assert stack.total <= Decimal(total)
    assert 1 <= len(applied) <= max_codes

    # An exclusive code applies only alone.
    if any(c.coupon.exclusive for c in applied):
        assert len(applied) == 1

    # Priority first, then ABSOLUTE before PERCENT, and each takes its share of what is left.
    remaining = Decimal(total)
    previous = None
    for candidate, discount in stack.applied:
        coupon = candidate.coupon
        key = (-coupon.stacking_priority, stacking._TYPE_ORDER[coupon.discount_type])
        assert previous is None or previous <= key
        previous = key
        if coupon.discount_type == "PERCENT":
            assert discount == percent_of(remaining, coupon.discount_percentage, "USD")
        elif coupon.discount_type == "ABSOLUTE":
            assert discount == min(coupon.discount_amount, remaining)
        else:
            assert discount == 0
        remaining -= discount

    # The chosen option is at least as good as each exclusive code alone.
    for candidate in candidates:
        if candidate.coupon.exclusive:
            alone = combine([candidate], usd(total), max_codes).total
            assert stack.total >= alone
