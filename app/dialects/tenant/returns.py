"""Returns (tenant coupon dialect): roll a redemption, or a whole order, back."""

from __future__ import annotations

from flask.views import MethodView

from app.auth import current_caller
from app.dialects.common import Blueprint, idempotent
from app.dialects.tenant.coupons import authenticate, tenant_id
from app.dialects.tenant.schemas.coupons import CouponErrorSchema, RedemptionSchema
from app.dialects.tenant.schemas.returns import (
    OrderRollbackRequestSchema,
    OrderRollbackSchema,
    RollbackRequestSchema,
)
from app.engine import tenants
from app.engine.rules import Money
from app.engine.usage import returns

blp = Blueprint(
    "returns",
    __name__,
    dialect="tenant",
    error_schema=CouponErrorSchema,
    url_prefix="/coupon/v1/<string:tenant>",
    description=(
        "Returns: roll a redemption back in full (its use comes back) or in part (money "
        "only), or every redemption of an order at once; the redemption stays, with why."
    ),
)
blp.before_request(authenticate)


@blp.route("/redemptions/<string:redemption_id>/rollback")
class RedemptionRollback(MethodView):
    @idempotent(tenant_id)
    @blp.arguments(RollbackRequestSchema())
    @blp.response(200, RedemptionSchema)
    @blp.errors(400, 401, 403, 404, 409, 422, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, data, tenant, redemption_id):
        """Roll a redemption back (coupon_manage, or a redeeming client for its customer)."""
        amount = data.get("amount")
        return returns.rollback(
            tenant=tenants.get_tenant(tenant),
            redemption_id=redemption_id,
            caller=current_caller(tenant),
            customer_hint=data["customer_number"],
            request=returns.Rollback(data["reason"], Money(**amount) if amount else None),
        )


@blp.route("/orders/<string:order_id>/rollback")
class OrderRollback(MethodView):
    @idempotent(tenant_id)
    @blp.arguments(OrderRollbackRequestSchema())
    @blp.response(200, OrderRollbackSchema)
    @blp.errors(400, 401, 403, 404, 409, 422, 429)
    @blp.doc(security=[{"bearerAuth": []}])
    def post(self, data, tenant, order_id):
        """Roll back every redemption of an order, in one transaction."""
        redemptions = returns.rollback_order(
            tenant=tenants.get_tenant(tenant),
            order_id=order_id,
            caller=current_caller(tenant),
            customer_hint=data["customer_number"],
            reason=data["reason"],
        )
        return {"order_id": order_id, "redemptions": redemptions}
