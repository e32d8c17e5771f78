"""Tenant-scoped shoppers who sign up, log in and redeem as themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.database import utcnow
from app.extensions import db


class Customer(db.Model):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "customer_number"),
        # One account per inbox: the key ignores case, `+tags` and look-alike forms.
        UniqueConstraint("tenant_id", "email_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_number: Mapped[str] = mapped_column(String(32))
    # As the customer gave it (normalised by the email validator).
    email: Mapped[str] = mapped_column(String(254))
    # canonical.email_key(email): what signup and login compare.
    email_key: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
