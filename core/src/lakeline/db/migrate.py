"""Schema versions: check on connect, self-migrate SQLite (after a backup), migrate on demand."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from lakeline.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions; a test keeps the two in step.
HEAD_REVISION = "0005"


# Made by hand in migrations (FTS5 table and triggers, tsvector column): autogenerate skips them.
SEARCH_OBJECTS = frozenset({"search_vector", "ix_artifacts_search_vector"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic filter: leave the hand-made search machinery out of model comparisons."""
    return not (name in SEARCH_OBJECTS or (name or "").startswith("artifacts_fts"))


def alembic_config() -> Config:
    """An alembic Config pointing at lakeline's one migration tree."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def known_revisions() -> set[str]:
    """Every revision id in the migration tree."""
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(conn: Connection) -> str | None:
    """The schema revision the database is at, or None when it has no lakeline schema."""
    try:
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError):
        conn.rollback()
        return None
    return None if row is None else str(row[0])


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run migrations up to `revision` in one transaction."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def backup_sqlite(db_path: Path, revision: str | None) -> Path:
    """Copy a SQLite database consistently (online backup API) next to itself."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = db_path.with_name(f"{db_path.name}.backup-{revision}-{stamp}")
    src = sqlite3.connect(db_path)
    try:
        dst = sqlite3.connect(target)
        with dst:
            src.backup(dst)
        dst.close()
    finally:
        src.close()
    return target


def check_not_newer(engine: Engine, revision: str | None) -> None:
    """Raise SchemaOutOfDate when the database is at a revision this lakeline does not know
    (a newer lakeline migrated it): neither connecting nor `migrate` can do anything."""
    if revision is None or revision == HEAD_REVISION or revision in known_revisions():
        return
    where = engine.url.render_as_string(hide_password=True)
    raise SchemaOutOfDate(
        f"the database {where} is at schema revision {revision}, newer than this lakeline "
        f"knows ({HEAD_REVISION}): upgrade lakeline"
    )


def ensure_schema(engine: Engine, *, auto_migrate: bool) -> str | None:
    """Check the schema is current; migrate SQLite when allowed. Returns a backup path if made."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    where = engine.url.render_as_string(hide_password=True)
    if revision == HEAD_REVISION:
        return None
    if revision is None:
        raise SchemaOutOfDate(
            f"the database {where} has no lakeline schema: create the instance with "
            "`lakeline init`, or check the database URL"
        )
    check_not_newer(engine, revision)
    if not auto_migrate:
        raise SchemaOutOfDate(
            f"the database {where} is at schema revision {revision}, this lakeline needs "
            f"{HEAD_REVISION}: run `lakeline migrate` (back the database up first)"
        )
    backup = None
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        backup = str(backup_sqlite(Path(database), revision))
    upgrade(engine)
    return backup
