"""Each operation's operationId and description, written for an integrator: the OpenAPI
document's (app.dialects.openapi fills them in, and fails on an operation missing here)."""

from __future__ import annotations

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
    # Webhooks
    "GET /coupon/v1/{tenant}/webhooks": (
        "listWebhookEndpoints",
        "The tenant's webhook endpoints (at most 20), oldest first; never their secrets.",
    ),
    "POST /coupon/v1/{tenant}/webhooks": (
        "createWebhookEndpoint",
        "Add an endpoint for some event types (or `*`). Answers 201 with its `secret` "
        "(`whsec_...`): shown this once. Deliveries are POSTs in the Standard Webhooks form "
        "(`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried for 3 days. In "
        "production the URL must be https; an address that resolves to a private, loopback "
        "or link-local range is refused when delivering.",
    ),
    "GET /coupon/v1/{tenant}/webhooks/{endpoint_id}": (
        "getWebhookEndpoint",
        "One endpoint; `disabledReason` says why it was switched off.",
    ),
    "PATCH /coupon/v1/{tenant}/webhooks/{endpoint_id}": (
        "updateWebhookEndpoint",
        "Change its url, events or description, or switch it off and on (`active`).",
    ),
    "DELETE /coupon/v1/{tenant}/webhooks/{endpoint_id}": (
        "deleteWebhookEndpoint",
        "Remove the endpoint, its queued deliveries and its log.",
    ),
    "POST /coupon/v1/{tenant}/webhooks/{endpoint_id}/rotate-secret": (
        "rotateWebhookSecret",
        "A new secret, shown once. For 24 hours every delivery carries a signature under "
        "each secret (space-separated), so the subscriber can switch without a gap.",
    ),
    "POST /coupon/v1/{tenant}/webhooks/{endpoint_id}/test": (
        "testWebhookEndpoint",
        "Queue a `ping` event to this endpoint alone; see it in its deliveries.",
    ),
    "GET /coupon/v1/{tenant}/webhooks/{endpoint_id}/deliveries": (
        "listWebhookDeliveries",
        "The last 100 delivery attempts: message id, event type, attempt, status code or "
        "error, time.",
    ),
    "POST /coupon/v1/{tenant}/webhooks/{endpoint_id}/deliveries/{message_id}/retry": (
        "retryWebhookDelivery",
        "Queue a dead delivery again with a fresh retry budget.",
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
