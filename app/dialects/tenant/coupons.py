"""Tenant coupon dialect: /coupon/v1/{tenant}/coupons/..."""

from __future__ import annotations

import re

from flask import Response, request
from flask.views import MethodView

from app.auth import current_caller, require_manage
from app.dialects.common import Blueprint, before_body, idempotent, link, link_to, links
from app.dialects.fields import METADATA_KEY
from app.dialects.openapi import TOTAL_COUNT
from app.dialects.tenant.schemas.coupons import (
    CouponErrorSchema,
    CouponListArgs,
    CouponPatchSchema,
    CouponSchema,
    CouponWriteSchema,
    CreatedSchema,
    CustomerArgs,
    PageArgs,
    RedemptionRequestSchema,
    RedemptionSchema,
    ValidationRequestSchema,
    ValidationSchema,
)
from app.engine import promotions, tenants
from app.engine.catalog import coupons
from app.engine.rules import Money, allowed_discount
from app.engine.usage import redemption
from app.engine.usage.redemption import Order
from app.engine.usage.state import Outcome
from app.errors import ValidationFailed
from app.ratelimits import looks_up_codes

blp = Blueprint(
    "coupons",
    __name__,
    dialect="tenant",
    error_schema=CouponErrorSchema,
    url_prefix="/coupon/v1/<string:tenant>",
    description="Tenant coupons: CRUD, validation and redemptions (OAuth2 scopes).",
)


@blp.before_request
def authenticate():
    """Decode the token before any body is parsed: a bad token is a 401, not a 400."""
    req = request._get_current_object()
    tenant = (req.view_args or {}).get("tenant")
    if tenant is not None and not req.routing_exception:
        current_caller(tenant)


# Management operations: the manage scope, checked before the body is parsed.
managers_only = before_body(lambda tenant, **_: require_manage(current_caller(tenant)))


def manager(tenant: str):
    """The tenant and a caller holding the manage scope."""
    caller = current_caller(tenant)
    require_manage(caller)
    return tenants.get_tenant(tenant)


COUPON = "/coupon/v1/{tenant}/coupons/{code}"
REDEMPTION = COUPON + "/redemptions/{redemption_id}"
# The created coupon, by the code in the answer.
_COUPON = {"tenant": "$request.path.tenant", "code": "$response.body#/id"}
_CREATED_COUPON_LINKS = links(
    201,
    GetCoupon=link(COUPON, "get", "Read the coupon", **_COUPON),
    ChangeCoupon=link(COUPON, "patch", "Change the coupon", **_COUPON),
    DeleteCoupon=link(COUPON, "delete", "Delete the coupon", **_COUPON),
    ValidateCoupon=link(COUPON + "/validation", "post", "Validate it for an order", **_COUPON),
    RedeemCoupon=link(COUPON + "/redemptions", "post", "Redeem it", **_COUPON),
)
_REDEMPTION = {
    "tenant": "$request.path.tenant",
    "code": "$request.path.code",
    "redemption_id": "$response.body#/id",
}
_CREATED_REDEMPTION_LINKS = links(
    201,
    GetRedemption=link(REDEMPTION, "get", "Read the redemption", **_REDEMPTION),
    DeleteRedemption=link(REDEMPTION, "delete", "Remove it (gives the use back)", **_REDEMPTION),
)


def redemption_answer(tenant: str, outcome: Outcome):
    """201 with the redemption's link, or 200 when an earlier one is answered again."""
    location = link_to(
        f"/coupon/v1/{tenant}/coupons/{outcome.coupon_code}/redemptions/{outcome.redemption_id}"
    )
    status = 201 if outcome.created else 200
    return {"id": outcome.redemption_id, "link": location}, status, {"Location": location}


def tenant_id(tenant: str, **_):
    return tenants.get_tenant(tenant).id


