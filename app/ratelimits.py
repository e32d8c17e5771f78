"""Rate limits, one design: budgets keyed by who is asking, not only where from.

- **Guessing budget** (`RATELIMIT_GUESSING`): what anonymous callers and customer
  tokens may spend looking codes up. Anonymous callers are keyed by their client
  address, customers by (tenant, customer number). Every route that looks a code up
  (a coupon by code, validation, redemption, holds, carts, qualifications, the promo
  check, redeem and release, activation links) draws on the same budget, one unit
  per code looked up: a cart of 50 codes costs 50.
- **Client budget** (`RATELIMIT_CLIENT`): server clients (client-credentials tokens)
  spend it instead, keyed by client id, so a storefront's backend calling from one
  address is never throttled as if it were one guessing shopper. It is generous.
- **Managers** (a verified token with the manage scope) spend nothing.
- **Credentials** (`RATELIMIT_AUTH`): failed attempts at the token endpoint and with
  X-API-Token, per client address; failed logins per (tenant, email). While a budget
  is spent, every attempt it covers is refused, the right credentials too.
- **Signup** (`RATELIMIT_SIGNUP`) per calling client, and a per-address ceiling
  (`RATELIMIT_FLOOD`) on signups and logins that only a flood meets.

A spent budget answers 429 with `Retry-After` (seconds). Counters live in
`RATELIMIT_STORAGE_URI` (Redis in production, so every worker and host shares
them); when that store is unreachable, requests pass and a warning is logged.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps

from flask import current_app, request
from limits import RateLimitItem, parse

from app.auth import Caller, bearer_caller
from app.errors import RateLimited, Unauthorized
from app.extensions import limiter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    name: str
    setting: str  # the config key that holds its rate ("60/minute")


GUESSING = Budget("guessing", "RATELIMIT_GUESSING")
CLIENT = Budget("client", "RATELIMIT_CLIENT")
CREDENTIALS = Budget("credentials", "RATELIMIT_AUTH")
SIGNUP = Budget("signup", "RATELIMIT_SIGNUP")
FLOOD = Budget("flood", "RATELIMIT_FLOOD")


def enabled() -> bool:
    return bool(current_app.config["RATELIMIT_ENABLED"]) and limiter.enabled


def _rate(budget: Budget) -> RateLimitItem:
    rates = current_app.extensions.setdefault("coupon.rates", {})
    item = rates.get(budget.name)
    if item is None:
        item = rates[budget.name] = parse(current_app.config[budget.setting])
    return item


def client_address() -> str:
    """Whom an address budget is keyed by: the client's IPv4 address, or its IPv6 /64 (one
    host holds a whole /64, so single addresses would be free to rotate through).

    Behind a proxy, run with TRUSTED_PROXY_COUNT so this is the client, not the balancer.
    """
    address = request.remote_addr or "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def spend(budget: Budget, *key: str, cost: int = 1) -> None:
    """Take `cost` from the budget of `key`; RateLimited (429) when it does not hold it."""
    _ask(budget, key, cost, take=True)


def refuse_if_spent(budget: Budget, *key: str) -> None:
    """RateLimited when the budget of `key` is spent, without spending anything."""
    _ask(budget, key, 1, take=False)


def _ask(budget: Budget, key: tuple[str, ...], cost: int, *, take: bool) -> None:
    if not enabled():
        return
    item, strategy = _rate(budget), limiter.limiter
    try:
        if (strategy.hit if take else strategy.test)(item, budget.name, *key, cost=cost):
            return
        reset = strategy.get_window_stats(item, budget.name, *key).reset_time
    except Exception as error:  # noqa: BLE001 - the store is down: serve, and say so
        log.warning("rate-limit store unavailable", extra={"error": type(error).__name__})
        return
    wait = str(max(1, math.ceil(reset - time.time())))
    raise RateLimited(
        headers={
            "Retry-After": wait,
            # Which budget was spent: its size per window, none left, seconds to the reset.
            "X-RateLimit-Limit": str(item.amount),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": wait,
        }
    )


def spend_lookups(caller: Caller, cost: int = 1) -> None:
    """Charge `cost` code lookups to the caller: managers nothing, server clients their
    client budget, customers and anonymous callers the guessing budget."""
    if caller.manages:
        return
    if caller.kind == "client":
        spend(CLIENT, caller.tenant or "", caller.subject or "", cost=cost)
    elif caller.kind == "customer":
        spend(GUESSING, "customer", caller.tenant or "", caller.subject or "", cost=cost)
    else:
        spend(GUESSING, "address", client_address(), cost=cost)


def looks_up_codes(count: Callable[[dict], int] | None = None, *, by_address: bool = False):
    """The view looks codes up: charge its caller before it runs, one per code.

    `count(data)` says how many codes a request names; put the decorator under
    `@blp.arguments` so that it receives the parsed body (views are MethodView
    methods: `(self, data, ...)`). The caller's token was verified before any body
    was parsed, so a forged manager token never skips the budget. `by_address`: a route
    that names no tenant (an activation link) charges the address whoever calls, as no
    token of any tenant speaks for it.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            cost = count(args[1]) if count else 1
            if by_address:
                spend(GUESSING, "address", client_address(), cost=cost)
            else:
                spend_lookups(bearer_caller(), cost)
            return view(*args, **kwargs)

        return wrapper

    return decorator


@contextmanager
def credentials_attempt(*key: str, failure: type[Exception] = Unauthorized) -> Iterator[None]:
    """A credential check keyed by `key`: refused (429) while its budget of failures is
    spent, the right credentials too; a `failure` raised inside counts against it."""
    refuse_if_spent(CREDENTIALS, *key)
    try:
        yield
    except failure:
        try:
            spend(CREDENTIALS, *key)
        except RateLimited:
            pass  # this failure's own answer (401) stands; the next attempt gets the 429
        raise
