"""The console's blueprint: CSRF checked before any view, security headers after."""

from __future__ import annotations

from flask import Blueprint, request

from app.console import session as admin_session
from app.dialects.common import check_storable
from app.engine.catalog import transfer
from app.errors import ValidationFailed

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
bp.dialect = "console"  # errors render as console pages (app.errors.render_pages)

# No inline script or style anywhere: the pages have no JavaScript, one stylesheet.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class CsrfRefused(ValidationFailed):
    type = "csrf_token_invalid"
    message = "This form was not sent from a console page of this session: reload and try again"


# Forms that upload a file may be larger than MAX_CONTENT_LENGTH (a CSV of codes).
UPLOAD_LIMITS = {"console.campaign_import": transfer.CSV_MAX_BYTES + 64 * 1024}


# Methods that change nothing (and carry no form): every other one needs the token.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@bp.before_request
def _check_input():
    if request.endpoint in UPLOAD_LIMITS:
        request.max_content_length = UPLOAD_LIMITS[request.endpoint]  # before the form is read
    if request.method not in SAFE_METHODS and not admin_session.csrf_valid(
        request.form.get(admin_session.CSRF_FIELD)
    ):
        raise CsrfRefused()
    # As the API refuses them: text the database cannot store never reaches a view.
    check_storable({**request.args.to_dict(), **request.form.to_dict()})


@bp.after_request
def page_headers(response):
    """Every console answer (error pages too: see pages.error_page)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.context_processor
def _csrf():
    return {"csrf_token": admin_session.csrf_token, "csrf_field": admin_session.CSRF_FIELD}
