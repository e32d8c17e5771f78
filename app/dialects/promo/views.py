"""Promo dialect: /promocodes/, on the caller's tenant.

The tenant is the one the bearer token is bound to. Admin routes need the
manage scope; check and redeem need the user role (a redeem scope or a
customer token). Texts are Russian unless Accept-Language prefers English.
"""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from app.auth import Caller, bearer_caller
from app.dialects.common import Blueprint, before_body, idempotent, link, links
from app.dialects.promo import adapter as promocodes
from app.dialects.promo.adapter import PromoOrder, Verdict
from app.dialects.promo.schemas import (
    PromoCheckResultSchema,
    PromoCheckSchema,
    PromoCreatedSchema,
    PromoDeletedSchema,
    PromoErrorSchema,
    PromoPatchSchema,
    PromoRedeemSchema,
    PromoReleasedSchema,
    PromoReleaseSchema,
    PromoSchema,
    PromoWriteSchema,
)
from app.dialects.promo.texts import promo_text
from app.engine import rules, tenants
from app.engine.tenants import TenantRef
from app.errors import InsufficientScope, InvalidToken, Unauthorized
from app.ratelimits import looks_up_codes

blp = Blueprint(
    "promocodes",
    __name__,
    dialect="promo",
    error_schema=PromoErrorSchema,
    url_prefix="/promocodes",
    description="Promo codes with gifts (Russian texts; Accept-Language: en for English).",
)
SECURITY = [{"bearerAuth": []}]
_PROMO = {"promo_id": "$response.body#/id"}
_ADDED_PROMO_LINKS = links(
    201,
    ChangePromo=link("/promocodes/{promo_id}", "patch", "Change the promo code", **_PROMO),
    DeletePromo=link("/promocodes/{promo_id}", "delete", "Delete the promo code", **_PROMO),
)


class AdminRoleRequired(InsufficientScope):
    type = "admin_role_required"


class UserRoleRequired(InsufficientScope):
    type = "user_role_required"


def _admin(caller: Caller) -> bool:
    return caller.manages


def _user(caller: Caller) -> bool:
    return caller.identified


def _role(allowed, denied: type[InsufficientScope]):
    """A check of the caller's role; the tenant is the one the token is bound to."""

    def require_role(**_):
        caller = bearer_caller()
        if caller.is_anonymous:
            raise Unauthorized()
        tenant = tenants.find_tenant(caller.tenant)
        if tenant is None:
            raise InvalidToken()
        if not allowed(caller):
            raise denied()
        g.tenant = tenant

    return before_body(require_role)


admin_only = _role(_admin, AdminRoleRequired)
user_only = _role(_user, UserRoleRequired)


def _tenant() -> TenantRef:
    return g.tenant


def _tenant_id(**_) -> int:
    return _tenant().id


def _order(data: dict) -> PromoOrder:
    return PromoOrder(
        coupon=data.get("coupon"),
        total=data.get("total"),
        products=data["products"],
        order_id=(data.get("order") or {}).get("id"),
        ttl_seconds=data.get("ttl_seconds"),
    )


def _answer(verdict: Verdict) -> dict:
    """The check answer; refusals are messages, not HTTP errors."""
    if verdict.applies:
        messages = [promo_text("applied")]
    else:
        messages = [_refusal(violation) for violation in verdict.violations]
    answer = {
        "discount_total": verdict.discount,
        "discounts": verdict.discounts,
        "loyalty_program_errors": messages,
        "free_products": verdict.free_products,
        "lost_gift": verdict.lost_gifts,
    }
    if verdict.reservation is not None:
        answer["reservation"] = {
            "id": verdict.reservation.id,
            "expires_at": verdict.reservation.expires_at,
        }
    return answer


def _refusal(violation: rules.Violation) -> str:
    key = violation.type
    if key == rules.NOT_ACTIVE:
        key = "inactive" if violation.data.get("inactive") else "not_yet_valid"
    return promo_text(key, None, **violation.data) or promo_text("not_applicable")


@blp.route("/")
class Promocodes(MethodView):
    @admin_only
    @blp.response(200, PromoSchema(many=True))
    @blp.errors(401, 403)
    @blp.doc(security=SECURITY)
    def get(self):
        """Every promo code of the tenant (admin role)."""
        return promocodes.list_promos(tenant=_tenant())

    @user_only
    @blp.arguments(PromoCheckSchema())
    @looks_up_codes()
    @blp.response(200, PromoCheckResultSchema)
    @blp.errors(400, 401, 403, 429)
    @blp.doc(security=SECURITY)
    def post(self, data):
        """Check a promo code against an order; changes nothing (user role)."""
        verdict = promocodes.check_promo(
            tenant=_tenant(), caller=bearer_caller(), order=_order(data)
        )
        return _answer(verdict)


@blp.route("/add")
class AddPromocode(MethodView):
    @admin_only
    @idempotent(_tenant_id)
    @blp.arguments(PromoWriteSchema())
    @blp.response(201, PromoCreatedSchema)
    @blp.errors(400, 401, 403, 409, 422)
    @blp.doc(security=SECURITY, **_ADDED_PROMO_LINKS)
    def post(self, data):
        """Add a promo code (admin role); 409 PROMO_IS_EXISTS when the code is taken."""
        return promocodes.create_promo(tenant=_tenant(), values=data)


@blp.route("/redeem")
class RedeemPromocode(MethodView):
    @user_only
    @idempotent(_tenant_id)
    @blp.arguments(PromoRedeemSchema())
    @looks_up_codes()
    @blp.response(200, PromoCheckResultSchema)
    @blp.errors(400, 401, 403, 409, 422, 429)
    @blp.doc(security=SECURITY)
    def post(self, data):
        """Use the code once for `order.id`: answers like the check; a repeat records nothing.

        With `ttlSeconds` the use is held for `order.id` instead (answer's `reservation`);
        redeeming the same `order.id` without it confirms the hold.
        """
        verdict = promocodes.redeem(tenant=_tenant(), caller=bearer_caller(), order=_order(data))
        return _answer(verdict)


@blp.route("/release")
class ReleasePromocode(MethodView):
    @user_only
    @blp.arguments(PromoReleaseSchema())
    @looks_up_codes()
    @blp.response(200, PromoReleasedSchema)
    @blp.errors(400, 401, 403, 404, 409, 429)
    @blp.doc(security=SECURITY)
    def post(self, data):
        """Give back the use a redeem with ttlSeconds held for `order.id` (user role)."""
        promocodes.release(
            tenant=_tenant(),
            caller=bearer_caller(),
            coupon=data["coupon"],
            order_id=data["order"]["id"],
        )
        return {"status_code": 200, "message": promo_text("released")}


@blp.route("/<int(min=1, max=2147483647):promo_id>")
class PromocodeResource(MethodView):
    @admin_only
    @blp.arguments(PromoPatchSchema())
    @blp.response(201, PromoCreatedSchema)
    @blp.errors(400, 401, 403, 404, 409)
    @blp.doc(security=SECURITY)
    def patch(self, data, promo_id):
        """Change a promo code's fields (admin role); answers 201."""
        return promocodes.update_promo(tenant=_tenant(), promo_id=promo_id, changes=data)

    @admin_only
    @blp.response(201, PromoDeletedSchema)
    @blp.errors(401, 403, 404)
    @blp.doc(security=SECURITY)
    def delete(self, promo_id):
        """Delete a promo code (admin role); its history stays and its code stays taken."""
        promocodes.delete_promo(tenant=_tenant(), promo_id=promo_id)
        return {"status_code": 201, "message": promo_text("deleted")}
