"""ISO 4217 currencies and rounding to a currency's minor unit (Decimal only)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel.numbers import get_currency_precision

_ACTIVE = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD
EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD
IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL
MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES
VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
CURRENCIES: frozenset[str] = frozenset(_ACTIVE.split())

# Amounts above this are refused as absurd rather than stored.
MAX_AMOUNT = Decimal("1000000000000")


def is_currency(code: str) -> bool:
    """True for an active ISO 4217 alphabetic code."""
    return code in CURRENCIES


@cache
def minor_units(currency: str) -> int:
    """Digits after the decimal point for the currency, from CLDR (Babel's maintained
    currency data: JPY 0, USD 2, KWD 3; also where CLDR rounds coarser than ISO 4217,
    as HUF and IDR 0)."""
    return get_currency_precision(currency)


def on_grid(amount: Decimal, currency: str) -> bool:
    """True when `amount` has no digits finer than the currency's minor unit."""
    return amount == amount.quantize(Decimal(1).scaleb(-minor_units(currency)))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's minor unit."""
    quantum = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, percentage: Decimal, currency: str) -> Decimal:
    """`percentage` % of `amount`, rounded half up to the currency's minor unit."""
    return round_money(amount * percentage / Decimal(100), currency)
