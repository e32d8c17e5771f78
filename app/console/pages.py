"""Console pages: signing in and out, the overview, brands (discounts, fans), coupons and
their redemptions. Views are thin: the engine and the dialects' adapters do the work."""

from __future__ import annotations

import functools
import json

from flask import Response, g, redirect, render_template, request, url_for
from marshmallow import fields

from app import ratelimits
from app.console import forms
from app.console import session as admin_session
from app.console.blueprint import bp, page_headers
from app.database import utcnow
from app.dialects.brands import adapter as brands
from app.dialects.brands.fans import list_fans
from app.dialects.brands.schemas import DiscountPatchSchema, DiscountWriteSchema
from app.dialects.tenant.schemas.coupons import CouponPatchSchema, CouponSchema, CouponWriteSchema
from app.dialects.tenant.schemas.returns import RollbackRequestSchema
from app.engine import insights
from app.engine.catalog import coupons
from app.engine.rules import Money
from app.engine.usage import redemption, returns
from app.errors import DomainError, Unauthorized
from app.models import BrandDiscountType, DiscountType

PAGE_SIZE = 25
STATUSES = ("VALID", "INACTIVE", "EXPIRED", "USED")


def signed_in(view):
    """The page needs a signed-in admin (on g.admin); else to the sign-in page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        admin = admin_session.current_admin()
        if admin is None:
            admin_session.sign_out()
            return redirect(url_for("console.sign_in"))
        g.admin = admin
        return view(*args, **kwargs)

    return wrapper


def page(name: str, status: int = 200, /, **values) -> tuple[str, int]:
    return render_template(f"console/{name}", admin=g.get("admin"), **values), status


def refused(name: str, error: DomainError, /, **values) -> tuple[str, int]:
    """The page again, saying why the form was refused."""
    return page(name, error.status, problems=forms.problems(error), **values)


def error_page(error: DomainError) -> Response:
    """Any error under /admin as a page (app.errors renders the console's errors here)."""
    html = render_template("console/error.html", error=error, admin=g.get("admin"))
    return page_headers(Response(html, status=error.status, mimetype="text/html"))


# --- signing in and out ------------------------------------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    """A brand's API token, or a client's id and secret (a client with coupon_manage)."""
    if request.method != "POST":
        return page("sign_in.html")
    form = request.form
    try:
        # Failed sign-ins spend the credentials budget of the address, as the token
        # endpoint's do: while it is spent, even the right credentials get 429.
        with ratelimits.credentials_attempt("address", ratelimits.client_address()):
            if forms.text(form, "api_token"):
                admin_session.sign_in_brand(forms.text(form, "api_token"))
            elif forms.text(form, "client_id"):
                admin_session.sign_in_client(
                    forms.text(form, "client_id"), forms.text(form, "client_secret") or ""
                )
            else:
                raise Unauthorized("Enter a brand's API token, or a client id and secret")
    except DomainError as error:
        return refused("sign_in.html", error)
    return redirect(url_for("console.overview"))


@bp.post("/sign-out")
def sign_out():
    admin_session.sign_out()
    return redirect(url_for("console.sign_in"))


# --- overview ------------------------------------------------------------------------------


@bp.get("/")
@signed_in
def overview():
    figures = insights.overview(g.admin.tenant)
    most = max((day.redemptions for day in figures.days), default=0)
    return page("overview.html", figures=figures, most=max(most, 1))


# --- brands: discounts and fans ------------------------------------------------------------


def _discount_data(form) -> dict:
    data = {
        "name": forms.text(form, "name"),
        "description": forms.text(form, "description"),
        "discount_type": forms.text(form, "discount_type"),
        "discount_amount": forms.number(form, "discount_amount"),
        "usage_limit": forms.number(form, "usage_limit"),
        "free_shipping": forms.checked(form, "free_shipping"),
        "verify_email": forms.checked(form, "verify_email"),
        "fixed_code": forms.text(form, "fixed_code"),
        "date_expires": forms.text(form, "date_expires"),
    }
    return {key: value for key, value in data.items() if value is not None}


@bp.route("/discounts", methods=["GET", "POST"])
@signed_in
def discounts():
    values = {"types": BrandDiscountType.ALL}
    if request.method == "POST":
        try:
            data = forms.load(DiscountWriteSchema(), _discount_data(request.form))
            brands.create_discount(tenant=g.admin.tenant, values=data)
        except DomainError as error:
            values["listed"] = brands.list_discounts(tenant=g.admin.tenant)
            return refused("discounts.html", error, form=request.form, **values)
        return redirect(url_for("console.discounts"))
    return page("discounts.html", listed=brands.list_discounts(tenant=g.admin.tenant), **values)


@bp.route("/discounts/<int(min=1, max=2147483647):discount_id>", methods=["GET", "POST"])
@signed_in
def discount(discount_id: int):
    found = brands.get_discount(tenant=g.admin.tenant, discount_id=discount_id)
    if request.method == "POST":
        try:
            data = forms.load(DiscountPatchSchema(), _discount_data(request.form), partial=True)
            brands.update_discount(
                tenant=g.admin.tenant, discount_id=discount_id, values=data, replace=False
            )
        except DomainError as error:
            return refused("discount.html", error, discount=found, types=BrandDiscountType.ALL)
        return redirect(url_for("console.discounts"))
    return page("discount.html", discount=found, types=BrandDiscountType.ALL)


@bp.post("/discounts/<int(min=1, max=2147483647):discount_id>/delete")
@signed_in
def discount_delete(discount_id: int):
    brands.delete_discount(tenant=g.admin.tenant, discount_id=discount_id)
    return redirect(url_for("console.discounts"))


@bp.get("/fans")
@signed_in
def fans():
    number = page_number()
    rows, total = list_fans(tenant=g.admin.tenant, page=number, page_size=PAGE_SIZE)
    return page("fans.html", fans=rows, paging=paging_of(number, total))


# --- coupons -------------------------------------------------------------------------------


def page_number() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def paging_of(number: int, total: int) -> dict:
    pages = max(1, -(-total // PAGE_SIZE))
    return {"page": number, "pages": pages, "total": total}


def _metadata_pairs(raw: str | None) -> dict[str, str]:
    """`key=value, key2=value2` into pairs (a part without `=` is ignored)."""
    pairs = {}
    for part in (raw or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


@bp.get("/coupons")
@signed_in
def coupon_list():
    args = request.args
    status = args.get("status") if args.get("status") in STATUSES else None
    number = page_number()
    listed, total = coupons.list_coupons(
        tenant=g.admin.tenant,
        page=number,
        page_size=PAGE_SIZE,
        code_prefix=(args.get("q") or "").strip()[:64] or None,
        status=status,
        metadata=_metadata_pairs(args.get("metadata")),
    )
    now = utcnow()
    return page(
        "coupons.html",
        coupons=listed,
        statuses=STATUSES,
        status_of=lambda c: coupons.coupon_status(c, now),
        paging=paging_of(number, total),
        args=args,
    )


def _coupon_data(form) -> dict:
    data = forms.json_object(form, "more")
    fields = {
        "code": forms.text(form, "code"),
        "name": forms.text(form, "name"),
        "discountType": forms.text(form, "discount_type"),
        "discountPercentage": forms.number(form, "discount_percentage"),
        "discountAbsolute": forms.money(form, "discount_amount", "currency"),
        "maxRedemptions": forms.number(form, "max_redemptions"),
        "maxRedemptionsPerCustomer": forms.number(form, "max_redemptions_per_customer"),
    }
    data.update({key: value for key, value in fields.items() if value is not None})
    restrictions = data.setdefault("restrictions", {})
    if forms.text(form, "valid_until"):
        restrictions["validUntil"] = forms.text(form, "valid_until")
    if forms.money(form, "min_order", "currency"):
        restrictions["minOrderValue"] = forms.money(form, "min_order", "currency")
    if forms.money(form, "budget", "currency"):
        data["budget"] = {"maxDiscountTotal": forms.money(form, "budget", "currency")}
    return data


@bp.route("/coupons/new", methods=["GET", "POST"])
@signed_in
def coupon_new():
    values = {"types": DiscountType.ALL, "currency": g.admin.tenant.currency}
    if request.method == "POST":
        try:
            data = forms.load(CouponWriteSchema(), _coupon_data(request.form))
            created = coupons.create_coupon(tenant=g.admin.tenant, values=data)
        except DomainError as error:
            return refused("coupon_new.html", error, form=request.form, **values)
        return redirect(url_for("console.coupon", code=created.code))
    return page("coupon_new.html", form={}, **values)


def writable(schema, shown: dict) -> dict:
    """What of a read answer a write schema takes, nested objects too (an editor shows
    that and sends it back: counters and read-only figures stay out)."""
    kept = {}
    for name, field in schema.fields.items():
        key = field.data_key or name
        if field.dump_only or key not in shown:
            continue
        value = shown[key]
        if isinstance(field, fields.Nested) and isinstance(value, dict):
            value = writable(field.schema, value)
        kept[key] = value
    return kept


def _definition(found) -> str:
    shown = writable(CouponPatchSchema(), CouponSchema().dump(found))
    shown.pop("code", None)  # renaming is not the editor's business
    return json.dumps(shown, indent=2, ensure_ascii=False)


@bp.route("/coupons/<string:code>", methods=["GET", "POST"])
@signed_in
def coupon(code: str):
    found = coupons.get_for_caller(
        tenant=g.admin.tenant, code=code, caller=g.admin.caller, customer_number=None
    )
    definition = _definition(found)
    if request.method == "POST":
        definition = request.form.get("definition", "")
        try:
            changes = forms.json_object(request.form, "definition")
            data = forms.load(CouponPatchSchema(), changes, partial=True)
            found = coupons.update_coupon(tenant=g.admin.tenant, code=code, changes=data)
        except DomainError as error:
            return refused("coupon.html", error, coupon=found, definition=definition)
        return redirect(url_for("console.coupon", code=found.code, saved=1))
    return page("coupon.html", coupon=found, definition=definition, saved="saved" in request.args)


@bp.post("/coupons/<string:code>/<any(activate, deactivate, delete):action>")
@signed_in
def coupon_action(code: str, action: str):
    if action == "delete":
        coupons.delete_coupon(tenant=g.admin.tenant, code=code)
        return redirect(url_for("console.coupon_list"))
    coupons.update_coupon(
        tenant=g.admin.tenant, code=code, changes={"active": action == "activate"}
    )
    return redirect(url_for("console.coupon", code=code))


# --- redemptions ---------------------------------------------------------------------------


@bp.get("/coupons/<string:code>/redemptions")
@signed_in
def redemptions(code: str):
    return _redemptions_page(code)


def _redemptions_page(code: str, error: DomainError | None = None):
    """A coupon's redemptions, a page at a time; with `error`, why a rollback was refused."""
    number = page_number()
    rows, total = redemption.list_redemptions(
        tenant=g.admin.tenant, code=code, page=number, page_size=PAGE_SIZE
    )
    values = {"code": code, "redemptions": rows, "paging": paging_of(number, total)}
    if error is not None:
        return refused("redemptions.html", error, **values)
    return page("redemptions.html", **values)


@bp.post("/coupons/<string:code>/redemptions/<string:redemption_id>/rollback")
@signed_in
def rollback(code: str, redemption_id: str):
    form = request.form
    amount = forms.money(form, "amount", "currency")
    try:
        data = forms.load(
            RollbackRequestSchema(),
            {"reason": forms.text(form, "reason") or "", **({"amount": amount} if amount else {})},
        )
        returns.rollback(
            tenant=g.admin.tenant,
            redemption_id=redemption_id,
            caller=g.admin.caller,
            customer_hint=None,
            request=returns.Rollback(
                data["reason"], Money(**data["amount"]) if data.get("amount") else None
            ),
        )
    except DomainError as error:
        return _redemptions_page(code, error)
    return redirect(url_for("console.redemptions", code=code))
