"""The pure evaluator: no database, no clock."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.engine import rules
from app.engine.money import minor_units, percent_of, round_money
from app.engine.rules import Context, Money, evaluate

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@dataclass
class FakeCoupon:
    deleted: bool = False
    active: bool = True
    allow_anonymous: bool = False
    valid_for: list = field(default_factory=list)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_redemptions: int = -1
    max_redemptions_per_customer: int = -1
    redemption_count: int = 0
    discount_type: str = "ABSOLUTE"
    discount_percentage: Decimal | None = None
    discount_amount: Decimal | None = Decimal("25")
    currency: str | None = "USD"
    min_order_amount: Decimal | None = None
    required_product: str | None = None


def usd(amount) -> Money:
    return Money(Decimal(str(amount)), "USD")


CUSTOMER = Context(identified=True, customer_number="C1", order_total=usd(50), discount=usd(25))


def types(coupon, context=CUSTOMER, now=NOW):
    return [v.type for v in evaluate(coupon, context, now)]


def test_valid_coupon_has_no_violations():
    assert types(FakeCoupon()) == []


def test_each_rule_in_design_order():
    assert types(FakeCoupon(deleted=True)) == [rules.NOT_FOUND]
    assert types(FakeCoupon(), Context(order_total=usd(50), discount=usd(25))) == [rules.FORBIDDEN]
    assert types(FakeCoupon(valid_for=["C2"])) == [rules.FORBIDDEN]
    assert types(FakeCoupon(active=False)) == [rules.NOT_ACTIVE]
    assert types(FakeCoupon(valid_from=NOW + timedelta(seconds=1))) == [rules.NOT_ACTIVE]
    assert types(FakeCoupon(valid_until=NOW - timedelta(seconds=1))) == [rules.EXPIRED]
    assert types(FakeCoupon(max_redemptions=3, redemption_count=3)) == [rules.EXCEEDED]
    per_customer = Context(
        identified=True, customer_number="C1", customer_uses=1, order_total=usd(50)
    )
    assert types(FakeCoupon(max_redemptions_per_customer=1), per_customer) == [rules.EXCEEDED]
    eur = Context(identified=True, order_total=Money(Decimal(50), "EUR"), discount=usd(25))
    assert types(FakeCoupon(), eur)[0] == rules.CURRENCY
    assert types(FakeCoupon(min_order_amount=Decimal(75))) == [rules.TOTAL_TOO_LOW]
    wrong_discount = Context(
        identified=True, order_total=usd(50), discount=Money(Decimal(5), "EUR")
    )
    assert types(FakeCoupon(), wrong_discount) == [rules.DISCOUNT_CURRENCY]
    too_much = Context(identified=True, order_total=usd(50), discount=usd("25.01"))
    assert types(FakeCoupon(), too_much) == [rules.DISCOUNT_AMOUNT]


def test_violations_come_in_order_when_several_apply():
    coupon = FakeCoupon(
        active=False, valid_until=NOW - timedelta(days=1), max_redemptions=1, redemption_count=1
    )
    assert types(coupon, Context(order_total=usd(50), discount=usd(99))) == [
        rules.FORBIDDEN,
        rules.NOT_ACTIVE,
        rules.EXPIRED,
        rules.EXCEEDED,
        rules.DISCOUNT_AMOUNT,
    ]


def test_anonymous_coupon_and_per_customer_limit_need_a_customer():
    assert types(FakeCoupon(allow_anonymous=True), Context(order_total=usd(50))) == []
    client_without_customer = Context(identified=True, order_total=usd(50))
    assert types(FakeCoupon(max_redemptions_per_customer=2), client_without_customer) == [
        rules.FORBIDDEN
    ]


def test_boundaries_are_inclusive_where_documented():
    assert types(FakeCoupon(valid_from=NOW, valid_until=NOW)) == []
    assert types(FakeCoupon(min_order_amount=Decimal(50))) == []
    assert types(FakeCoupon(max_redemptions=3, redemption_count=2)) == []


def test_percent_discount_allowed_is_rounded_half_up():
    coupon = FakeCoupon(discount_type="PERCENT", discount_percentage=Decimal(15), currency=None)
    total = usd("33.30")  # 15% = 4.995 -> 5.00
    assert rules.allowed_discount(coupon, total) == Decimal("5.00")
    ok = Context(identified=True, order_total=total, discount=usd("5.00"))
    assert types(coupon, ok) == []
    over = Context(identified=True, order_total=total, discount=usd("5.01"))
    assert types(coupon, over) == [rules.DISCOUNT_AMOUNT]


def test_required_product_and_missing_amount():
    coupon = FakeCoupon(required_product="pizza", min_order_amount=Decimal(500), currency="RUB")
    context = Context(identified=True, order_total=Money(Decimal(420), "RUB"), products=frozenset())
    violations = evaluate(coupon, context, NOW)
    assert [v.type for v in violations] == [rules.TOTAL_TOO_LOW, rules.PRODUCT_MISSING]
    assert violations[0].data["missing"] == Decimal(80)


def test_status():
    assert rules.status(FakeCoupon(), NOW) == "VALID"
    assert rules.status(FakeCoupon(valid_from=NOW + timedelta(days=1)), NOW) == "INACTIVE"
    assert rules.status(FakeCoupon(valid_until=NOW - timedelta(days=1)), NOW) == "EXPIRED"
    assert rules.status(FakeCoupon(max_redemptions=1, redemption_count=1), NOW) == "USED"


amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
percentages = st.decimals(min_value="0.0001", max_value=100, places=4, allow_nan=False)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CLF"])


@given(amounts, percentages, currencies)
def test_percent_of_is_exact_half_up_rounding(amount, percentage, currency):
    result = percent_of(amount, percentage, currency)
    exact = amount * percentage / Decimal(100)
    unit = Decimal(1).scaleb(-minor_units(currency))
    assert result.as_tuple().exponent == -minor_units(currency)
    assert abs(result - exact) <= unit / 2
    # Half up: an exact half always rounds away from zero.
    if abs(result - exact) == unit / 2:
        assert result > exact
    assert Decimal(0) <= result <= round_money(amount, currency)


@given(amounts, percentages, percentages, currencies)
def test_percent_of_is_monotonic_in_the_percentage(amount, p1, p2, currency):
    low, high = sorted((p1, p2))
    assert percent_of(amount, low, currency) <= percent_of(amount, high, currency)


def test_round_money_minor_units():
    assert round_money(Decimal("2.5"), "JPY") == Decimal(3)
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.001")
    assert round_money(Decimal("0.005"), "EUR") == Decimal("0.01")
    assert round_money(Decimal("0.004999"), "EUR") == Decimal("0.00")


def test_not_active_says_whether_switched_off_or_not_started():
    (off,) = evaluate(FakeCoupon(active=False), CUSTOMER, NOW)
    later = NOW + timedelta(days=1)
    (early,) = evaluate(FakeCoupon(valid_from=later), CUSTOMER, NOW)
    assert off.data == {"valid_from": None, "inactive": True}
    assert early.data == {"valid_from": later, "inactive": False}


def test_order_total_too_low_reports_the_missing_amount():
    coupon = FakeCoupon(min_order_amount=Decimal("500"), discount_type="FREE_PRODUCT")
    context = Context(identified=True, order_total=usd("499.5"))
    (violation,) = evaluate(coupon, context, NOW)
    assert violation.type == rules.TOTAL_TOO_LOW
    assert violation.data == {"minimum": Decimal("500"), "missing": Decimal("0.5")}


def test_live_holds_take_uses_like_redemptions():
    coupon = FakeCoupon(max_redemptions=3, redemption_count=1)
    assert evaluate(coupon, Context(identified=True, live_holds=1, order_total=usd(50)), NOW) == []
    refused = evaluate(coupon, Context(identified=True, live_holds=2, order_total=usd(50)), NOW)
    assert [v.type for v in refused] == [rules.EXCEEDED]
    unlimited = FakeCoupon(redemption_count=10)
    assert (
        evaluate(unlimited, Context(identified=True, live_holds=99, order_total=usd(50)), NOW) == []
    )
