"""OAuth2 token endpoint (client credentials), RFC 6749 errors."""

from __future__ import annotations

from flask import request
from flask.views import MethodView

from app import ratelimits
from app.dialects.common import Blueprint, check_storable, parse_json
from app.dialects.tenant.schemas.accounts import OAuthErrorSchema, TokenRequestSchema, TokenSchema
from app.engine import tokens
from app.errors import UnsupportedMediaType, ValidationFailed

blp = Blueprint(
    "oauth2",
    __name__,
    dialect="oauth",
    error_schema=OAuthErrorSchema,
    url_prefix="/oauth2/v1",
    description="OAuth2 tokens.",
)


def _token_request() -> dict:
    """Form (RFC 6749) or JSON body; HTTP Basic client authentication also accepted."""
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = request.form.to_dict()
    elif request.is_json:
        raw = parse_json(request.get_data(cache=True))
        if not isinstance(raw, dict):
            raise ValidationFailed("Body must be a JSON object")
    elif not request.get_data():
        raw = {}
    else:
        raise UnsupportedMediaType("Send application/x-www-form-urlencoded or JSON")
    if request.authorization and request.authorization.type == "basic":
        # RFC 6749 2.3: one client authentication method per request, never a mix.
        if "client_id" in raw or "client_secret" in raw:
            raise ValidationFailed(
                "Authenticate the client once: HTTP Basic or client_id and client_secret "
                "in the body, not both"
            )
        raw["client_id"] = request.authorization.username
        raw["client_secret"] = request.authorization.password
    check_storable(raw)
    errors = TokenRequestSchema().validate(raw)
    if errors:
        raise ValidationFailed("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
    return TokenRequestSchema().load(raw)


@blp.route("/token")
class Token(MethodView):
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                # JSON is accepted too, but one media type makes one request model.
                "application/x-www-form-urlencoded": {"schema": TokenRequestSchema},
            },
        }
    )
    @blp.response(200, TokenSchema)
    @blp.errors(400, 401, 429)
    def post(self):
        """Client credentials grant: a JWT bound to the client's tenant.

        Failed client authentications are limited per address (429 with Retry-After);
        while that budget is spent, every attempt from the address is refused."""
        with ratelimits.credentials_attempt("address", ratelimits.client_address()):
            data = _token_request()
            token = tokens.client_credentials(
                grant_type=data.get("grant_type"),
                client_id=data.get("client_id"),
                client_secret=data.get("client_secret"),
                scope=data.get("scope"),
            )
        return token, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}
