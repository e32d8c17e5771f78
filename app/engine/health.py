"""Readiness checks."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.engine.uow import end_read
from app.extensions import db

log = logging.getLogger(__name__)


def database_ok() -> bool:
    """True when the database answers `SELECT 1`."""
    try:
        db.session.execute(text("SELECT 1"))
        end_read()
        return True
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("database not reachable: %s", type(getattr(error, "orig", error)).__name__)
        return False
