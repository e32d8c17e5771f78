"""The promo check's body in its common shape, read without marshmallow's machinery.

Loading it through PromoCheckSchema (three nested schemas) was a quarter of a check's
CPU. `read_check` answers exactly what the schema's `load` answers for a body of code,
total, order items (code and whole quantity) and customer phone, and None for anything
else (text amounts, any doubt), which the schema then reads and words the errors of.
Storefronts send whole order documents: unknown keys inside `order`, its items and
`customer` are dropped, as the schema drops them. tests/unit/test_check_body.py holds
the two equal.
"""

from __future__ import annotations

from app.dialects.tenant.schemas.order_body import amount

_ABSENT = object()


def _text(value, longest: int, shortest: int = 1):
    """A string field's value (None allowed), or _ABSENT when the schema must read it."""
    if value is None or (type(value) is str and shortest <= len(value) <= longest):
        return value
    return _ABSENT


def _item(value) -> dict | None:
    if type(value) is not dict:
        return None
    item: dict = {"quantity": 1}
    if "code" in value:
        code = _text(value["code"], 128)
        if code is _ABSENT:
            return None
        item["code"] = code
    if "quantity" in value:
        quantity = value["quantity"]
        if type(quantity) is not int or not 1 <= quantity <= 1_000_000:
            return None
        item["quantity"] = quantity
    if "code" not in item:  # marshmallow orders the loaded keys as the schema declares them
        return item
    return {"code": item["code"], "quantity": item["quantity"]}


def _order(value) -> dict | None:
    if type(value) is not dict:
        return None
    if "items" not in value:
        return {}
    items = value["items"]
    if items is None:
        return {"items": None}
    if type(items) is not list or len(items) > 1000:
        return None
    loaded = [_item(item) for item in items]
    return None if any(item is None for item in loaded) else {"items": loaded}


def read_check(data) -> dict | None:
    """The loaded body, as PromoCheckSchema loads it, or None when the schema must read it."""
    if type(data) is not dict:
        return None
    loaded: dict = {}
    for key, value in data.items():
        if key == "coupon":
            read = _text(value, 64)
            name = "coupon"
        elif key == "notGiftsAndNotDeliveryTotal":
            read = None if value is None else amount(value)
            if value is not None and read is None:
                return None
            name = "total"
        elif key == "order":
            read = None if value is None else _order(value)
            if value is not None and read is None:
                return None
            name = "order"
        elif key == "customer":
            if value is None:
                read = None
            elif type(value) is not dict:
                return None
            else:
                read = {}
                if "phone" in value:
                    phone = _text(value["phone"], 32, shortest=0)
                    if phone is _ABSENT:
                        return None
                    read["phone"] = phone
            name = "customer"
        else:
            return None
        if read is _ABSENT:
            return None
        loaded[name] = read
    items = (loaded.get("order") or {}).get("items") or []
    loaded["products"] = frozenset(item["code"] for item in items if item.get("code"))
    return loaded