def metadata_filter() -> dict[str, str]:
    """The `metadata.KEY=VALUE` pairs of the query string (all must match)."""
    pairs, problems = {}, []
    for name, values in request.args.lists():
        if not name.startswith("metadata."):
            continue
        key, value = name.removeprefix("metadata."), values[0]
        if len(values) > 1:
            # One key has one value: two would match nothing, and taking either one
            # would silently drop the other.
            problems.append({"field": name, "type": "invalid", "message": "Given more than once"})
        elif re.fullmatch(METADATA_KEY, key) is None or len(value) > 500:
            problems.append({"field": name, "type": "invalid", "message": "Not a metadata pair"})
        pairs[key] = value
    if problems or len(pairs) > 50:
        raise ValidationFailed(
            details=problems
            or [{"field": "metadata", "type": "invalid", "message": "At most 50 pairs"}]
        )
    return pairs


def lines_of(items: list[dict] | None) -> tuple[promotions.Line, ...]:
    """The engine's cart lines from a body's `items`."""
    return tuple(
        promotions.Line(
            item["product"],
            item["price"],
            item["quantity"],
            frozenset(item.get("categories") or ()),
        )
        for item in items or ()
    )


def shipping_of(data: dict):
    shipping = data.get("shipping_total")
    return None if shipping is None else shipping["amount"]


def order_of(data: dict) -> Order:
    """The engine's order from a validation or redemption body."""
    lines = lines_of(data.get("items"))
    return Order(
        total=Money(**data["order_total"]),
        discount=Money(**data["discount"]) if "discount" in data else None,
        order_id=data.get("order_id"),
        # Without items the order's products are unknown (None), not none at all.
        products=frozenset(line.product for line in lines) if lines else None,
        lines=lines,
        shipping_total=shipping_of(data),
        metadata=data.get("metadata"),
    )


@blp.route("/coupons")
class Coupons(MethodView):
    @managers_only
    @blp.arguments(CouponListArgs(), location="query")
    @blp.response(200, CouponSchema(many=True), headers=TOTAL_COUNT)
    @blp.errors(400, 401, 403, 404)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, args, tenant):
        """List coupons in creation order (scope coupon_manage)."""
        items, total = coupons.list_coupons(
            tenant=manager(tenant),
            page=args["page_number"],
            page_size=args["page_size"],
            show_deleted=args["show_deleted"],
            deleted=args["deleted"],
            metadata=metadata_filter(),
        )
        return items, {"X-Total-Count": str(total)}

    @managers_only
    @idempotent(tenant_id)
    @blp.arguments(CouponWriteSchema())
    @blp.response(201, CreatedSchema)
    @blp.errors(400, 401, 403, 404, 409, 422)
    @blp.doc(security=[{"bearerAuth": []}], **_CREATED_COUPON_LINKS)
    def post(self, data, tenant):
        """Create a coupon; a missing code is generated (scope coupon_manage)."""
        coupon = coupons.create_coupon(tenant=manager(tenant), values=data)
        link = link_to(f"/coupon/v1/{tenant}/coupons/{coupon.code}")
        return {"id": coupon.code, "link": link}, 201, {"Location": link}


@blp.route("/coupons/<string:code>")
class CouponResource(MethodView):
    @blp.arguments(CustomerArgs(), location="query")
    @looks_up_codes()
    @blp.response(200, CouponSchema)
    @blp.errors(400, 401, 403, 404, 429)
    def get(self, args, tenant, code):
        """Read a coupon: managers any (deleted too), others what they may use."""
        caller = current_caller(tenant)
        return coupons.get_for_caller(
            tenant=tenants.get_tenant(tenant),
            code=code,
            caller=caller,
            customer_number=args["customer_number"],
        )

    @managers_only
    @blp.arguments(CouponWriteSchema())
    @blp.response(200, CouponSchema)
    @blp.errors(400, 401, 403, 404, 409)
    @blp.doc(security=[{"bearerAuth": []}])
    def put(self, data, tenant, code):
        """Replace a coupon's definition (scope coupon_manage)."""
        return coupons.replace_coupon(tenant=manager(tenant), code=code, values=data)

    @managers_only
    @blp.arguments(CouponPatchSchema())
    @blp.response(200, CouponSchema)
    @blp.errors(400, 401, 403, 404, 409)
    @blp.doc(security=[{"bearerAuth": []}])
    def patch(self, data, tenant, code):
        """Change some fields of a coupon (scope coupon_manage)."""
        return coupons.update_coupon(tenant=manager(tenant), code=code, changes=data)

    @managers_only
    @blp.response(204)
    @blp.errors(401, 403, 404)
    @blp.doc(security=[{"bearerAuth": []}])
    def delete(self, tenant, code):
        """Soft-delete a coupon; its code is never reusable (scope coupon_manage)."""
        coupons.delete_coupon(tenant=manager(tenant), code=code)


