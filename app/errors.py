"""Domain errors and the one place that renders them, per dialect.

Services raise `DomainError` subclasses; HTTP-level failures (404 route, 405,
415, malformed JSON, schema validation, rate limits) and database failures
(an outage is a 503 with Retry-After) are translated into the same classes,
then `render` answers in the dialect the request's blueprint declares:

- tenant coupons, customers: {"status", "type", "message", "details"?}
- promo codes:               {"statusCode", "error", "message", "code"?}
- OAuth2 token endpoint:     RFC 6749 {"error", "error_description"}
- everything else:           RFC 9457 problem+json
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, default_exceptions

from app.dialects.promo.texts import promo_text

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A failure with a stable machine-readable type and an HTTP status."""

    status: int = 400
    type: str = "bad_request"
    message: str = "Bad request"
    # The promo dialect reports a short code for some failures (e.g. PROMO_IS_EXISTS).
    code: str | None = None
    # Values for a localised message text (the promo dialect's, see app.dialects.promo.texts).
    params: dict = {}

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict] | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message or self.message)
        if message is not None:
            self.message = message
        self.details = details or []
        self.headers = headers or {}


class ValidationFailed(DomainError):
    status, type, message = 400, "validation_failed", "Invalid request payload"


class Unauthorized(DomainError):
    status, type, message = 401, "unauthorized", "Authentication required"


class InvalidToken(DomainError):
    status, type, message = 401, "invalid_token", "The access token is invalid or expired"


class InsufficientScope(DomainError):
    status, type, message = 403, "insufficient_scope", "The token lacks the required scope"


class Forbidden(DomainError):
    status, type, message = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, type, message = 404, "not_found", "Resource not found"


class CouponNotFound(NotFound):
    """No coupon by this code: never made, deleted, or another tenant's (one answer)."""

    type, message = "coupon_not_found", "Coupon not found"


class MethodNotAllowed(DomainError):
    status, type, message = 405, "method_not_allowed", "Method not allowed on this resource"


class Conflict(DomainError):
    status, type, message = 409, "conflict", "Conflict with the current state"


class Gone(DomainError):
    status, type, message = 410, "gone", "Resource is no longer available"


class PayloadTooLarge(DomainError):
    status, type, message = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(DomainError):
    status, type, message = 415, "unsupported_media_type", "Send a JSON body (application/json)"


class IdempotencyKeyReused(DomainError):
    status, type = 422, "idempotency_key_reused"
    message = "Idempotency-Key was already used with a different request"


class IdempotencyInProgress(DomainError):
    status, type = 409, "idempotency_in_progress"
    message = "A request with this Idempotency-Key is still being processed"


class RateLimited(DomainError):
    status, type, message = 429, "rate_limited", "Too many requests"


class InternalError(DomainError):
    status, type, message = 500, "internal_error", "Internal Server Error"


class ServiceUnavailable(DomainError):
    """The database cannot be reached (or is restarting): retry shortly."""

    status, type = 503, "service_unavailable"
    message = "The service is temporarily unavailable; retry shortly"
    RETRY_AFTER_SECONDS = 2

    def __init__(self, message: str | None = None):
        super().__init__(message, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


# Database failures that say "not now" rather than "not this": connection refused or
# dropped, a restart in progress, a lock or pool wait that timed out.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


# --- HTTP exceptions and schema errors -> domain errors -------------------------

_HTTP_TO_DOMAIN = {
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
}


def _flatten(messages, prefix: str = "") -> list[dict]:
    """Marshmallow's nested messages as a flat list of {field, type, message}."""
    details: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                name = prefix or None
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            details.extend(_flatten(value, name or ""))
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, dict | list):
                details.extend(_flatten(item, prefix))
            else:
                details.append(_detail(prefix, str(item)))
    else:
        details.append(_detail(prefix, str(messages)))
    return details


def _detail(field: str, message: str) -> dict:
    if message.startswith("Missing data"):
        kind = "missing"
    elif message.startswith("Unknown field"):
        kind = "unknown_field"
    else:
        kind = "invalid"
    return {"field": field or None, "type": kind, "message": message}


def from_http_exception(exc: HTTPException) -> DomainError:
    """Translate werkzeug/webargs/limiter exceptions into domain errors."""
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:
        # webargs nests by location ("json", "query", ...): drop that level.
        if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "headers"}:
            merged: dict = {}
            for value in messages.values():
                merged.update(value if isinstance(value, dict) else {"_schema": value})
            messages = merged
        if messages == {"_schema": ["Invalid JSON body."]}:
            return ValidationFailed("Malformed JSON body")
        return ValidationFailed(details=_flatten(messages))
    code = exc.code or 500
    cls = _HTTP_TO_DOMAIN.get(code)
    if cls is not None:
        error = cls()
        retry_after = getattr(exc, "retry_after", None)
        if code == 429 and retry_after:
            error.headers["Retry-After"] = str(retry_after)
        return error
    if 400 <= code < 500:
        error = DomainError(exc.description or HTTPStatus(code).phrase)
        error.status, error.type = code, code_phrase(code)
        return error
    return InternalError()


