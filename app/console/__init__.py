"""The console at /admin: pages for brand admins and tenant managers on the same engine.

Server-rendered (Jinja, autoescaped), no JavaScript at all and one stylesheet served
from the package, so it works offline and under a Content-Security-Policy of 'self'
only. Every form carries the session's CSRF token; a POST without it is refused
before any view runs. ADMIN_ENABLED=false leaves the console out (404).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from app.console import campaigns, pages, webhooks
from app.console import session as admin_session
from app.console.blueprint import bp
from app.errors import render_pages

ROUTES = (pages, campaigns, webhooks)  # imported for their routes on `bp`


def init_app(app: Flask) -> None:
    """Mount the console unless ADMIN_ENABLED is false."""
    if not app.config["ADMIN_ENABLED"]:
        return
    app.config.update(
        SESSION_COOKIE_NAME="coupon_console",
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["APP_ENV"] == "production",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=admin_session.LIFETIME_SECONDS),
    )
    app.register_blueprint(bp)
    render_pages("console", pages.error_page)
