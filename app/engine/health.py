"""Readiness checks: the database answers and carries the schema this code expects."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.engine.uow import end_read
from app.extensions import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    database: str  # "ok", "unreachable" or "not_migrated"
    revision: str | None  # the database's schema revision
    expected: str  # the head revision of this code's migrations

    @property
    def ready(self) -> bool:
        return self.database == "ok"


@cache
def head_revision(migrations_directory: str) -> str:
    """The newest migration of this code (read once per process)."""
    config = Config()
    config.set_main_option("script_location", migrations_directory)
    return ScriptDirectory.from_config(config).get_current_head() or ""


def readiness(migrations_directory: str) -> Readiness:
    """Whether the database answers and is migrated to this code's head revision."""
    expected = head_revision(migrations_directory)
    try:
        revisions = db.session.execute(text("SELECT version_num FROM alembic_version")).all()
        end_read()
    except SQLAlchemyError as error:
        db.session.rollback()
        if not database_ok():
            return Readiness("unreachable", None, expected)
        log.warning("database not migrated: %s", type(getattr(error, "orig", error)).__name__)
        return Readiness("not_migrated", None, expected)
    revision = revisions[0][0] if len(revisions) == 1 else None
    return Readiness("ok" if revision == expected else "not_migrated", revision, expected)


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