@blp.route("/coupons/<string:code>/validation")
class Validation(MethodView):
    @blp.arguments(ValidationRequestSchema())
    @looks_up_codes()
    @blp.response(
        200,
        ValidationSchema,
        description="The discount granted when the body stated none; an empty answer when "
        "the body's discount is allowed.",
    )
    @blp.errors(400, 401, 403, 404, 429)
    def post(self, data, tenant, code):
        """Check that the coupon could be redeemed for this order; stores nothing."""
        caller = current_caller(tenant)
        order = order_of(data)
        state = redemption.validate(
            tenant=tenants.get_tenant(tenant),
            code=code,
            caller=caller,
            order=order,
            customer_hint=data.get("customer_number"),
        )
        if order.discount is not None:
            return Response(status=200)  # the stated discount is allowed
        amount = allowed_discount(state, order.total, order.lines, order.shipping_total)
        return {"discount": {"amount": amount, "currency": order.total.currency}}


@blp.route("/coupons/<string:code>/redemptions")
class Redemptions(MethodView):
    @managers_only
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, RedemptionSchema(many=True), headers=TOTAL_COUNT)
    @blp.errors(400, 401, 403, 404)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, args, tenant, code):
        """List a coupon's redemptions in creation order (scope coupon_manage)."""
        items, total = redemption.list_redemptions(
            tenant=manager(tenant),
            code=code,
            page=args["page_number"],
            page_size=args["page_size"],
        )
        return items, {"X-Total-Count": str(total)}

    @idempotent(tenant_id)
    @blp.arguments(RedemptionRequestSchema())
    @looks_up_codes()
    @blp.response(201, CreatedSchema)
    @blp.alt_response(
        200, schema=CreatedSchema, description="This order id's redemption, again", success=True
    )
    @blp.errors(400, 401, 403, 404, 409, 422, 429)
    @blp.doc(**_CREATED_REDEMPTION_LINKS)
    def post(self, data, tenant, code):
        """Redeem the coupon once for this order (atomic; limits hold under concurrency)."""
        caller = current_caller(tenant)
        outcome = redemption.redeem(
            tenant=tenants.get_tenant(tenant),
            code=code,
            caller=caller,
            order=order_of(data),
            customer_hint=data.get("customer_number"),
        )
        return redemption_answer(tenant, outcome)


@blp.route("/coupons/<string:code>/redemptions/<string:redemption_id>")
class RedemptionResource(MethodView):
    @blp.arguments(CustomerArgs(), location="query")
    @looks_up_codes()
    @blp.response(200, RedemptionSchema)
    @blp.errors(400, 401, 404, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, args, tenant, code, redemption_id):
        """Read one redemption: managers any, customers their own, on behalf by customerNumber."""
        caller = current_caller(tenant)
        return redemption.get_redemption(
            tenant=tenants.get_tenant(tenant),
            code=code,
            redemption_id=redemption_id,
            caller=caller,
            customer_hint=args["customer_number"],
        )

    @managers_only
    @blp.response(204)
    @blp.errors(401, 403, 404)
    @blp.doc(security=[{"bearerAuth": []}])
    def delete(self, tenant, code, redemption_id):
        """Remove a redemption and give its use back (scope coupon_manage)."""
        redemption.cancel(tenant=manager(tenant), code=code, redemption_id=redemption_id)
