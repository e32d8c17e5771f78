"""The OpenAPI document's finish: what the views' decorators cannot say by themselves.

Views give each operation its summary (the docstring's first line), schemas, statuses
and required security. This module adds, in one place, what generators and newcomers
need on top: an `operationId` and a description per operation, a description for every
path parameter and common header, anonymous use where it is allowed, the response
headers, and each dialect's error types as an enum with their meanings.
"""

from __future__ import annotations

from apispec import APISpec, BasePlugin

from app.dialects.operations import OPERATIONS

PATH_PARAMETERS: dict[str, str] = {
    "tenant": "The tenant's slug; it must be the tenant of the token.",
    "code": "The coupon's code (compared regardless of case and look-alike letters).",
    "redemption_id": "A redemption's id, as answered by redeemCoupon.",
    "hold_id": "A hold's id, as answered by createHold.",
    "order_id": "Your order id, as sent with the redemptions (`orderId`).",
    "endpoint_id": "A webhook endpoint's id, as answered by createWebhookEndpoint.",
    "message_id": "A delivery's message id (`webhook-id`), as listed by listWebhookDeliveries.",
    "campaign_id": "A campaign's id, as answered by createCampaign.",
    "import_id": "An import's id, as answered by importCampaignCodes.",
    "brand": "The brand's slug (the tenant of its API token).",
    "discount_id": "A discount's id, as answered by createBrandDiscount.",
    "token": "The activation token from the verification email's link.",
    "promo_id": "A promo code's id, as answered by addPromoCode.",
}

_REQUEST_ID = {
    "name": "X-Request-Id",
    "in": "header",
    "required": False,
    "description": "Your id for this request, echoed in the answer and the logs: up to "
    "128 letters, digits, `.`, `_` or `-` (another value is replaced by one made here).",
    "schema": {"type": "string"},  # never refused: a bad one is replaced
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the request safe to retry: the same caller's same key and body "
    "answer the stored first answer (with `Idempotent-Replayed: true`); the same key with "
    "another body is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_RESPONSE_HEADERS = {
    "X-Request-Id": {
        "description": "The request's id (yours, or the one made for it).",
        "schema": {"type": "string"},
    },
}
TOTAL_COUNT = {
    "X-Total-Count": {
        "description": "How many items there are across all pages.",
        "schema": {"type": "integer"},
    }
}
_LOCATION = {
    "Location": {"description": "The URL of what was created.", "schema": {"type": "string"}}
}
_IDEMPOTENT_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer of an earlier request with "
        "the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_RATE_LIMITED = {
    "Retry-After": {
        "description": "Seconds until the budget this request spent has room again.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Limit": {
        "description": "The size of the spent budget, per its window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "What is left of it: 0.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Seconds until it has room again (as Retry-After).",
        "schema": {"type": "integer"},
    },
}
# The mark app.dialects.common.idempotent leaves in a view's doc.
IDEMPOTENT_MARK = "x-idempotent"
# Answers a replay never gives: a retry may cure them, so they are not stored.
_NEVER_STORED = {401, 403, 404, 429}
# Operations that answer anonymous callers too (allowAnonymous coupons).
_ANONYMOUS_ALLOWED = {
    "validateCoupon",
    "redeemCoupon",
    "getCoupon",
    "createHold",
    "releaseHold",
    "confirmHold",
    "validateCart",
    "redeemCart",
}
_NO_TOKEN = {"getHealth", "getReadiness", "getMetrics", "activateFan"}


class Finish(BasePlugin):
    """apispec plugin: finishes every operation as it is added to the document."""

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        for parameter in parameters or ():
            if parameter.get("in") == "path" and not parameter.get("description"):
                parameter["description"] = PATH_PARAMETERS[parameter["name"]]
        return None

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            key = f"{method.upper()} {path}"
            if key not in OPERATIONS:
                raise KeyError(f"{key} has no operationId in app/dialects/openapi.py")
            operation["operationId"], operation["description"] = OPERATIONS[key]
            parameters = operation.setdefault("parameters", [])
            parameters.append(_REQUEST_ID)
            idempotent = operation.pop(IDEMPOTENT_MARK, False)
            if idempotent:
                parameters.append(_IDEMPOTENCY_KEY)
            _finish_security(operation)
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                headers.update(_RESPONSE_HEADERS)
                if str(status) == "201" and operation["operationId"] not in _NO_LOCATION:
                    headers.update(_LOCATION)
                if str(status) == "429":
                    headers.update(_RATE_LIMITED)
                if idempotent and int(status) < 500 and int(status) not in _NEVER_STORED:
                    headers.update(_IDEMPOTENT_REPLAYED)


# 201s that create nothing addressable (the promo dialect answers 201 to changes).
_NO_LOCATION = {"addPromoCode", "updatePromoCode", "deletePromoCode", "signUpCustomer"}


def _finish_security(operation: dict) -> None:
    operation_id = operation["operationId"]
    if operation_id in _NO_TOKEN:
        operation["security"] = []
    elif operation_id == "getToken":
        operation["security"] = []  # client credentials in the form body (or HTTP Basic)
    elif operation_id in _ANONYMOUS_ALLOWED:
        operation["security"] = [{"bearerAuth": []}, {}]


def finish(spec: APISpec, error_types: dict[str, dict[str, str]]) -> None:
    """Security schemes, and each error schema's `type`-like field as an enum whose
    description says what each value means; `error_types` maps "Schema.field" to them."""
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A token from getToken (a client) or logInCustomer (a customer).",
        },
    )
    spec.components.security_scheme(
        "apiToken",
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Token",
            "description": "A brand's API token.",
        },
    )
    spec.components.security_scheme(
        "clientBasic",
        {"type": "http", "scheme": "basic", "description": "client_id:client_secret"},
    )
    for target, meanings in error_types.items():
        schema_name, field = target.split(".")
        prop = spec.components.schemas[schema_name]["properties"][field]
        prop["enum"] = sorted(meanings)
        prop["description"] = "\n".join(
            f"- `{value}`: {meaning}" for value, meaning in sorted(meanings.items())
        )
