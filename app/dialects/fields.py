"""Field types every dialect uses: money amounts, currencies, UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.engine import canonical
from app.engine.money import MAX_AMOUNT, is_currency, minor_units, on_grid


class Amount(fields.Decimal):
    """A non-negative money amount: Decimal inside, a JSON number on the wire."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validate", validate.Range(min=0, max=MAX_AMOUNT))
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.as_tuple().exponent < -4:
            raise ValidationError("At most 4 decimal places.")
        return result

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else json_number(value)


def json_number(value) -> int | float:
    """A Decimal amount as the JSON number clients expect: 500, not 500.0000."""
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


class Currency(fields.String):
    """An active ISO 4217 code."""

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if not is_currency(result):
            raise ValidationError("Not an ISO 4217 currency code.")
        return result


class UTCDateTime(fields.AwareDateTime):
    """ISO 8601 in, UTC out as `2016-12-01T00:00:00.000Z`; naive input is taken as UTC."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)

    def _serialize(self, value: datetime | None, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MoneySchema(Schema):
    """An amount in a currency, never finer than the currency's minor unit."""

    amount = Amount(required=True)
    currency = Currency(required=True)

    @validates_schema
    def _on_grid(self, data, **kwargs):
        if "amount" in data and "currency" in data:
            check_grid(data["amount"], data["currency"], "amount")


def check_grid(amount: Decimal, currency: str, field: str) -> None:
    """Refuse an amount finer than the currency's minor unit (1.005 USD, 0.4 JPY): the
    engine splits discounts in whole minor units, and a sub-unit price has none to give."""
    if not on_grid(amount, currency):
        digits = minor_units(currency)
        raise ValidationError(
            f"Finer than {currency} allows ({digits} decimal places at most).", field
        )


class CustomerNumber(fields.String):
    """A customer number in its one form: NFKC, trimmed, upper case ("c42 " is "C42");
    control and zero-width characters are refused, so look-alikes never count apart."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validate", validate.Length(min=1, max=64))
        kwargs.setdefault(
            "metadata",
            {
                "description": "Compared in one form: trimmed, NFKC, upper case",
                "example": "C0123456789",
            },
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        number = canonical.customer_number(text)
        if number is None:
            raise ValidationError(
                "Not a customer number: empty, or holds control or zero-width characters."
            )
        return number


# \Z, not $: "$" also matches before a final newline.
METADATA_KEY = r"^[A-Za-z0-9_.-]{1,40}\Z"


def Metadata(**kwargs) -> fields.Dict:
    """The tenant's own string pairs: up to 50, keys of up to 40 `[A-Za-z0-9_.-]`,
    values of up to 500 characters. Never null (`{}` is none), so generated clients
    get one typed model for it."""
    kwargs.setdefault(
        "metadata",
        {
            "description": "Your own string pairs (up to 50; keys up to 40 characters of "
            "A-Z a-z 0-9 _ . -, values up to 500)",
            "example": {"channel": "newsletter"},
        },
    )
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(METADATA_KEY)),
        values=fields.String(validate=validate.Length(max=500)),
        validate=validate.Length(max=50),
        **kwargs,
    )
