"""Campaigns in the tenant coupon dialect: /coupon/v1/{tenant}/campaigns/..."""

from __future__ import annotations

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView

from app import heartbeat
from app.dialects.common import Blueprint, accepts, idempotent, link, link_to, links
from app.dialects.openapi import TOTAL_COUNT
from app.dialects.tenant.coupons import authenticate, manager, managers_only, tenant_id
from app.dialects.tenant.schemas.campaigns import (
    CampaignCreatedSchema,
    CampaignPatchSchema,
    CampaignSchema,
    CampaignWriteSchema,
    ImportQueuedSchema,
    ImportSchema,
)
from app.dialects.tenant.schemas.coupons import CouponErrorSchema, PageArgs
from app.engine.catalog import campaigns, transfer

blp = Blueprint(
    "campaigns",
    __name__,
    dialect="tenant",
    error_schema=CouponErrorSchema,
    url_prefix="/coupon/v1/<string:tenant>",
    description=(
        "Campaigns: bulk unique codes sharing one coupon template, generated in the "
        "background, exported and imported as CSV (scope coupon_manage)."
    ),
)
blp.before_request(authenticate)

CAMPAIGN = "/coupon/v1/{tenant}/campaigns/{campaign_id}"
_CAMPAIGN = {"tenant": "$request.path.tenant", "campaign_id": "$response.body#/id"}
_SECURITY = [{"bearerAuth": []}]
_CSV_BODY = {
    "required": True,
    "content": {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "code\nSPRING-0001\nSPRING-0002\n",
        }
    },
}


def codes_csv(campaign) -> Response:
    """A campaign's codes as a CSV download, streamed page by page (the API's and the
    console's)."""
    rows = transfer.export_rows(
        campaign, current_app.config["CAMPAIGN_EXPORT_BATCH"], on_page=heartbeat.beat
    )
    return Response(
        stream_with_context(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign.id}.csv"'},
    )


def _created(tenant: str, campaign, status: int):
    location = link_to(f"/coupon/v1/{tenant}/campaigns/{campaign.id}")
    body = {"id": campaign.id, "status": campaign.status, "link": location}
    return body, status, {"Location": location}


@blp.route("/campaigns")
class Campaigns(MethodView):
    @managers_only
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, CampaignSchema(many=True), headers=TOTAL_COUNT)
    @blp.errors(400, 401, 403, 404)
    @blp.doc(security=_SECURITY)
    def get(self, args, tenant):
        """List campaigns in creation order."""
        items, total = campaigns.list_campaigns(
            tenant=manager(tenant), page=args["page_number"], page_size=args["page_size"]
        )
        return items, {"X-Total-Count": str(total)}

    @managers_only
    @idempotent(tenant_id)
    @blp.arguments(CampaignWriteSchema())
    @blp.response(202, CampaignCreatedSchema)
    @blp.errors(400, 401, 403, 404, 409, 422)
    @blp.doc(
        security=_SECURITY,
        **links(
            202,
            GetCampaign=link(CAMPAIGN, "get", "Follow the generation", **_CAMPAIGN),
            ExportCodes=link(CAMPAIGN + "/codes", "get", "The codes as CSV", **_CAMPAIGN),
        ),
    )
    def post(self, data, tenant):
        """Create a campaign; its codes are generated in the background (202)."""
        campaign = campaigns.create_campaign(
            tenant=manager(tenant),
            name=data["name"],
            count=data.get("count"),
            code_config=data["code_config"],
            template=data["template"],
            settings=campaigns.Settings.from_config(current_app.config),
            budget=data.get("budget"),
        )
        return _created(tenant, campaign, 202)


