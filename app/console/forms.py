"""From form fields to what the API's schemas take: the console validates through the very
schemas the JSON API uses, so a value refused there is refused here, in the same words."""

from __future__ import annotations

import json
from collections.abc import Mapping

from marshmallow import Schema
from marshmallow import ValidationError as SchemaError

from app.dialects.common import check_storable
from app.errors import DomainError, ValidationFailed


def text(form: Mapping, name: str) -> str | None:
    """A field's text, stripped; None when empty."""
    value = (form.get(name) or "").strip()
    return value or None


def number(form: Mapping, name: str) -> int | float | str | None:
    """A numeric field as JSON would carry it (the schema checks it); None when empty."""
    value = text(form, name)
    if value is None:
        return None
    try:
        as_float = float(value)
    except ValueError:
        return value  # the schema names it as not a number
    return int(as_float) if as_float.is_integer() and "." not in value else as_float


def money(form: Mapping, amount: str, currency: str) -> dict | None:
    value = number(form, amount)
    return None if value is None else {"amount": value, "currency": text(form, currency)}


def checked(form: Mapping, name: str) -> bool:
    return form.get(name) == "on"


def json_object(form: Mapping, name: str) -> dict:
    """A field holding a JSON object (empty: {}); ValidationFailed otherwise."""
    value = text(form, name)
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except RecursionError:
        raise ValidationFailed(f"{name}: nested too deeply") from None
    except ValueError as error:
        raise ValidationFailed(f"{name}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(parsed, dict):
        raise ValidationFailed(f"{name}: a JSON object is expected ({{...}})")
    check_storable(parsed, root=name)  # "\u0000" and lone surrogates, as the API refuses them
    return parsed


def load(schema: Schema, data: dict, *, partial: bool = False) -> dict:
    """`data` through an API schema; its messages as a ValidationFailed."""
    try:
        # No partial=False: it would override a nested schema's own partial loading.
        return schema.load(data, partial=True) if partial else schema.load(data)
    except SchemaError as error:
        raise ValidationFailed(
            "Some fields are not valid",
            details=[{"field": field, "message": message} for field, message in _flat(error)],
        ) from None


def _flat(error: SchemaError, prefix: str = "") -> list[tuple[str, str]]:
    found = []

    def walk(messages, path: str) -> None:
        if isinstance(messages, dict):
            for key, inner in messages.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(messages, list):
            for message in messages:
                walk(message, path)
        else:
            found.append((path or "_schema", str(messages)))

    walk(error.messages, prefix)
    return found


def problems(error: DomainError) -> list[str]:
    """What a page says about a refused form: the message, then each field's."""
    lines = [error.message]
    for detail in error.details:
        field = detail.get("field") or detail.get("name") or ""
        message = detail.get("message") or detail.get("type") or ""
        lines.append(f"{field}: {message}" if field else message)
    return lines
