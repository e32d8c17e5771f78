"""Checkout in the tenant coupon dialect: holds on a coupon, carts of several codes,
and which codes fit a cart (/coupon/v1/{tenant}/...)."""

from __future__ import annotations

from flask.views import MethodView

from app.auth import current_caller
from app.database import utcnow
from app.dialects.common import Blueprint, idempotent, link, link_to, links
from app.dialects.openapi import TOTAL_COUNT
from app.dialects.tenant.coupons import (
    authenticate,
    lines_of,
    order_of,
    redemption_answer,
    shipping_of,
    tenant_id,
)
from app.dialects.tenant.schemas.checkout import (
    CartRedemptionRequestSchema,
    CartRequestSchema,
    CartResultSchema,
    QualificationRequestSchema,
    QualificationSchema,
    ReservationCreatedSchema,
    ReservationRequestSchema,
    ReservationSchema,
)
from app.dialects.tenant.schemas.coupons import (
    CouponErrorSchema,
    CreatedSchema,
    CustomerArgs,
    PageArgs,
)
from app.engine import tenants
from app.engine.rules import Money
from app.engine.usage import carts, holds, qualifications
from app.engine.usage.carts import Cart, CartResult
from app.errors import rule_message
from app.ratelimits import looks_up_codes

blp = Blueprint(
    "checkout",
    __name__,
    dialect="tenant",
    error_schema=CouponErrorSchema,
    url_prefix="/coupon/v1/<string:tenant>",
    description=(
        "Checkout: hold a coupon's use while the shopper pays, then confirm or release it; "
        "validate and redeem several codes per cart (stacking rules); which codes fit a cart."
    ),
)
blp.before_request(authenticate)

RESERVATION = "/coupon/v1/{tenant}/coupons/{code}/reservations/{hold_id}"
_HOLD = {
    "tenant": "$request.path.tenant",
    "code": "$request.path.code",
    "hold_id": "$response.body#/id",
}
_CREATED_HOLD_LINKS = links(
    201,
    GetReservation=link(RESERVATION, "get", "Read the hold", **_HOLD),
    ConfirmReservation=link(RESERVATION + "/confirm", "post", "Redeem it", **_HOLD),
    ReleaseReservation=link(RESERVATION, "delete", "Give the use back", **_HOLD),
)


def _cart(data: dict) -> Cart:
    lines = lines_of(data["items"])
    return Cart(
        order_total=Money(**data["order_total"]),
        products=frozenset(line.product for line in lines),
        codes=tuple(data["codes"]),
        order_id=data.get("order_id"),
        lines=lines,
        shipping_total=shipping_of(data),
        metadata=data.get("metadata"),
    )


def _money(amount, currency: str):
    return None if amount is None else {"amount": amount, "currency": currency}


def _code_answer(code, cart: Cart, currency: str) -> dict:
    return {
        "code": code.code,
        "applies": code.applies,
        "discount": _money(code.discount, currency),
        "lines": [
            {
                "item": index,
                "product": cart.lines[index].product,
                "discount": _money(discount, currency),
            }
            for index, discount in code.lines
        ],
        "shipping_discount": _money(code.shipping_discount, currency),
        "free_products": list(code.free_products) if code.applies else [],
        "error": (
            None
            if code.applies
            else {"type": code.violation.type, "message": rule_message(code.violation.type)}
        ),
        "redemption_id": code.redemption_id,
    }


def _cart_answer(tenant: str, result: CartResult, cart: Cart) -> dict:
    order_total, currency = cart.order_total, result.currency
    total = result.total_discount
    return {
        "codes": [_code_answer(code, cart, currency) for code in result.codes],
        "automatic": [
            {**_code_answer(promotion, cart, currency), "name": promotion.name}
            for promotion in result.automatic
        ],
        "total_discount": _money(total, currency),
        "order_total": _money(order_total.amount, order_total.currency),
        "total_after_discount": _money(order_total.amount - total, order_total.currency),
        "shipping_total": _money(cart.shipping_total, currency),
        "shipping_discount": _money(result.shipping_discount, currency),
    }


# --- holds ------------------------------------------------------------------------------


