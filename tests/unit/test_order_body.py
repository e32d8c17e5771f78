"""The order body read without marshmallow answers what the schema's `load` answers."""

import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.dialects.tenant.schemas.coupons import RedemptionRequestSchema, ValidationRequestSchema
from app.dialects.tenant.schemas.order_body import read_order
from app.engine import canonical

SCHEMAS = {True: RedemptionRequestSchema(), False: ValidationRequestSchema()}

# Mostly what a shop sends, so bodies are often read here; the rest is anything.
valid_amounts = st.one_of(
    st.integers(min_value=0, max_value=10**12),
    st.floats(min_value=0, max_value=10**6).map(lambda x: round(x, 2)),
    st.sampled_from([0, 0.0, -0.0, 10.5, 1e12, 10**12]),
)
any_amount = st.one_of(
    st.integers(min_value=-5, max_value=10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=10).map(lambda x: round(x, 5)),
    st.sampled_from([-1, -0.01, 1e-5, 0.00001, 0.005, 0.0005, 1e12 + 1, 10**12 + 1]),
    st.sampled_from([True, False, None, "10", "1e3", "abc", [], {}]),
)
currencies = st.one_of(
    st.sampled_from(["USD", "JPY", "KWD", "EUR", "CLF"]),
    st.sampled_from(["USD", "JPY", "KWD", "CLF", "usd", "XXX", "ABC", "", 5, None]),
)


def often(valid, anything):
    return st.one_of(valid, valid, valid, anything)


@st.composite
def money(draw):
    value = {"amount": draw(often(valid_amounts, any_amount)), "currency": draw(currencies)}
    if draw(st.integers(0, 9)) == 0:
        value.pop(draw(st.sampled_from(["amount", "currency"])))
    if draw(st.integers(0, 9)) == 0:
        value["extra"] = 1
    return value if draw(st.integers(0, 9)) else draw(st.sampled_from([None, 5, "x", []]))


valid_texts = st.one_of(
    st.text(min_size=1, max_size=64), st.sampled_from(["C1", "c1 ", "x" * 64, "x" * 128])
)
any_text = st.one_of(
    st.text(max_size=140),
    st.text(alphabet=" c42\u200b\u0000\t\nＣ", max_size=70),
    st.sampled_from(["", " ", "x" * 65, "x" * 129]),
    st.sampled_from([None, 5, True, [], {}]),
)


@st.composite
def bodies(draw):
    body = {}
    for key, values in (
        ("orderTotal", money()),
        ("discount", money()),
        ("customerNumber", often(valid_texts, any_text)),
        ("orderId", often(valid_texts, any_text)),
    ):
        if draw(st.integers(0, 5)):
            body[key] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.sampled_from(["items", "metadata", "shippingTotal", "other"]))] = draw(
            st.sampled_from([None, {}, [], {"a": "b"}])
        )
    return body if draw(st.integers(0, 19)) else draw(st.sampled_from([[], None, "x", 1]))


@pytest.mark.parametrize("discount_required", [True, False])
@settings(max_examples=400)
@given(body=bodies())
def test_what_it_reads_is_what_the_schema_loads(discount_required, body):
    read = read_order(body, discount_required=discount_required)
    if read is None:
        return  # the schema reads it
    assert SCHEMAS[discount_required].load(body) == read


def test_the_common_bodies_are_read_here():
    body = {
        "orderTotal": {"amount": 100, "currency": "USD"},
        "discount": {"amount": 10.5, "currency": "USD"},
        "customerNumber": " c42",
        "orderId": "order-1",
    }
    read = read_order(body, discount_required=True)
    assert read == {
        "order_total": {"amount": Decimal(100), "currency": "USD"},
        "discount": {"amount": Decimal("10.5"), "currency": "USD"},
        "customer_number": "C42",
        "order_id": "order-1",
    }
    del body["discount"]
    assert read_order(body, discount_required=True) is None
    assert read_order(body, discount_required=False) is not None


@pytest.mark.parametrize(
    "changed",
    [
        {"orderTotal": {"amount": True, "currency": "USD"}},
        {"orderTotal": {"amount": float("nan"), "currency": "USD"}},
        {"orderTotal": {"amount": float("inf"), "currency": "USD"}},
        {"orderTotal": {"amount": -1, "currency": "USD"}},
        {"orderTotal": {"amount": 10**12 + 1, "currency": "USD"}},
        {"orderTotal": {"amount": 0.005, "currency": "USD"}},
        {"orderTotal": {"amount": 0.00005, "currency": "CLF"}},
        {"orderTotal": {"amount": 1, "currency": "usd"}},
        {"orderTotal": {"amount": 1, "currency": "USD", "extra": 1}},
        {"orderTotal": {"amount": 1}},
        {"orderTotal": None},
        {"discount": None},
        {"customerNumber": ""},
        {"customerNumber": " \u200b"},
        {"customerNumber": "x" * 65},
        {"orderId": ""},
        {"orderId": "x" * 129},
        {"orderId": 5},
        {"items": []},
        {"other": 1},
    ],
)
def test_what_the_schema_refuses_is_left_to_it(changed):
    body = {
        "orderTotal": {"amount": 100, "currency": "USD"},
        "discount": {"amount": 10, "currency": "USD"},
        "customerNumber": "C1",
        "orderId": "o-1",
        **changed,
    }
    for discount_required, schema in SCHEMAS.items():
        with pytest.raises(ValidationError):
            schema.load(body)
        assert read_order(body, discount_required=discount_required) is None


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_invisible_characters_are_found_in_ascii_as_elsewhere(text):
    # has_invisible's ASCII shortcut agrees with asking each character's category.
    slow = any(unicodedata.category(c) in ("Cc", "Cf") for c in text)
    assert canonical.has_invisible(text) is slow
