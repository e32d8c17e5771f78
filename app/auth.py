"""Who is calling: bearer JWTs (clients and customers), scopes, tenant binding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from flask import current_app, g, request

from app.database import wall_clock
from app.engine.cache import named_cache
from app.engine.clients import live_version
from app.errors import InsufficientScope, InvalidToken, NotFound, Unauthorized

ALGORITHMS = ["HS256"]  # fixed: never taken from the token header
MANAGE = "coupon_manage"
REDEEM = "coupon_redeem"
REDEEM_ON_BEHALF = "coupon_redeem_on_behalf"
SCOPE_PREFIX = "hybris."
TENANT_SCOPE = "hybris.tenant="


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of a request (or the anonymous one)."""

    kind: str  # "anonymous" | "client" | "customer"
    tenant: str | None = None
    scopes: frozenset[str] = frozenset()
    subject: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def customer_number(self) -> str | None:
        """The customer a customer token speaks for."""
        return self.subject if self.kind == "customer" else None

    @property
    def manages(self) -> bool:
        return MANAGE in self.scopes

    @property
    def on_behalf(self) -> bool:
        return REDEEM_ON_BEHALF in self.scopes

    @property
    def identified(self) -> bool:
        """May use coupons that are not granted to anonymous users."""
        return self.kind == "customer" or bool({REDEEM, REDEEM_ON_BEHALF} & self.scopes)

    @property
    def identity(self) -> str:
        """Who this is, as one string: what Idempotency-Keys are scoped to."""
        return f"{self.kind}:{self.subject}" if self.subject else self.kind

    @property
    def order_owner(self) -> str:
        """Whose order ids these are. A client speaks for the shop, so its order ids are
        the shop's ("", shared by every client); a customer's are that customer's, and
        anonymous callers' their own ("*"), so nobody can squat an order id of the shop
        or of another customer."""
        if self.kind == "client":
            return ""
        return self.subject if self.kind == "customer" and self.subject else "*"

    def acting_customer(self, requested: str | None) -> str | None:
        """The customer a redemption is for: the token's, or the requested one on behalf."""
        if self.kind == "customer":
            return self.subject
        if self.on_behalf:
            return requested
        return None


ANONYMOUS = Caller(kind="anonymous")


def parse_scope(text: str | None) -> tuple[str | None, set[str]]:
    """Split an OAuth scope string into its tenant and its unprefixed scopes; ValueError
    when it names more than one tenant (a token is bound to one)."""
    tenant = None
    scopes: set[str] = set()
    for item in (text or "").split():
        if item.startswith(TENANT_SCOPE):
            if tenant is not None:
                raise ValueError("Name one tenant (hybris.tenant=...) in the scope, not several")
            tenant = item[len(TENANT_SCOPE) :]
        else:
            scopes.add(item.removeprefix(SCOPE_PREFIX))
    return tenant, scopes


def format_scope(tenant: str, scopes: frozenset[str] | set[str]) -> str:
    """The scope string as the tenant dialect spells it: `hybris.tenant=T hybris.coupon_manage`."""
    return " ".join([TENANT_SCOPE + tenant, *(SCOPE_PREFIX + s for s in sorted(scopes))])


def issue_token(
    *,
    tenant: str,
    subject: str,
    kind: str,
    scopes: frozenset[str] | set[str],
    version: int | None = None,
):
    """A signed JWT for a client or a customer; returns (token, lifetime seconds).

    `version` is a client's token version (see services.clients): a token is
    refused once its client is revoked or its secret rotated."""
    ttl = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
    now = wall_clock()
    claims = {
        "iss": current_app.config["JWT_ISSUER"],
        "aud": current_app.config["JWT_AUDIENCE"],
        "sub": subject,
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
        "tenant": tenant,
        "kind": kind,
        "scope": " ".join(sorted(scopes)),
    }
    if version is not None:
        claims["ver"] = version
    token = jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHMS[0])
    return token, ttl


def decode_token(token: str) -> Caller:
    """The caller of a verified token; a token seen lately is not verified again.

    Kept at most CACHE_TTL_SECONDS and never past its own expiry.
    """
    cache = named_cache("token")
    caller = cache.peek(token)
    if caller is None:
        caller, expires = _verify(token)
        cache.put(token, caller, ttl=expires - wall_clock().timestamp())
    return caller


def _verify(token: str) -> tuple[Caller, float]:
    """Check signature, expiry, issuer and audience; InvalidToken otherwise."""
    config = current_app.config
    claims = None
    # The current key first; earlier ones only while SECRET_KEY_FALLBACKS lists them.
    for key in (config["SECRET_KEY"], *config["SECRET_KEY_FALLBACKS"]):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=config["JWT_AUDIENCE"],
                issuer=config["JWT_ISSUER"],
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise InvalidToken() from None
    if claims is None:
        raise InvalidToken()
    kind = claims.get("kind")
    tenant = claims.get("tenant")
    if kind not in ("client", "customer") or not isinstance(tenant, str):
        raise InvalidToken()
    if kind == "client" and live_version(str(claims["sub"])) != claims.get("ver", 1):
        raise InvalidToken("The client was revoked or its secret rotated")
    caller = Caller(
        kind=kind,
        tenant=tenant,
        scopes=frozenset(str(claims.get("scope", "")).split()),
        subject=str(claims["sub"]),
    )
    return caller, float(claims["exp"])


def bearer_caller() -> Caller:
    """The caller named by this request's bearer token, or ANONYMOUS (kept on g)."""
    here = g._get_current_object()  # asked twice a request: one proxy lookup each time
    caller = here.get("caller")
    if caller is None:
        header = request._get_current_object().environ.get("HTTP_AUTHORIZATION", "")
        if not header:
            caller = ANONYMOUS
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidToken("Use an 'Authorization: Bearer <token>' header")
            caller = decode_token(token.strip())
        here.caller = caller
    return caller


def current_caller(tenant: str) -> Caller:
    """The caller of this request on `tenant`'s resources."""
    caller = bearer_caller()
    # A token is bound to one tenant; other tenants' resources do not exist for it.
    if not caller.is_anonymous and caller.tenant != tenant:
        raise NotFound("Tenant not found")
    return caller


def require_manage(caller: Caller) -> None:
    """Management operations need the manage scope."""
    if caller.is_anonymous:
        raise Unauthorized("Requires scope hybris.coupon_manage")
    if not caller.manages:
        raise InsufficientScope("Requires scope hybris.coupon_manage")


def require_client(caller: Caller) -> None:
    """Customer account operations are called with a client token of the tenant."""
    if caller.kind != "client":
        raise Unauthorized("Requires a client access token of the tenant")


def require_customer(caller: Caller) -> None:
    """Operations on one's own account need a customer token."""
    if caller.kind != "customer":
        raise Unauthorized("Requires a customer access token")