@blp.route("/coupons/<string:code>/reservations")
class Reservations(MethodView):
    @blp.arguments(PageArgs(), location="query")
    @blp.arguments(CustomerArgs(), location="query", as_kwargs=True)
    @looks_up_codes()
    @blp.response(200, ReservationSchema(many=True), headers=TOTAL_COUNT)
    @blp.errors(400, 401, 404, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, args, tenant, code, customer_number=None):
        """List a coupon's holds: managers all, customers their own (on behalf: customerNumber)."""
        items, total = holds.list_holds(
            tenant=tenants.get_tenant(tenant),
            code=code,
            caller=current_caller(tenant),
            customer_hint=customer_number,
            page=args["page_number"],
            page_size=args["page_size"],
        )
        return [_hold_view(item) for item in items], {"X-Total-Count": str(total)}

    @idempotent(tenant_id)
    @blp.arguments(ReservationRequestSchema())
    @looks_up_codes()
    @blp.response(201, ReservationCreatedSchema)
    @blp.alt_response(
        200,
        schema=ReservationCreatedSchema,
        description="This order id's hold, again",
        success=True,
    )
    @blp.errors(400, 401, 403, 404, 409, 422, 429)
    @blp.doc(**_CREATED_HOLD_LINKS)
    def post(self, data, tenant, code):
        """Hold one use of the coupon for this order for ttlSeconds, if every rule passes.

        A live hold counts against the total and per-customer limits like a redemption;
        an expired one counts for nothing. A redemption with the hold's orderId confirms it.
        """
        made = holds.hold(
            tenant=tenants.get_tenant(tenant),
            code=code,
            caller=current_caller(tenant),
            order=order_of(data),
            ttl_seconds=data["ttl_seconds"],
            customer_hint=data.get("customer_number"),
        )
        location = link_to(f"/coupon/v1/{tenant}/coupons/{made.coupon_code}/reservations/{made.id}")
        body = {"id": made.id, "expires_at": made.expires_at, "link": location}
        return body, 201 if made.created else 200, {"Location": location}


def _hold_view(hold) -> dict:
    return {
        "id": hold.id,
        "coupon_code": hold.coupon.code,
        "status": holds.status_of(hold, utcnow()),
        "customer_number": hold.customer_number,
        "order_id": hold.order_id,
        "order_total": _money(hold.order_total_amount, hold.order_total_currency),
        "discount": _money(hold.discount_amount, hold.discount_currency),
        "expires_at": hold.expires_at,
        "created_at": hold.created_at,
        "closed_at": hold.closed_at,
        "redemption_id": hold.redemption_id,
        "metadata": hold.meta or {},
    }


@blp.route("/coupons/<string:code>/reservations/<string:hold_id>")
class ReservationResource(MethodView):
    @blp.arguments(CustomerArgs(), location="query")
    @looks_up_codes()
    @blp.response(200, ReservationSchema)
    @blp.errors(400, 401, 404, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, args, tenant, code, hold_id):
        """Read a hold: managers any, customers their own (on behalf by customerNumber)."""
        hold = holds.get_hold(
            tenant=tenants.get_tenant(tenant),
            code=code,
            hold_id=hold_id,
            caller=current_caller(tenant),
            customer_hint=args["customer_number"],
        )
        return _hold_view(hold)

    @blp.arguments(CustomerArgs(), location="query")
    @looks_up_codes()
    @blp.response(204)
    @blp.errors(400, 401, 404, 409, 429)
    def delete(self, args, tenant, code, hold_id):
        """Release a hold: its use is given back at once (404 once released)."""
        holds.release(
            tenant=tenants.get_tenant(tenant),
            code=code,
            hold_id=hold_id,
            caller=current_caller(tenant),
            customer_hint=args["customer_number"],
        )