# --- rendering --------------------------------------------------------------------

# RFC 6749 names (section 5.2, and 4.1.2.1 for the server's own failures) for what the
# token endpoint can answer; any other refusal of the request is `invalid_request`.
_OAUTH_ERRORS = {
    "invalid_client": "invalid_client",
    "invalid_scope": "invalid_scope",
    "unsupported_grant_type": "unsupported_grant_type",
    "rate_limited": "slow_down",
    "service_unavailable": "temporarily_unavailable",
    "internal_error": "server_error",
}
OAUTH_ERROR_MEANINGS = {
    "invalid_request": "The request is malformed: a missing or bad parameter or body.",
    "invalid_client": "Unknown client, wrong secret, or a revoked client.",
    "invalid_scope": "A scope asked for is unknown or not granted to the client.",
    "unsupported_grant_type": "Only `client_credentials` is supported.",
    "slow_down": "Too many failed attempts from this address; see Retry-After.",
    "temporarily_unavailable": "The database cannot be reached; retry after Retry-After.",
    "server_error": "An unexpected failure on our side.",
}
# Dialects whose callers present bearer tokens (RFC 6750 challenges on 401 and 403).
_BEARER_DIALECTS = ("tenant", "promo")
# Failures that are about the bearer token itself, not other credentials.
_TOKEN_ERRORS = ("unauthorized", "invalid_token")


def dialect_for() -> str:
    """The error shape of this request: its blueprint's, else the one whose prefix it is under."""
    blueprints = current_app.blueprints
    blueprint = blueprints.get(request.blueprint or "")
    if blueprint is None:  # no route matched: the longest blueprint prefix of the path
        path, best = request.path, ""
        for candidate in blueprints.values():
            prefix = (candidate.url_prefix or "").split("<")[0].rstrip("/")
            if (
                prefix
                and (path == prefix or path.startswith(prefix + "/"))
                and len(prefix) > len(best)
            ):
                blueprint, best = candidate, prefix
    return getattr(blueprint, "dialect", "problem")


def _quoted(text: str) -> str:
    """An RFC 6750 quoted-string value: printable ASCII without quote and backslash."""
    return "".join(c for c in text if " " <= c <= "~" and c not in '"\\')


def _challenge(error: DomainError, dialect: str) -> str | None:
    """The WWW-Authenticate header for a 401 or 403, if any."""
    if dialect in _BEARER_DIALECTS:
        realm = 'Bearer realm="coupon-service"'
        if error.status == 401 and error.type in _TOKEN_ERRORS:
            return f'{realm}, error="invalid_token", error_description="{_quoted(error.message)}"'
        if error.status == 403 and isinstance(error, InsufficientScope):
            return (
                f'{realm}, error="insufficient_scope", error_description="{_quoted(error.message)}"'
            )
        return realm if error.status == 401 else None
    if dialect == "oauth":
        return 'Basic realm="oauth2"' if error.status == 401 else None
    if error.status == 401:
        return 'ApiKey realm="coupon-service", header="X-API-Token"'
    return None


# Dialects that answer with pages (the console): their renderer, installed by their package.
_PAGES: dict[str, Callable[[DomainError], Response]] = {}


def render_pages(dialect: str, renderer: Callable[[DomainError], Response]) -> None:
    """Render `dialect`'s errors with `renderer` (an HTML page, say) instead of JSON."""
    _PAGES[dialect] = renderer


