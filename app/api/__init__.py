"""One blueprint per dialect; views are thin."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register every blueprint with the OpenAPI-aware Api."""
    from app.api import brands, campaigns, checkout, coupons, customers, oauth, ops, promocodes
    from app.extensions import api

    for blueprint in (
        ops.blp,
        oauth.blp,
        coupons.blp,
        campaigns.blp,
        checkout.blp,
        customers.blp,
        brands.blp,
        promocodes.blp,
    ):
        api.register_blueprint(blueprint)
    ops.serve_swagger_assets(app)
