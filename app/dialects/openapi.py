"""The OpenAPI document's finish: what the views' decorators cannot say by themselves.

Views give each operation its summary (the docstring's first line), schemas, statuses
and required security. This module adds, in one place, what generators and newcomers
need on top: an `operationId` and a description per operation, a description for every
path parameter and common header, anonymous use where it is allowed, the response
headers, and each dialect's error types as an enum with their meanings.
"""

from __future__ import annotations

from apispec import APISpec, BasePlugin

# operationId and the integrator's description of every operation, by "METHOD path".
OPERATIONS: dict[str, tuple[str, str]] = {
    # OAuth2 and customers
    "POST /oauth2/v1/token": (
        "getToken",
        "Exchange a client id and secret (form body, or HTTP Basic) for a JWT bound to the "
        "client's tenant. `scope` comes back exactly as asked, or everything the client may "
        "have when none was asked. Send the token as `Authorization: Bearer <token>`.",
    ),
    "POST /customer/v1/{tenant}/signup": (
        "signUpCustomer",
        "Create a customer account with a client token of the tenant. Answers 201 with a "
        "customer number whether or not the email already has an account.",
    ),
    "POST /customer/v1/{tenant}/login": (
        "logInCustomer",
        "Exchange a customer's email and password for a customer token; a customer token "
        "validates, redeems and holds as that customer.",
    ),
    "GET /customer/v1/{tenant}/me": ("getCurrentCustomer", "The account of the customer token."),
    # Coupons
    "GET /coupon/v1/{tenant}/coupons": (
        "listCoupons",
        "Coupons in creation order, `pageSize` at a time; `X-Total-Count` has the total. "
        "`metadata.KEY=VALUE` in the query string keeps only coupons whose metadata has that "
        "pair (several pairs: all must match), e.g. `?metadata.channel=newsletter`.",
    ),
    "POST /coupon/v1/{tenant}/coupons": (
        "createCoupon",
        "Create a coupon. Without `code`, one is generated. Answers 201 with the code and "
        "its link (`Location`). Takes `Idempotency-Key`.",
    ),
    "GET /coupon/v1/{tenant}/coupons/{code}": (
        "getCoupon",
        "Read a coupon with its status and redemption count. Managers read any coupon; "
        "other callers only coupons they may use. Spends the guessing budget.",
    ),
    "PUT /coupon/v1/{tenant}/coupons/{code}": (
        "replaceCoupon",
        "Replace a coupon's whole definition; redemptions made stay as they are.",
    ),
    "PATCH /coupon/v1/{tenant}/coupons/{code}": (
        "updateCoupon",
        "Change the fields sent, keep the others.",
    ),
    "DELETE /coupon/v1/{tenant}/coupons/{code}": (
        "deleteCoupon",
        "Soft-delete a coupon: it stops applying and its code is never reused.",
    ),
    "POST /coupon/v1/{tenant}/coupons/{code}/validation": (
        "validateCoupon",
        "Check the coupon against an order; nothing is stored. Without `discount` in the "
        "body the answer is 200 with the largest discount the coupon grants on this order; "
        "with `discount`, 200 means that discount is allowed. A refusal is the first rule "
        "the order breaks (`coupon_expired`, `coupon_order_total_too_low`, ...).",
    ),
    "GET /coupon/v1/{tenant}/coupons/{code}/redemptions": (
        "listRedemptions",
        "A coupon's redemptions in creation order, paged; `X-Total-Count` has the total.",
    ),
    "POST /coupon/v1/{tenant}/coupons/{code}/redemptions": (
        "redeemCoupon",
        "Use the coupon once for this order, atomically: limits hold however many requests "
        "race. With `orderId`, the same order redeemed again answers 200 with the first "
        "redemption. Answers 201 with its link (`Location`). Takes `Idempotency-Key`.",
    ),
    "GET /coupon/v1/{tenant}/coupons/{code}/redemptions/{redemption_id}": (
        "getRedemption",
        "One redemption: managers any, customers their own.",
    ),
    "DELETE /coupon/v1/{tenant}/coupons/{code}/redemptions/{redemption_id}": (
        "deleteRedemption",
        "Remove a redemption; its use is given back to the coupon and the customer.",
    ),
    # Returns
    "POST /coupon/v1/{tenant}/redemptions/{redemption_id}/rollback": (
        "rollbackRedemption",
        "Roll a redemption back after a return. Without `amount`: in full, the use comes "
        "back to the coupon and the customer, `status` becomes ROLLED_BACK. With `amount`: "
        "that much of the discount comes back (budgets), the use does not, `status` becomes "
        "PARTIALLY_ROLLED_BACK. The redemption stays, with `rolledBackAt` and `reason`. "
        "A second full rollback is 409 `redemption_already_rolled_back`. Managers roll back "
        "any; a redeeming client only its customer's (`customerNumber`). Takes "
        "`Idempotency-Key`.",
    ),
    "POST /coupon/v1/{tenant}/orders/{order_id}/rollback": (
        "rollbackOrder",
        "Roll back in full every redemption of an order id (every code of a cart and its "
        "automatic promotions) in one transaction; those rolled back already are left as "
        "they are. Takes `Idempotency-Key`.",
    ),
    "GET /coupon/v1/{tenant}/coupons/{code}/reservations": (
        "listHolds",
        "A coupon's holds: managers all, customers their own.",
    ),
    "POST /coupon/v1/{tenant}/coupons/{code}/reservations": (
        "createHold",
        "Keep one use of the coupon for this order for `ttlSeconds` (default 900) while the "
        "shopper pays. The hold passes every rule a redemption would and counts against the "
        "limits until it expires. Answers 201 with `id` and `expiresAt`; confirm it after "
        "payment, release it otherwise. Takes `Idempotency-Key`.",
    ),
    "GET /coupon/v1/{tenant}/coupons/{code}/reservations/{hold_id}": (
        "getHold",
        "A hold's state: `HELD`, `EXPIRED`, `CONFIRMED` or `RELEASED`.",
    ),
    "DELETE /coupon/v1/{tenant}/coupons/{code}/reservations/{hold_id}": (
        "releaseHold",
        "Give the held use back at once. A released hold answers 404 "
        "`reservation_released` afterwards.",
    ),
    "POST /coupon/v1/{tenant}/coupons/{code}/reservations/{hold_id}/confirm": (
        "confirmHold",
        "Turn the hold into a redemption. Never refused for limits (the hold took its use); "
        "an expired hold answers 410 `reservation_expired`.",
    ),
    # Checkout
    "POST /coupon/v1/{tenant}/carts/validation": (
        "validateCart",
        "Several codes on one order: each code's result and discount, and the cart's total "
        "under the stacking rules (exclusive coupons, priorities, the tenant's code limit). "
        "Nothing is stored.",
    ),
    "POST /coupon/v1/{tenant}/carts/redemption": (
        "redeemCart",
        "Redeem every applicable code of the cart in one transaction, or none (409 "
        "`cart_not_applicable` with a detail per refused code). Holds made with the cart's "
        "`orderId` are confirmed by it. Takes `Idempotency-Key`.",
    ),
    "POST /coupon/v1/{tenant}/qualifications": (
        "listQualifications",
        "The listable coupons that would apply to this cart for this customer, best "
        "discount first, paged. Needs a customer token or a client acting for "
        "`customerNumber`.",
    ),
    # Campaigns
    "GET /coupon/v1/{tenant}/campaigns": ("listCampaigns", "Campaigns in creation order, paged."),
    "POST /coupon/v1/{tenant}/campaigns": (
        "createCampaign",
        "A named batch of unique codes sharing one coupon template. Answers 202 with a "
        "link; the codes are generated in the background (follow `status` and `progress`).",
    ),
    "GET /coupon/v1/{tenant}/campaigns/{campaign_id}": (
        "getCampaign",
        "Status, progress, failure reason and redemption totals of a campaign.",
    ),
    "PATCH /coupon/v1/{tenant}/campaigns/{campaign_id}": (
        "updateCampaign",
        "Rename, deactivate or reactivate every code, or change every code's template.",
    ),
    "DELETE /coupon/v1/{tenant}/campaigns/{campaign_id}": (
        "deleteCampaign",
        "Delete a campaign: its codes are soft-deleted and stay taken.",
    ),
    "POST /coupon/v1/{tenant}/campaigns/{campaign_id}/retry": (
        "retryCampaign",
        "Queue a failed campaign again; it resumes from the codes it has.",
    ),
    "GET /coupon/v1/{tenant}/campaigns/{campaign_id}/codes": (
        "exportCampaignCodes",
        "Every code as CSV (`code,status,redemptionCount`), streamed page by page.",
    ),
    "POST /coupon/v1/{tenant}/campaigns/{campaign_id}/codes": (
        "importCampaignCodes",
        "Add codes from a CSV with a `code` column (up to 10 MB). The encoding and header "
        "are checked at once; the lines are read in the background (202 with a link).",
    ),
    "GET /coupon/v1/{tenant}/campaigns/{campaign_id}/imports/{import_id}": (
        "getCampaignImport",
        "An import's status, lines read and, once completed, its report.",
    ),
    # Promo codes
    "GET /promocodes/": ("listPromoCodes", "Every promo code of the token's tenant."),
    "POST /promocodes/": (
        "checkPromoCode",
        "Check a code against an order; nothing is stored. Refusals are 200 with reasons in "
        "`loyaltyProgramErrors` (Russian, or English with `Accept-Language: en`).",
    ),
    "POST /promocodes/redeem": (
        "redeemPromoCode",
        "Use the code once for `order.id`; a repeat of the same order records nothing. With "
        "`ttlSeconds` the use is held instead, and confirmed by the next redeem of the order.",
    ),
    "POST /promocodes/release": (
        "releasePromoCode",
        "Give back the use a redeem with `ttlSeconds` held for `order.id`.",
    ),
    "POST /promocodes/add": (
        "addPromoCode",
        "Create a promo code: a FREE_PRODUCT coupon of the tenant. 409 `PROMO_IS_EXISTS` "
        "when the code is taken, whatever its case.",
    ),
    "PATCH /promocodes/{promo_id}": (
        "updatePromoCode",
        "Change a promo code's fields, its code too. Answers 201.",
    ),
    "DELETE /promocodes/{promo_id}": (
        "deletePromoCode",
        "Delete a promo code; its history stays and its code stays taken. Answers 201.",
    ),
    # Brands
    "GET /brands": ("listOwnBrandDiscounts", "The discounts of the brand whose token is sent."),
    "GET /brands/": ("listOwnBrandDiscountsSlash", "The same as `GET /brands`."),
    "GET /brands/{brand}/discounts": (
        "listBrandDiscounts",
        "The brand's discounts in creation order.",
    ),
    "POST /brands/{brand}/discounts": (
        "createBrandDiscount",
        "Create a discount fans can register for (PERCENT or FIXED_CART). Answers 200.",
    ),
    "GET /brands/{brand}/discounts/{discount_id}": ("getBrandDiscount", "One discount."),
    "PUT /brands/{brand}/discounts/{discount_id}": (
        "replaceBrandDiscount",
        "Replace a discount; codes issued from now on follow it.",
    ),
    "PATCH /brands/{brand}/discounts/{discount_id}": (
        "updateBrandDiscount",
        "Change the fields sent, keep the others.",
    ),
    "DELETE /brands/{brand}/discounts/{discount_id}": (
        "deleteBrandDiscount",
        "Retire a discount; codes already issued stay valid.",
    ),
    "POST /brands/{brand}/fans": (
        "registerFan",
        "Register a fan for a discount. A verified email gets its code at once (posted to "
        "the coupon realizer); otherwise a verification email with an activation link is "
        "sent first.",
    ),
    "GET /fans/{token}": (
        "activateFan",
        "The activation link of the verification email: issues the fan's code once.",
    ),
    # Operations
    "GET /health": ("getHealth", "Liveness: the process answers. Needs no database."),
    "GET /ready": (
        "getReadiness",
        "Readiness: 200 when the database answers and is migrated to the revision this "
        "code expects; 503 naming what it waits for otherwise.",
    ),
    "GET /metrics": (
        "getMetrics",
        "Prometheus metrics of every worker (404 when METRICS_ENABLED is false).",
    ),
}

PATH_PARAMETERS: dict[str, str] = {
    "tenant": "The tenant's slug; it must be the tenant of the token.",
    "code": "The coupon's code (compared regardless of case and look-alike letters).",
    "redemption_id": "A redemption's id, as answered by redeemCoupon.",
    "hold_id": "A hold's id, as answered by createHold.",
    "order_id": "Your order id, as sent with the redemptions (`orderId`).",
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
