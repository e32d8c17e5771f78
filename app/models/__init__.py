"""Typed SQLAlchemy 2.0 models. Models never commit; services do."""

from app.models.tenant import Client, Tenant

__all__ = ["Client", "Tenant"]
