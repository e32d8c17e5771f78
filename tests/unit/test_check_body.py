"""The promo check's body read without marshmallow answers what PromoCheckSchema loads."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.dialects.promo.check_body import read_check
from app.dialects.promo.schemas import PromoCheckSchema

SCHEMA = PromoCheckSchema()


def often(valid, anything):
    return st.one_of(valid, valid, valid, anything)


anything = st.sampled_from([None, True, 5, 1.5, "", "x" * 200, [], {}, {"a": 1}])
amounts = often(
    st.one_of(st.integers(0, 10**12), st.floats(0, 10**6).map(lambda x: round(x, 2))),
    st.one_of(
        st.integers(-5, 10**13),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([-0.0, 1e-5, 0.00005, "10", "1e3", True, None]),
    ),
)
codes = often(st.text(min_size=1, max_size=64), st.text(max_size=140))
quantities = often(st.integers(1, 1_000_000), st.sampled_from([0, -1, 1_000_001, True, 2.0, "2"]))


@st.composite
def items(draw):
    item = {}
    if draw(st.integers(0, 5)):
        item["code"] = draw(often(st.text(min_size=1, max_size=128), st.text(max_size=140)))
    if draw(st.integers(0, 2)) == 0:
        item["quantity"] = draw(quantities)
    if draw(st.integers(0, 4)) == 0:
        item["price"] = draw(anything)  # whole order documents: dropped
    return item if draw(st.integers(0, 19)) else draw(anything)


@st.composite
def bodies(draw):
    body = {}
    if draw(st.integers(0, 5)):
        body["coupon"] = draw(st.one_of(codes, st.none()))
    if draw(st.integers(0, 5)):
        body["notGiftsAndNotDeliveryTotal"] = draw(amounts)
    if draw(st.integers(0, 5)):
        order = {"items": draw(st.lists(items(), max_size=4))} if draw(st.integers(0, 9)) else {}
        if draw(st.integers(0, 4)) == 0:
            order["id"] = draw(anything)
        body["order"] = order if draw(st.integers(0, 9)) else draw(anything)
    if draw(st.integers(0, 3)):
        customer = {"phone": draw(often(st.text(max_size=32), st.text(max_size=40)))}
        if draw(st.integers(0, 4)) == 0:
            customer["email"] = draw(anything)
        body["customer"] = customer if draw(st.integers(0, 9)) else draw(anything)
    if draw(st.integers(0, 19)) == 0:
        body["other"] = 1
    return body if draw(st.integers(0, 19)) else draw(anything)


@settings(max_examples=500)
@given(body=bodies())
def test_what_it_reads_is_what_the_schema_loads(body):
    read = read_check(body)
    if read is None:
        return  # the schema reads it
    assert SCHEMA.load(body) == read


COMMON = {
    "coupon": "GIFT",
    "notGiftsAndNotDeliveryTotal": 600,
    "order": {"items": [{"code": "pizza", "price": 5}, {"code": "cola", "quantity": 2}, {}]},
    "customer": {"phone": "79991234567", "name": "Ivan"},
}


def test_the_common_bodies_are_read_here():
    assert read_check(COMMON) == {
        "coupon": "GIFT",
        "total": Decimal(600),
        "order": {
            "items": [
                {"code": "pizza", "quantity": 1},
                {"code": "cola", "quantity": 2},
                {"quantity": 1},
            ]
        },
        "customer": {"phone": "79991234567"},
        "products": frozenset({"pizza", "cola"}),
    }
    assert read_check({}) == {"products": frozenset()}


@pytest.mark.parametrize(
    "body",
    [
        {"order": {"items": None}},
        {"order": {}},
        {"order": None, "customer": None, "coupon": None, "notGiftsAndNotDeliveryTotal": None},
        {"order": {"items": []}, "customer": {}},
        {"order": {"items": [{"code": None}]}, "customer": {"phone": ""}},
        {"notGiftsAndNotDeliveryTotal": -0.0},
    ],
)
def test_edge_bodies_are_read_as_the_schema_loads_them(body):
    read = read_check(body)
    assert read is not None and read == SCHEMA.load(body)


@pytest.mark.parametrize(
    "changed",
    [
        {"coupon": ""},
        {"coupon": "x" * 65},
        {"coupon": 5},
        {"notGiftsAndNotDeliveryTotal": -1},
        {"notGiftsAndNotDeliveryTotal": 10**12 + 1},
        {"notGiftsAndNotDeliveryTotal": 0.00001},
        {"notGiftsAndNotDeliveryTotal": True},
        {"notGiftsAndNotDeliveryTotal": float("nan")},
        {"order": []},
        {"order": {"items": {}}},
        {"order": {"items": [None]}},
        {"order": {"items": [{"code": ""}]}},
        {"order": {"items": [{"code": "x" * 129}]}},
        {"order": {"items": [{"code": 5}]}},
        {"order": {"items": [{"quantity": 0}]}},
        {"order": {"items": [{"quantity": 1_000_001}]}},
        {"order": {"items": [{"quantity": True}]}},
        {"order": {"items": [{"quantity": 2.0}]}},
        {"order": {"items": [{}] * 1001}},
        {"customer": []},
        {"customer": {"phone": "x" * 33}},
        {"customer": {"phone": 5}},
        {"other": 1},
    ],
)
def test_what_the_schema_refuses_is_left_to_it(changed):
    body = {**COMMON, **changed}
    assert read_check(body) is None
    with pytest.raises(ValidationError):
        SCHEMA.load(body)
