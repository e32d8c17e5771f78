"""The HTTP dialects: each kind of client's contract (tenant coupons, promo codes, brands),
with thin views over the engine; `common` is what they share."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register every blueprint with the OpenAPI-aware Api."""
    from app.dialects import ops
    from app.dialects.brands import views as brands
    from app.dialects.promo import views as promocodes
    from app.dialects.tenant import (
        campaigns,
        checkout,
        coupons,
        customers,
        oauth,
        returns,
        webhooks,
    )
    from app.extensions import api

    for blueprint in (
        ops.blp,
        oauth.blp,
        coupons.blp,
        campaigns.blp,
        checkout.blp,
        returns.blp,
        webhooks.blp,
        customers.blp,
        brands.blp,
        promocodes.blp,
    ):
        api.register_blueprint(blueprint)
    ops.serve_swagger_assets(app)