@blp.route("/coupons/<string:code>/reservations/<string:hold_id>/confirm")
class ConfirmReservation(MethodView):
    @idempotent(tenant_id)
    @blp.arguments(CustomerArgs(), location="query")
    @looks_up_codes()
    @blp.response(201, CreatedSchema)
    @blp.alt_response(
        200, schema=CreatedSchema, description="Already confirmed: its redemption", success=True
    )
    @blp.errors(400, 401, 404, 409, 410, 429)
    def post(self, args, tenant, code, hold_id):
        """Redeem the held use (never refused for limits: the hold took its use).

        An expired hold answers 410 reservation_expired, a released one 404
        reservation_released. Emits the redemption event.
        """
        outcome = holds.confirm(
            tenant=tenants.get_tenant(tenant),
            code=code,
            hold_id=hold_id,
            caller=current_caller(tenant),
            customer_hint=args["customer_number"],
        )
        return redemption_answer(tenant, outcome)


# --- carts ------------------------------------------------------------------------------


@blp.route("/carts/validation")
class CartValidation(MethodView):
    @blp.arguments(CartRequestSchema())
    @looks_up_codes(count=lambda data: max(1, len(data["codes"])))
    @blp.response(200, CartResultSchema)
    @blp.errors(400, 401, 404, 429)
    def post(self, data, tenant):
        """Which codes of the cart apply together, what each gives, and the total.

        Each code is checked alone (the same typed failures as validation), then
        stacked: exclusive codes apply alone, higher stackingPriority first, ABSOLUTE
        before PERCENT, PERCENT on what is left, never more than the order total, at
        most the tenant's maxCodesPerOrder codes.
        """
        cart = _cart(data)
        result = carts.validate(
            tenant=tenants.get_tenant(tenant),
            caller=current_caller(tenant),
            cart=cart,
            customer_hint=data.get("customer_number"),
        )
        return _cart_answer(tenant, result, cart)


@blp.route("/carts/redemption")
class CartRedemption(MethodView):
    @idempotent(tenant_id)
    @blp.arguments(CartRedemptionRequestSchema())
    @looks_up_codes(count=lambda data: max(1, len(data["codes"])))
    @blp.response(201, CartResultSchema)
    @blp.errors(400, 401, 404, 409, 422, 429)
    def post(self, data, tenant):
        """Redeem every code of the cart in one transaction, or none.

        When any code does not apply (anymore), answers 409 cart_not_applicable with
        one detail per refused code (field codes.N) and writes nothing.
        """
        cart = _cart(data)
        result = carts.redeem(
            tenant=tenants.get_tenant(tenant),
            caller=current_caller(tenant),
            cart=cart,
            customer_hint=data.get("customer_number"),
        )
        return _cart_answer(tenant, result, cart), 201


# --- qualifications ---------------------------------------------------------------------


@blp.route("/qualifications")
class Qualifications(MethodView):
    @blp.arguments(QualificationRequestSchema())
    @blp.arguments(PageArgs(), location="query", as_kwargs=True)
    @looks_up_codes()
    @blp.response(200, QualificationSchema(many=True), headers=TOTAL_COUNT)
    @blp.errors(400, 401, 403, 404, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, data, tenant, page_number, page_size):
        """The coupons that would apply to this cart for this customer, best discount first.

        Needs a customer token or a client with a redeem scope (customerNumber on behalf).
        Lists the tenant's automatic promotions that fit (`automatic: true`: they apply
        with no code) and the coupons it marked `listable`, open to anyone or valid for this
        customer; a coupon restricted to other customers never appears, nor any code the
        tenant did not mark (single-use vouchers, codes issued to one person).
        """
        order_total = Money(**data["order_total"])
        lines = lines_of(data["items"])
        items, total = qualifications.qualifications(
            tenant=tenants.get_tenant(tenant),
            caller=current_caller(tenant),
            order_total=order_total,
            products=frozenset(line.product for line in lines),
            customer_hint=data.get("customer_number"),
            page=page_number,
            page_size=page_size,
            lines=lines,
            shipping_total=shipping_of(data),
        )
        body = [
            {
                "code": q.coupon.code,
                "name": q.coupon.name,
                "discount_type": q.coupon.discount_type,
                "discount": _money(q.discount, order_total.currency),
                "free_products": list(q.coupon.free_products or []),
                "exclusive": q.coupon.exclusive,
                "stacking_priority": q.coupon.stacking_priority,
                "valid_until": q.coupon.valid_until,
                "automatic": q.coupon.automatic,
            }
            for q in items
        ]
        return body, {"X-Total-Count": str(total)}