@blp.route("/campaigns/<int(min=1, max=2147483647):campaign_id>")
class CampaignResource(MethodView):
    @managers_only
    @blp.response(200, CampaignSchema)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def get(self, tenant, campaign_id):
        """Status, progress and redemption totals of a campaign."""
        campaign = campaigns.get_campaign(tenant=manager(tenant), campaign_id=campaign_id)
        return {"campaign": campaign, "totals": campaigns.totals(campaign)}

    @managers_only
    @blp.arguments(CampaignPatchSchema())
    @blp.response(200, CampaignSchema)
    @blp.errors(400, 401, 403, 404)
    @blp.doc(security=_SECURITY)
    def patch(self, data, tenant, campaign_id):
        """Rename, deactivate or reactivate every code, or change every code's template."""
        return campaigns.update_campaign(
            tenant=manager(tenant), campaign_id=campaign_id, changes=data
        )

    @managers_only
    @blp.response(204)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def delete(self, tenant, campaign_id):
        """Delete a campaign; its codes are soft-deleted and stay taken."""
        campaigns.delete_campaign(tenant=manager(tenant), campaign_id=campaign_id)


@blp.route("/campaigns/<int(min=1, max=2147483647):campaign_id>/retry")
class Retry(MethodView):
    @managers_only
    @blp.response(202, CampaignCreatedSchema)
    @blp.errors(401, 403, 404, 409)
    @blp.doc(security=_SECURITY)
    def post(self, tenant, campaign_id):
        """Queue a failed campaign again; it resumes from the codes it has."""
        campaign = campaigns.retry_campaign(tenant=manager(tenant), campaign_id=campaign_id)
        return _created(tenant, campaign, 202)


@blp.route("/campaigns/<int(min=1, max=2147483647):campaign_id>/codes")
class Codes(MethodView):
    @managers_only
    @blp.doc(
        security=_SECURITY,
        responses={
            "200": {
                "description": "CSV `code,status,redemptionCount`, streamed (chunked); a "
                "stream cut short by a failure ends without its last chunk, never as a "
                "complete 200",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    @blp.errors(401, 403, 404)
    def get(self, tenant, campaign_id):
        """Export the codes as CSV, streamed page by page, whatever the campaign's size."""
        return codes_csv(campaigns.get_campaign(tenant=manager(tenant), campaign_id=campaign_id))

    @managers_only
    @accepts("text/csv", max_bytes=transfer.CSV_MAX_BYTES)
    @blp.response(202, ImportQueuedSchema)
    @blp.errors(400, 401, 403, 404)
    @blp.doc(
        security=_SECURITY,
        requestBody=_CSV_BODY,
        **links(
            202,
            GetImport=link(
                CAMPAIGN + "/imports/{import_id}",
                "get",
                "Follow the import and read its report",
                tenant="$request.path.tenant",
                campaign_id="$request.path.campaign_id",
                import_id="$response.body#/id",
            ),
        ),
    )
    def post(self, tenant, campaign_id):
        """Import codes from a CSV with a `code` column (up to 10 MB), in the background.

        The encoding and the header are checked at once (400); the lines are read by the
        worker a batch at a time: follow the link for progress and, at the end, the
        counts and the refused lines (invalid, or already taken).
        """
        job = transfer.queue_import(
            tenant=manager(tenant), campaign_id=campaign_id, data=request.get_data()
        )
        location = link_to(f"/coupon/v1/{tenant}/campaigns/{campaign_id}/imports/{job.id}")
        return {"id": job.id, "status": job.status, "link": location}, 202, {"Location": location}


@blp.route(
    "/campaigns/<int(min=1, max=2147483647):campaign_id>"
    "/imports/<int(min=1, max=2147483647):import_id>"
)
class Import(MethodView):
    @managers_only
    @blp.response(200, ImportSchema)
    @blp.errors(401, 403, 404)
    @blp.doc(security=_SECURITY)
    def get(self, tenant, campaign_id, import_id):
        """An import's progress and, once completed, its report."""
        return transfer.get_import(
            tenant=manager(tenant), campaign_id=campaign_id, import_id=import_id
        )
