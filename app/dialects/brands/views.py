"""Brands dialect: /brands, /brands/{brand}/discounts, /brands/{brand}/fans, /fans/{token}."""

from __future__ import annotations

from flask import Response, current_app, g, request
from flask.views import MethodView

from app import ratelimits
from app.dialects.brands import adapter as brands
from app.dialects.brands import fans
from app.dialects.brands.schemas import (
    DiscountPatchSchema,
    DiscountSchema,
    DiscountWriteSchema,
    FanSchema,
    ProblemSchema,
)
from app.dialects.common import Blueprint, idempotent, link, links
from app.ratelimits import looks_up_codes

blp = Blueprint(
    "brands",
    __name__,
    error_schema=ProblemSchema,
    error_media_type="application/problem+json",
    description="Brands: discounts and fans (X-API-Token authentication).",
)
SECURITY = [{"apiToken": []}]
# Discount ids are 32-bit: a larger one names no discount (404), never an overflow.
MAX_ID = 2_147_483_647
DISCOUNT = "/brands/{brand}/discounts/{discount_id}"
_DISCOUNT = {"brand": "$request.path.brand", "discount_id": "$response.body#/id"}
_CREATED_DISCOUNT_LINKS = links(
    200,
    GetDiscount=link(DISCOUNT, "get", "Read the discount", **_DISCOUNT),
    ReplaceDiscount=link(DISCOUNT, "put", "Replace the discount", **_DISCOUNT),
    ChangeDiscount=link(DISCOUNT, "patch", "Change the discount", **_DISCOUNT),
    DeleteDiscount=link(DISCOUNT, "delete", "Retire the discount", **_DISCOUNT),
)


@blp.before_request
def _authenticate():
    """Authenticate before any body is parsed: a missing token is a 401, not a 400."""
    if request.endpoint == "brands.Activation" or request.routing_exception:
        return
    brand = (request.view_args or {}).get("brand")
    token = request.headers.get("X-API-Token")
    if not token:
        g.brand = brands.authenticate(api_token=token, brand=brand)  # 401: nothing to count
        return
    # Failed tokens are counted per address; once that budget is spent, every token is.
    with ratelimits.credentials_attempt("address", ratelimits.client_address()):
        g.brand = brands.authenticate(api_token=token, brand=brand)


def _brand(brand: str | None = None):
    """The authenticated brand (checked against the path in _authenticate)."""
    return g.brand


def _ok() -> Response:
    # The dialect's clients read a plain "OK".
    return Response("OK", status=200, mimetype="text/plain")


@blp.route("/brands")
@blp.route("/brands/", endpoint="brands_slash")
class Brands(MethodView):
    @blp.response(200, DiscountSchema(many=True))
    @blp.errors(401, 429)
    @blp.doc(security=SECURITY)
    def get(self):
        """The calling brand's discounts."""
        return brands.list_discounts(tenant=_brand())


@blp.route("/brands/<string:brand>/discounts")
class Discounts(MethodView):
    @blp.response(200, DiscountSchema(many=True))
    @blp.errors(401, 429)
    @blp.doc(security=SECURITY)
    def get(self, brand):
        """The brand's discounts in creation order."""
        return brands.list_discounts(tenant=_brand(brand))

    @idempotent(lambda brand, **_: _brand(brand).id)
    @blp.arguments(DiscountWriteSchema())
    @blp.response(200, DiscountSchema)
    @blp.errors(400, 401, 409, 429)
    @blp.doc(security=SECURITY, **_CREATED_DISCOUNT_LINKS)
    def post(self, data, brand):
        """Create a discount (answers 200)."""
        return brands.create_discount(tenant=_brand(brand), values=data)


@blp.route(f"/brands/<string:brand>/discounts/<int(min=1, max={MAX_ID}):discount_id>")
class DiscountResource(MethodView):
    @blp.response(200, DiscountSchema)
    @blp.errors(401, 404, 429)
    @blp.doc(security=SECURITY)
    def get(self, brand, discount_id):
        """One discount."""
        return brands.get_discount(tenant=_brand(brand), discount_id=discount_id)

    @blp.arguments(DiscountWriteSchema())
    @blp.response(200, DiscountSchema)
    @blp.errors(400, 401, 404, 429)
    @blp.doc(security=SECURITY)
    def put(self, data, brand, discount_id):
        """Replace a discount (affects codes issued from now on)."""
        return brands.update_discount(
            tenant=_brand(brand), discount_id=discount_id, values=data, replace=True
        )

    @blp.arguments(DiscountPatchSchema())
    @blp.response(200, DiscountSchema)
    @blp.errors(400, 401, 404, 429)
    @blp.doc(security=SECURITY)
    def patch(self, data, brand, discount_id):
        """Change some fields of a discount."""
        return brands.update_discount(
            tenant=_brand(brand), discount_id=discount_id, values=data, replace=False
        )

    @blp.response(204)
    @blp.errors(401, 404, 429)
    @blp.doc(security=SECURITY)
    def delete(self, brand, discount_id):
        """Retire a discount; codes already issued stay valid."""
        brands.delete_discount(tenant=_brand(brand), discount_id=discount_id)


@blp.route("/brands/<string:brand>/fans")
class Fans(MethodView):
    @blp.arguments(FanSchema())
    @blp.response(200, description="OK (text/plain)")
    @blp.errors(400, 401, 422, 429)
    @blp.doc(security=SECURITY)
    def post(self, data, brand):
        """Register a fan: code issued now, or after email verification."""
        config = current_app.config
        activation = fans.ActivationSettings(
            base_url=config["PUBLIC_BASE_URL"],
            secret=config["SECRET_KEY"],
            ttl_seconds=config["ACTIVATION_TTL_SECONDS"],
            resend_seconds=config["ACTIVATION_RESEND_SECONDS"],
        )
        fans.register_fan(tenant=_brand(brand), activation=activation, **data)
        return _ok()


@blp.route("/fans/<string:token>")
class Activation(MethodView):
    @looks_up_codes(by_address=True)
    @blp.response(200, description="OK (text/plain)")
    @blp.errors(404, 410, 429)
    def get(self, token):
        """The activation link from the verification email: issues the code once."""
        fans.activate(token=token)
        return _ok()
