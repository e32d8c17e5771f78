"""What every dialect's views share: the blueprint class and request guards."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, current_app, request
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser

from app.errors import UnsupportedMediaType


class _Parser(FlaskParser):
    # Bad input is a 400 in every dialect; 422 is kept for semantic conflicts.
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(SmorestBlueprint):
    """flask-smorest blueprint whose schema failures answer 400."""

    ARGUMENTS_PARSER = _Parser()


# Paths whose bodies may be form-encoded (RFC 6749 token requests).
_FORM_PATHS = ("/oauth2/",)


def install_request_guards(app: Flask) -> None:
    """Reject bodies that are not JSON before any view parses them."""

    @app.before_request
    def _require_json_body():
        if request.method not in ("POST", "PUT", "PATCH") or request.routing_exception:
            return None
        if request.path.startswith(_FORM_PATHS):
            return None
        if not request.content_length and not request.data:
            return None
        if not request.is_json:
            raise UnsupportedMediaType()
        return None


def link_to(path: str) -> str:
    """An absolute URL for a resource path (PUBLIC_BASE_URL when behind a proxy)."""
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    return base.rstrip("/") + path


def guessing_limit() -> str:
    """Limit on endpoints that can be used to probe codes."""
    return current_app.config["RATELIMIT_GUESSING"]


def auth_limit() -> str:
    """Limit on credential checks (token, login)."""
    return current_app.config["RATELIMIT_AUTH"]


def has_bearer_token() -> bool:
    """Authenticated reads are not limited as code guessing."""
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


def before_body(check: Callable[..., None]):
    """Run `check(**view_args)` before the view parses its body.

    Put it outermost, so a request without credentials is a 401 even when its
    body is bad too.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            check(**kwargs)
            return view(*args, **kwargs)

        return wrapper

    return decorator