def render(error: DomainError, dialect: str | None = None) -> Response:
    """The JSON response for a domain error in the dialect of the current request."""
    dialect = dialect or dialect_for()
    status = error.status
    if dialect == "tenant":
        body: dict = {"status": status, "type": error.type, "message": error.message}
        if error.details:
            body["details"] = error.details
        response = jsonify(body)
    elif dialect == "promo" and status == 500:
        response = jsonify({"error": HTTPStatus(status).phrase})  # the dialect's original 500 body
    elif dialect == "promo":
        message = promo_text(error.code or error.type, error.message, **error.params)
        body = {"statusCode": status, "error": HTTPStatus(status).phrase, "message": message}
        if error.code:
            body["code"] = error.code
        if error.details:
            body["details"] = error.details
        response = jsonify(body)
    elif dialect in _PAGES:
        response = _PAGES[dialect](error)
    elif dialect == "oauth":
        body = {
            "error": _OAUTH_ERRORS.get(error.type, "invalid_request"),
            "error_description": error.message,
        }
        response = jsonify(body)
    else:
        body = {
            "type": f"urn:coupon-service:problem:{error.type}",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": error.message,
        }
        if error.details:
            body["errors"] = error.details
        response = jsonify(body)
        response.mimetype = "application/problem+json"
    response.status_code = status
    challenge = _challenge(error, dialect) if status in (401, 403) else None
    if challenge:
        response.headers["WWW-Authenticate"] = challenge
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def to_response(exc: Exception) -> Response:
    """Render any exception; used by the handlers and by idempotent replays."""
    if isinstance(exc, DomainError):
        return render(exc)
    if isinstance(exc, HTTPException):
        return render(from_http_exception(exc))
    if isinstance(exc, _UNAVAILABLE):
        # The driver's class and SQLSTATE only: statements and parameters stay out of logs.
        log.warning(
            "database unavailable: %s %s",
            type(getattr(exc, "orig", exc)).__name__,
            getattr(getattr(exc, "orig", None), "sqlstate", "") or "",
        )
        return render(ServiceUnavailable())
    if isinstance(exc, sa_exc.DataError):
        # Input guards should have refused the value: a 400 for the caller, an error for us.
        log.error("database refused a value: %s", type(exc.orig).__name__)
        return render(ValidationFailed("A value in the request cannot be stored"))
    log.exception("unhandled error", exc_info=exc)
    return render(InternalError())


def error_types() -> dict[str, str]:
    """Every `type` an error can have, with its meaning: the domain errors' own, the rule
    violations', and those named after an HTTP status werkzeug may raise."""
    types = {
        code_phrase(status): HTTPStatus(status).phrase
        for status in default_exceptions
        if 400 <= status < 500 and status not in _HTTP_TO_DOMAIN
    }
    stack = [DomainError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls is not RuleViolated:
            types[cls.type] = cls.message
    types.update({name: message for name, (_status, message) in _RULE_ERRORS.items()})
    return types


def code_phrase(status: int) -> str:
    """The type of an HTTP failure that has no domain error: its phrase in snake case."""
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; must run after flask-smorest registered its own."""
    app.register_error_handler(DomainError, to_response)
    app.register_error_handler(HTTPException, to_response)
    app.register_error_handler(Exception, to_response)


# --- coupon rule violations (the tenant dialect's messages, as its clients know them) -----

_RULE_ERRORS = {
    "coupon_not_found": (404, "Coupon not found"),
    "coupon_redemption_forbidden": (403, "Current customer is not allowed to redeem the coupon"),
    "coupon_not_active": (400, "Coupon is not active"),
    "coupon_expired": (400, "Coupon has expired"),
    "coupon_redemptions_exceeded": (400, "Coupon has reached maximum number of redemptions"),
    "coupon_currency_incorrect": (400, "Currency inconsistent with coupon"),
    "coupon_order_total_too_low": (400, "The order value is too low for the coupon"),
    "coupon_required_product_missing": (400, "The order lacks the product the coupon requires"),
    "coupon_discount_currency_incorrect": (400, "Discount currency invalid inconsistent coupon"),
    "coupon_discount_amount_incorrect": (400, "Discount amount exceeds allowed coupon discount"),
    # Coupons that discount cart lines (targets, buy X get Y: see engine.promotions).
    "coupon_items_required": (400, "The coupon discounts items: send the order's items"),
    "coupon_not_applicable_to_items": (400, "No item of the order is one the coupon discounts"),
    # Budgets: a coupon's or its campaign's money or redemptions, a customer's campaign uses.
    "coupon_budget_exhausted": (400, "The coupon's budget cannot pay for this discount"),
    "campaign_customer_limit": (400, "The customer used the campaign as often as it allows"),
    # Several codes in one cart (see services.stacking).
    "coupon_not_combinable": (409, "The coupon does not combine with the order's other codes"),
    "coupon_stacking_limit": (409, "The order already combines the most codes it may"),
}


def rule_message(violation_type: str) -> str:
    """The message of a coupon rule violation."""
    return _RULE_ERRORS[violation_type][1]


class RuleViolated(DomainError):
    """A coupon rule the request breaks; carries the evaluator's violation."""

    def __init__(self, violation):
        self.status, message = _RULE_ERRORS[violation.type]
        self.type = violation.type
        self.violation = violation
        super().__init__(message)
