"""Console pages for campaigns: create one and watch it generate, its codes as CSV in and
out, switch it on and off, change its template, read its budget."""

from __future__ import annotations

import json

from flask import current_app, g, redirect, request, url_for

from app.console import forms
from app.console.blueprint import bp
from app.console.pages import (
    PAGE_SIZE,
    page,
    page_number,
    paging_of,
    refused,
    signed_in,
    writable,
)
from app.dialects.tenant.campaigns import codes_csv
from app.dialects.tenant.schemas.campaigns import (
    CampaignPatchSchema,
    CampaignSchema,
    CampaignWriteSchema,
)
from app.engine.catalog import campaigns, transfer
from app.errors import DomainError, ValidationFailed
from app.models import CampaignStatus, DiscountType, ImportStatus

CAMPAIGN = "/campaigns/<int(min=1, max=2147483647):campaign_id>"
# While codes are made or imported the page reloads itself this often (no JavaScript).
REFRESH_SECONDS = 1


def _listing(**values):
    number = page_number()
    listed, total = campaigns.list_campaigns(
        tenant=g.admin.tenant, page=number, page_size=PAGE_SIZE
    )
    return {
        "campaigns": listed,
        "paging": paging_of(number, total),
        "types": DiscountType.ALL,
        **values,
    }


def _campaign_data(form) -> dict:
    template = {
        "discountType": forms.text(form, "discount_type"),
        "discountPercentage": forms.number(form, "discount_percentage"),
        "discountAbsolute": forms.money(form, "discount_amount", "currency"),
        "maxRedemptions": forms.number(form, "max_redemptions"),
    }
    data = {
        "name": forms.text(form, "name"),
        "count": forms.number(form, "count"),
        "codeConfig": {
            key: value
            for key, value in {
                "prefix": forms.text(form, "prefix"),
                "length": forms.number(form, "length"),
            }.items()
            if value is not None
        },
        "template": {key: value for key, value in template.items() if value is not None},
    }
    budget = {
        "maxRedemptions": forms.number(form, "budget_redemptions"),
        "maxDiscountTotal": forms.money(form, "budget_amount", "currency"),
        "maxRedemptionsPerCustomer": forms.number(form, "budget_per_customer"),
    }
    budget = {key: value for key, value in budget.items() if value is not None}
    if budget:
        data["budget"] = budget
    return {key: value for key, value in data.items() if value is not None}


@bp.route("/campaigns", methods=["GET", "POST"])
@signed_in
def campaign_list():
    if request.method != "POST":
        return page("campaigns.html", form={}, **_listing())
    try:
        data = forms.load(CampaignWriteSchema(), _campaign_data(request.form))
        created = campaigns.create_campaign(
            tenant=g.admin.tenant,
            name=data["name"],
            count=data.get("count"),
            code_config=data["code_config"],
            template=data["template"],
            settings=campaigns.Settings.from_config(current_app.config),
            budget=data.get("budget"),
        )
    except DomainError as error:
        return refused("campaigns.html", error, form=request.form, **_listing())
    return redirect(url_for("console.campaign", campaign_id=created.id))


def _shown(campaign_id: int) -> dict:
    found = campaigns.get_campaign(tenant=g.admin.tenant, campaign_id=campaign_id)
    return CampaignSchema().dump({"campaign": found, "totals": campaigns.totals(found)})


def _template_text(shown: dict) -> str:
    template = writable(CampaignPatchSchema().fields["template"].schema, shown["template"])
    return json.dumps(template, indent=2, ensure_ascii=False)


def _campaign_page(campaign_id: int, status: int = 200, **values):
    shown = _shown(campaign_id)
    busy = shown["status"] in (CampaignStatus.QUEUED, CampaignStatus.GENERATING)
    values.setdefault("template", _template_text(shown))
    return page(
        "campaign.html",
        status,
        campaign=shown,
        budget=json.dumps(shown["totals"]["budget"], indent=2) if shown["totals"]["budget"] else "",
        refresh=REFRESH_SECONDS if busy else None,
        **values,
    )


@bp.get(CAMPAIGN)
@signed_in
def campaign(campaign_id: int):
    return _campaign_page(campaign_id)


@bp.post(CAMPAIGN + "/<any(activate, deactivate):action>")
@signed_in
def campaign_action(campaign_id: int, action: str):
    campaigns.update_campaign(
        tenant=g.admin.tenant, campaign_id=campaign_id, changes={"active": action == "activate"}
    )
    return redirect(url_for("console.campaign", campaign_id=campaign_id))


@bp.post(CAMPAIGN + "/template")
@signed_in
def campaign_template(campaign_id: int):
    try:
        template = forms.json_object(request.form, "template")
        changes = forms.load(CampaignPatchSchema(), {"template": template})
        campaigns.update_campaign(tenant=g.admin.tenant, campaign_id=campaign_id, changes=changes)
    except DomainError as error:
        return _campaign_page(
            campaign_id,
            error.status,
            problems=forms.problems(error),
            template=request.form.get("template", ""),
        )
    return redirect(url_for("console.campaign", campaign_id=campaign_id))


@bp.get(CAMPAIGN + "/codes.csv")
@signed_in
def campaign_codes(campaign_id: int):
    """The codes as CSV (the API's export)."""
    return codes_csv(campaigns.get_campaign(tenant=g.admin.tenant, campaign_id=campaign_id))


@bp.post(CAMPAIGN + "/imports")
@signed_in
def campaign_import(campaign_id: int):
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValidationFailed("Choose a CSV file with a `code` column")
        data = upload.read(transfer.CSV_MAX_BYTES + 1)
        if len(data) > transfer.CSV_MAX_BYTES:
            raise ValidationFailed("The file is over 10 MB")
        job = transfer.queue_import(tenant=g.admin.tenant, campaign_id=campaign_id, data=data)
    except DomainError as error:
        return _campaign_page(campaign_id, error.status, problems=forms.problems(error))
    return redirect(
        url_for("console.campaign_import_report", campaign_id=campaign_id, import_id=job.id)
    )


@bp.get(CAMPAIGN + "/imports/<int(min=1, max=2147483647):import_id>")
@signed_in
def campaign_import_report(campaign_id: int, import_id: int):
    job = transfer.get_import(tenant=g.admin.tenant, campaign_id=campaign_id, import_id=import_id)
    done = job.status in (ImportStatus.COMPLETED, ImportStatus.FAILED)
    return page(
        "import.html",
        job=job,
        campaign_id=campaign_id,
        refresh=None if done else REFRESH_SECONDS,
    )
