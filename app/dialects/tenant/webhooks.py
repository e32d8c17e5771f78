"""Webhook endpoints (tenant coupon dialect): a tenant's own subscribers to its events."""

from __future__ import annotations

from types import SimpleNamespace

from flask import current_app
from flask.views import MethodView

from app.dialects.common import Blueprint, link_to
from app.dialects.tenant.coupons import authenticate, manager, managers_only
from app.dialects.tenant.schemas.coupons import CouponErrorSchema
from app.dialects.tenant.schemas.webhooks import (
    AttemptSchema,
    SecretSchema,
    TestSentSchema,
    WebhookCreatedSchema,
    WebhookPatchSchema,
    WebhookRequestSchema,
    WebhookSchema,
)
from app.engine import webhooks

blp = Blueprint(
    "webhooks",
    __name__,
    dialect="tenant",
    error_schema=CouponErrorSchema,
    url_prefix="/coupon/v1/<string:tenant>",
    description=(
        "Webhooks: your own endpoints for the tenant's events, each signed with its own "
        "secret (Standard Webhooks), with a delivery log (scope coupon_manage)."
    ),
)
blp.before_request(authenticate)
_SECURITY = [{"bearerAuth": []}]
ENDPOINT = "/webhooks/<string:endpoint_id>"


def url_policy() -> webhooks.UrlPolicy:
    config = current_app.config
    return webhooks.UrlPolicy(
        require_https=config["APP_ENV"] == "production",
        allow_private=config["WEBHOOK_ALLOW_PRIVATE"],
    )


def secret_key() -> str:
    return current_app.config["SECRET_KEY"]


@blp.route("/webhooks")
class Endpoints(MethodView):
    @managers_only
    @blp.response(200, WebhookSchema(many=True))
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def get(self, tenant):
        """The tenant's endpoints (at most 20), oldest first."""
        return webhooks.list_endpoints(tenant=manager(tenant))

    @managers_only
    @blp.arguments(WebhookRequestSchema())
    @blp.response(201, WebhookCreatedSchema)
    @blp.errors(400, 401, 403, 404)
    @blp.doc(security=_SECURITY)
    def post(self, data, tenant):
        """Add an endpoint; its secret is in this answer only."""
        endpoint, secret = webhooks.create_endpoint(
            tenant=manager(tenant),
            url=data["url"],
            events=data["events"],
            description=data["description"],
            secret_key=secret_key(),
            policy=url_policy(),
        )
        location = link_to(f"/coupon/v1/{tenant}/webhooks/{endpoint.id}")
        shown = {name: getattr(endpoint, name) for name in WebhookSchema().fields}
        return SimpleNamespace(**shown, secret=secret), 201, {"Location": location}


@blp.route(ENDPOINT)
class Endpoint(MethodView):
    @managers_only
    @blp.response(200, WebhookSchema)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def get(self, tenant, endpoint_id):
        """One endpoint (never its secret)."""
        return webhooks.get_endpoint(tenant=manager(tenant), endpoint_id=endpoint_id)

    @managers_only
    @blp.arguments(WebhookPatchSchema())
    @blp.response(200, WebhookSchema)
    @blp.errors(400, 401, 403, 404)
    @blp.doc(security=_SECURITY)
    def patch(self, data, tenant, endpoint_id):
        """Change its url, events, description, or switch it on or off."""
        return webhooks.update_endpoint(
            tenant=manager(tenant), endpoint_id=endpoint_id, changes=data, policy=url_policy()
        )

    @managers_only
    @blp.response(204)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def delete(self, tenant, endpoint_id):
        """Remove it, with its queued deliveries and its log."""
        webhooks.delete_endpoint(tenant=manager(tenant), endpoint_id=endpoint_id)


@blp.route(ENDPOINT + "/rotate-secret")
class RotateSecret(MethodView):
    @managers_only
    @blp.response(200, SecretSchema)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def post(self, tenant, endpoint_id):
        """A new secret; for 24 hours deliveries are signed with both."""
        secret = webhooks.rotate_secret(
            tenant=manager(tenant), endpoint_id=endpoint_id, secret_key=secret_key()
        )
        endpoint = webhooks.get_endpoint(tenant=manager(tenant), endpoint_id=endpoint_id)
        return {"secret": secret, "previous_until": endpoint.previous_until}


@blp.route(ENDPOINT + "/test")
class SendTest(MethodView):
    @managers_only
    @blp.response(202, TestSentSchema)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def post(self, tenant, endpoint_id):
        """Queue a `ping` to this endpoint; follow it in its deliveries."""
        return {"message_id": webhooks.send_test(tenant=manager(tenant), endpoint_id=endpoint_id)}


@blp.route(ENDPOINT + "/deliveries")
class Deliveries(MethodView):
    @managers_only
    @blp.response(200, AttemptSchema(many=True))
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def get(self, tenant, endpoint_id):
        """The last 100 delivery attempts, newest first."""
        return webhooks.attempts(tenant=manager(tenant), endpoint_id=endpoint_id)


@blp.route(ENDPOINT + "/deliveries/<string:message_id>/retry")
class RetryDelivery(MethodView):
    @managers_only
    @blp.response(202)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def post(self, tenant, endpoint_id, message_id):
        """Queue a dead delivery again, with a fresh retry budget."""
        webhooks.retry_delivery(
            tenant=manager(tenant), endpoint_id=endpoint_id, message_id=message_id
        )
