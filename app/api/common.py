"""What every dialect's views share: the blueprint class and request guards."""

from __future__ import annotations

from flask import Flask, request
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
