"""Console pages for webhook endpoints: add one (its secret shown once), send a test, read
the delivery log, retry a dead delivery, rotate the secret, switch it on or off."""

from __future__ import annotations

from flask import g, redirect, request, url_for

from app.console import forms
from app.console.blueprint import bp
from app.console.pages import page, refused, signed_in
from app.dialects.tenant.schemas.webhooks import WebhookRequestSchema
from app.dialects.tenant.webhooks import secret_key, url_policy
from app.engine import webhooks
from app.errors import DomainError

ENDPOINT = "/webhooks/<string:endpoint_id>"


def _events(form) -> list[str]:
    chosen = form.getlist("events")
    return chosen or ["*"]


@bp.route("/webhooks", methods=["GET", "POST"])
@signed_in
def webhook_list():
    values = {"event_types": webhooks.TYPES}
    if request.method != "POST":
        return page(
            "webhooks.html", endpoints=webhooks.list_endpoints(tenant=g.admin.tenant), **values
        )
    form = request.form
    try:
        data = forms.load(
            WebhookRequestSchema(),
            {
                "url": forms.text(form, "url"),
                "events": _events(form),
                "description": forms.text(form, "description"),
            },
        )
        endpoint, secret = webhooks.create_endpoint(
            tenant=g.admin.tenant,
            url=data["url"],
            events=data["events"],
            description=data["description"],
            secret_key=secret_key(),
            policy=url_policy(),
        )
    except DomainError as error:
        listed = webhooks.list_endpoints(tenant=g.admin.tenant)
        return refused("webhooks.html", error, endpoints=listed, form=form, **values)
    # The secret is on this answer only: it is never shown again.
    return page("webhook.html", endpoint=endpoint, secret=secret, **_log(endpoint.id))


def _log(endpoint_id: str) -> dict:
    return {"attempts": webhooks.attempts(tenant=g.admin.tenant, endpoint_id=endpoint_id)}


@bp.get(ENDPOINT)
@signed_in
def webhook(endpoint_id: str):
    found = webhooks.get_endpoint(tenant=g.admin.tenant, endpoint_id=endpoint_id)
    return page("webhook.html", endpoint=found, sent="sent" in request.args, **_log(found.id))


@bp.post(ENDPOINT + "/test")
@signed_in
def webhook_test(endpoint_id: str):
    webhooks.send_test(tenant=g.admin.tenant, endpoint_id=endpoint_id)
    return redirect(url_for("console.webhook", endpoint_id=endpoint_id, sent=1))


@bp.post(ENDPOINT + "/rotate")
@signed_in
def webhook_rotate(endpoint_id: str):
    secret = webhooks.rotate_secret(
        tenant=g.admin.tenant, endpoint_id=endpoint_id, secret_key=secret_key()
    )
    found = webhooks.get_endpoint(tenant=g.admin.tenant, endpoint_id=endpoint_id)
    return page("webhook.html", endpoint=found, secret=secret, rotated=True, **_log(found.id))


@bp.post(ENDPOINT + "/<any(activate, deactivate):action>")
@signed_in
def webhook_action(endpoint_id: str, action: str):
    webhooks.update_endpoint(
        tenant=g.admin.tenant,
        endpoint_id=endpoint_id,
        changes={"active": action == "activate"},
        policy=url_policy(),
    )
    return redirect(url_for("console.webhook", endpoint_id=endpoint_id))


@bp.post(ENDPOINT + "/delete")
@signed_in
def webhook_delete(endpoint_id: str):
    webhooks.delete_endpoint(tenant=g.admin.tenant, endpoint_id=endpoint_id)
    return redirect(url_for("console.webhook_list"))


@bp.post(ENDPOINT + "/deliveries/<string:message_id>/retry")
@signed_in
def webhook_retry(endpoint_id: str, message_id: str):
    try:
        webhooks.retry_delivery(
            tenant=g.admin.tenant, endpoint_id=endpoint_id, message_id=message_id
        )
    except DomainError as error:
        found = webhooks.get_endpoint(tenant=g.admin.tenant, endpoint_id=endpoint_id)
        return refused("webhook.html", error, endpoint=found, **_log(found.id))
    return redirect(url_for("console.webhook", endpoint_id=endpoint_id))
