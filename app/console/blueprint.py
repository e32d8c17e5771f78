"""The console's blueprint: CSRF checked before any view, security headers after."""

from __future__ import annotations

from flask import Blueprint, request

from app.console import session as admin_session
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


@bp.before_request
def _check_csrf():
    if request.endpoint in UPLOAD_LIMITS:
        request.max_content_length = UPLOAD_LIMITS[request.endpoint]  # before the form is read
    if request.method == "POST" and not admin_session.csrf_valid(
        request.form.get(admin_session.CSRF_FIELD)
    ):
        raise CsrfRefused()


@bp.after_request
def _page_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.context_processor
def _csrf():
    return {"csrf_token": admin_session.csrf_token, "csrf_field": admin_session.CSRF_FIELD}
