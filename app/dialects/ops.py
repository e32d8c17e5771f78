"""Operational endpoints: liveness and readiness."""

from __future__ import annotations

import swagger_ui_bundle
from flask import Flask, current_app, send_from_directory
from flask.views import MethodView
from marshmallow import Schema, fields

from app import draining, metrics
from app.dialects.common import Blueprint
from app.engine import health
from app.errors import NotFound

blp = Blueprint("ops", __name__, description="Liveness and readiness probes")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    database = fields.String(
        metadata={
            "example": "ok",
            "description": "`ok`, `unreachable`, or `not_migrated` (run `flask db upgrade`)",
        }
    )
    revision = fields.String(
        allow_none=True, metadata={"description": "The database's schema revision"}
    )
    expected = fields.String(
        metadata={"description": "The schema revision this code waits for (its newest)"}
    )


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(
        503,
        schema=HealthSchema,
        description="Database unreachable or not migrated to `expected`, or the host is "
        "draining before a stop (`status: draining`)",
    )
    def get(self):
        """The database answers and is migrated to this code's newest revision, and the
        host is not draining before a stop."""
        state = health.readiness(current_app.extensions["migrate"].directory)
        if draining.draining():
            body = {"status": "draining", "database": state.database}
            return {**body, "revision": state.revision, "expected": state.expected}, 503
        body = {
            "status": "ok" if state.ready else "unavailable",
            "database": state.database,
            "revision": state.revision,
            "expected": state.expected,
        }
        return body, 200 if state.ready else 503


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(
        responses={
            "200": {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    @blp.errors(404)
    def get(self):
        """Prometheus metrics of every worker (404 when METRICS_ENABLED is false)."""
        if not current_app.config["METRICS_ENABLED"]:
            raise NotFound("Metrics are not served here")
        return metrics.scrape(current_app)


def serve_swagger_assets(app: Flask) -> None:
    """Swagger UI's scripts and styles at /docs/assets/ (OPENAPI_SWAGGER_UI_URL), from the
    pinned swagger-ui-bundle package: /docs loads nothing from another origin."""

    def asset(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    app.add_url_rule("/docs/assets/<path:filename>", "swagger_assets", asset)
