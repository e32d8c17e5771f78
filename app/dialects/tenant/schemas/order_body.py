"""An order body of validation or redemption in its common shape, read without
marshmallow's machinery.

These are the service's hottest bodies, and loading one through its schema was a
seventh of a validation's CPU. `read_order` answers exactly what the schema's `load`
answers for a body of plain order total, discount, customer number and order id, and
None for anything else (lines, shipping, metadata, any doubt), which the schema then
reads and words the errors of. tests/unit/test_order_body.py holds the two equal.
"""

from __future__ import annotations

import math
from decimal import Decimal

from app.engine import canonical
from app.engine.money import MAX_AMOUNT, is_currency, on_grid

# Body keys read here, and their names in the loaded dict.
_MONEY = {"orderTotal": "order_total", "discount": "discount"}
_TEXT = {"customerNumber": "customer_number", "orderId": "order_id"}


def amount(value) -> Decimal | None:
    """A JSON number as the `Amount` field loads it (0 to MAX_AMOUNT, at most 4 decimal
    places), or None."""
    if type(value) is int:
        number = Decimal(value)
    elif type(value) is float and math.isfinite(value):
        number = Decimal(str(value))  # as marshmallow's Decimal field reads a float
    else:
        return None  # text, booleans, null: the schema says what is wrong
    if not 0 <= number <= MAX_AMOUNT or number.as_tuple().exponent < -4:
        return None
    return number


def _money(value) -> dict | None:
    """An amount and currency as MoneySchema loads them, or None."""
    if type(value) is not dict or len(value) != 2:
        return None
    currency = value.get("currency")
    if type(currency) is not str or not is_currency(currency):
        return None
    number = amount(value.get("amount"))
    if number is None:
        return None
    return {"amount": number, "currency": currency} if on_grid(number, currency) else None


def _text(name: str, value) -> str | None:
    if type(value) is not str:
        return None
    if name == "customer_number":
        number = canonical.customer_number(value)
        return number if number is not None and len(number) <= 64 else None
    return value if 1 <= len(value) <= 128 else None


def read_order(data, *, discount_required: bool) -> dict | None:
    """The loaded body, as RedemptionRequestSchema (or ValidationRequestSchema, whose
    discount is optional) loads it, or None when the schema must read it."""
    if type(data) is not dict:
        return None
    loaded: dict = {}
    for key, value in data.items():
        if key in _MONEY:
            name, read = _MONEY[key], _money(value)
        elif key in _TEXT:
            name = _TEXT[key]
            if value is None:  # both may be null
                loaded[name] = None
                continue
            read = _text(name, value)
        else:
            return None
        if read is None:
            return None
        loaded[name] = read
    if "order_total" not in loaded or (discount_required and "discount" not in loaded):
        return None
    return loaded
