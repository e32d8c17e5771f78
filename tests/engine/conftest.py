"""Small factories for engine tests: a tenant, coupons and callers, no HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.auth import ANONYMOUS, REDEEM, REDEEM_ON_BEHALF, Caller
from app.engine.catalog import coupons
from app.engine.rules import Money
from app.engine.tenants import create_tenant, get_tenant
from app.engine.usage.state import Order


@pytest.fixture
def shop(app):
    """The tenant `shop` (USD), as the engine sees it."""
    create_tenant(slug="shop", currency="USD")
    return get_tenant("shop")


@pytest.fixture
def coupon(shop):
    """`coupon(code, **definition)`: a 10 USD coupon for identified callers by default."""

    def make(code: str = "TEN", **definition):
        values = {
            "code": code,
            "discount_type": "ABSOLUTE",
            "discount_amount": Decimal(10),
            "discount_currency": "USD",
            **definition,
        }
        return coupons.create_coupon(tenant=shop, values=values).code

    return make


def client_caller(*scopes: str) -> Caller:
    return Caller(kind="client", tenant="shop", scopes=frozenset(scopes), subject="cl_test")


SHOP = client_caller(REDEEM)
ON_BEHALF = client_caller(REDEEM_ON_BEHALF)
ANYONE = ANONYMOUS


def customer(number: str) -> Caller:
    return Caller(kind="customer", tenant="shop", scopes=frozenset({REDEEM}), subject=number)


def order(total: int = 100, order_id: str | None = None, **extra) -> Order:
    return Order(total=Money(Decimal(total), "USD"), order_id=order_id, **extra)
