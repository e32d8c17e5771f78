"""Leased jobs: rows a worker claims for a while (campaign generation, CSV imports).

A job row is `waiting` until a worker leases it (`working`, with `lease_owner` and
`lease_until`); a worker that dies leaves its lease to run out, and the next one
resumes the job where its last committed batch left it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from app.database import utcnow
from app.engine.uow import DATABASE_ERRORS
from app.extensions import db


def new_owner() -> str:
    """An identity for a generating process (leases name it)."""
    return uuid.uuid4().hex


def lease_next(model, *, waiting: str, working: str, owner: str, settings, row_id, where=()):
    """The first row of a job table (campaigns, imports) that is `waiting`, or `working`
    under this owner's lease or an expired one, now leased to `owner`; None when none
    is. SKIP LOCKED lets several workers share the table."""
    now = utcnow()
    query = (
        select(model)
        .where(
            *where,
            (model.status == waiting)
            | (
                (model.status == working)
                & ((model.lease_owner == owner) | (model.lease_until < now))
            ),
        )
        .order_by(model.id)
        .limit(1)
        .execution_options(populate_existing=True)
    )
    if row_id is not None:
        query = query.where(model.id == row_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = db.session.scalar(query)
    if row is not None:
        row.status = working
        row.lease_owner = owner
        row.lease_until = now + timedelta(seconds=settings.lease_seconds)
    return row


def failure_text(error: Exception) -> str:
    """Why a job's batch failed, for its row: the error's kind and the first line of the
    database's message, never statement parameters (codes stay out of it)."""
    original = getattr(error, "orig", error)
    summary = str(original).splitlines()[0] if str(original) else ""
    if isinstance(original, DATABASE_ERRORS):
        return f"the database refused a value ({type(original).__name__}: {summary[:200]})"
    return f"internal error ({type(original).__name__})"
