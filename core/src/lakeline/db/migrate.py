"""Schema versions: check on connect, self-migrate SQLite (after a backup), migrate on demand.

The core's revisions form one linear tree; each schema module mounted on an instance adds a
branch of its own (its revision ids start with its table prefix, core ids have no `_`), so
`alembic_version` holds one row per branch and is read without importing alembic.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from lakeline import checkpoints
from lakeline.errors import (
    DatabaseError,
    ModuleMigrationFailed,
    NotEnoughSpace,
    SchemaOutOfDate,
)

if TYPE_CHECKING:
    from alembic.config import Config

    from lakeline.modules import SchemaModule

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions; a test keeps the two in step.
HEAD_REVISION = "0028"


# One migration at a time per database (PostgreSQL advisory lock, for the transaction): a
# second `migrate` or `modules add` waits, then finds the schema current (alembic reads the
# versions under the lock) instead of creating the same tables again.
MIGRATION_LOCK = 0x6C616B656C696E65  # "lakeline"

# Connection.info key: foreign keys are off and `migrating` checks them before the commit (a
# migration that rebuilds SQLite tables, 0027, runs only then)
FK_CHECKED = "lakeline_foreign_keys_checked"

# The database's access machinery (migrations 0008+), not mapped by the models: spaces, the
# `space_id` columns the database fills and guards, the audit log.
ACCESS_OBJECTS = frozenset({"spaces", "space_members", "audit_log", "audit_head", "audit_pending"})
# foreign keys PostgreSQL checks with triggers since 0019 (SQLite keeps them): not compared
TRIGGER_CHECKED = frozenset(
    {"fk_artifacts_created_by_id_users", "fk_artifacts_storage_id_storages"}
)


def include_object_for(
    modules: Sequence[SchemaModule] = (),
) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic filter for model comparisons: the hand-made search and access machinery is
    left out, the foreign keys PostgreSQL checks with triggers (`TRIGGER_CHECKED`) too, and so
    are the tables of schema modules other than `modules` (models imported in this process
    that the database at hand does not mount)."""
    from lakeline.search import is_search_object

    mounted = tuple(m.prefix for m in modules)

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if is_search_object(name):  # FTS5 tables, tsvector columns, their indexes
            return False
        if name in ACCESS_OBJECTS or "space_id" in (name or ""):  # the access machinery
            return False
        if type_ == "foreign_key_constraint" and name in TRIGGER_CHECKED:
            return False
        table = obj if type_ == "table" else getattr(obj, "table", None)
        if table is None or not table.info.get("lakeline_module"):
            return True
        return bool(mounted) and str(table.name).startswith(mounted)

    return include


include_object = include_object_for()


def alembic_config(modules: Sequence[SchemaModule] = ()) -> Config:
    """An alembic Config: lakeline's tree plus the branches of `modules`."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if modules:
        locations = [str(MIGRATIONS_DIR / "versions"), *(m.location for m in modules)]
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("version_locations", os.pathsep.join(locations).replace("%", "%%"))
    cfg.attributes["include_object"] = include_object_for(modules)
    return cfg


def known_revisions(modules: Sequence[SchemaModule] = ()) -> set[str]:
    """Every revision id in the migration tree (and the branches of `modules`)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(modules))
    return {rev.revision for rev in script.walk_revisions()}


def revisions(conn: Connection) -> list[str] | None:
    """Every row of `alembic_version` (one per branch), or None without a lakeline schema."""
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except (OperationalError, ProgrammingError):
        conn.rollback()
        return None
    return [str(row) for row in rows]


def core_of(rows: Sequence[str] | None) -> str | None:
    """The core's revision among `alembic_version` rows (module revision ids have a `_`)."""
    return next((row for row in rows or () if "_" not in row), None)


def current_revision(conn: Connection) -> str | None:
    """The core schema revision the database is at, or None when it has no lakeline schema."""
    return core_of(revisions(conn))


def upgrade(
    engine: Engine,
    revision: str = "heads",
    *,
    modules: Sequence[SchemaModule] = (),
    then: Callable[[Connection], None] | None = None,
) -> None:
    """Run migrations up to `revision` (default: the core's head and every head of
    `modules`), then `then(conn)`, in one transaction: a failure changes nothing."""
    cfg = alembic_config(modules)
    if modules:
        check_branches(cfg, modules)
    with migrating(engine, rebuilds=_rebuilds(engine)) as conn:
        _upgrade(conn, cfg, revision, modules, then)
    # pooled connections cache what only a migration changes (`copy_rows._defaults`: a default's
    # function is named by its schema since 0022, `copy_rows._row_security`): opened afresh.
    # PostgreSQL only (the caches are its COPY's): an in-memory SQLite database lives in its
    # engine's one connection, gone with it
    if engine.dialect.name == "postgresql":
        engine.dispose()


def _upgrade(
    conn: Connection,
    cfg: Config,
    revision: str,
    modules: Sequence[SchemaModule],
    then: Callable[[Connection], None] | None,
) -> None:
    """`upgrade`'s work in its transaction."""
    from alembic import command

    if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE took the write lock
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        _check_schema(conn)
    checkpoints.reach("migrate.locked")
    cfg.attributes["connection"] = conn
    try:
        if modules and revision == "heads":  # the core first: module tables point to it
            command.upgrade(cfg, HEAD_REVISION)
        command.upgrade(cfg, revision)
    except Exception as exc:
        failed = _module_of_failure(exc, modules)
        if failed is None:
            raise
        module, script = failed
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModuleMigrationFailed(
            f"schema module {module.name!r} ({module.distribution}): migration {script} "
            f"failed, nothing was changed: {type(exc).__name__}: {first}"
        ) from exc
    if modules:  # module tables are audited like the core's (same transaction)
        from lakeline.access.audit import install_module_triggers

        install_module_triggers(conn, [m.prefix for m in modules])
    if conn.dialect.name == "postgresql" and (current_revision(conn) or "") >= "0014":
        # a migration may have changed an audited table's columns: its audit made anew
        from lakeline.access.audit_pg import install_audits

        install_audits(conn)
    if then is not None:
        then(conn)


def _rebuilds(engine: Engine) -> bool:
    """Whether an upgrade of `engine`'s catalog may rebuild SQLite tables: 0027 not run yet."""
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect() as conn:
        at = current_revision(conn)
    return at is None or at < "0027"


@contextmanager
def migrating(engine: Engine, *, rebuilds: bool = True) -> Iterator[Connection]:
    """A write transaction to migrate in (alembic's `upgrade`/`downgrade` on it). SQLite, when
    a migration to run `rebuilds` tables (0027, up or down): foreign keys off meanwhile (a
    pragma a transaction ignores, so set before it), as table rebuilds need
    (https://www.sqlite.org/lang_altertable.html, step 1: dropping the old table would run its
    ON DELETE actions), and checked before the commit (step 10): a migration that leaves rows
    pointing nowhere that were not there before is refused (a delete cascaded nowhere, a
    reference to nothing was written). Otherwise foreign keys stay on, as they always were."""
    with engine.execution_options(lakeline_write=True).connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection if sqlite and rebuilds else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
            conn.info[FK_CHECKED] = True
        try:
            with conn.begin():
                before = _dangling(conn) if raw is not None else None
                yield conn
                if before is not None:
                    made = Counter(_dangling(conn)) - Counter(before)
                    if made:
                        raise DatabaseError(
                            "the migration left rows whose foreign keys point nowhere (table, "
                            f"row, parent): {sorted(made, key=repr)[:5]}; nothing was changed"
                        )
        finally:
            if raw is not None:
                conn.info.pop(FK_CHECKED, None)
                try:
                    raw.execute("PRAGMA foreign_keys=ON")
                except BaseException:
                    conn.invalidate()  # never back to the pool with foreign keys off
                    raise


def _dangling(conn: Connection) -> list[tuple[object, ...]]:
    """SQLite: every row whose foreign key points nowhere (PRAGMA foreign_key_check)."""
    return [tuple(row)[:3] for row in conn.exec_driver_sql("PRAGMA foreign_key_check").all()]


def _check_schema(conn: Connection) -> None:
    """The catalog's schema (PostgreSQL: the first of the search_path that exists) must exist:
    a search_path naming none (a schema not made yet) left nowhere to create the tables."""
    if conn.execute(text("SELECT current_schema()")).scalar() is None:
        path = conn.execute(text("SHOW search_path")).scalar()
        raise DatabaseError(
            f"the database's search_path ({path}) names no schema that exists: the catalog's "
            "tables go into its first schema; create it first (CREATE SCHEMA ...), or connect "
            "with the one to use (`?options=-csearch_path%3D<schema>` in the URL)"
        )


def check_branches(cfg: Config, modules: Sequence[SchemaModule]) -> None:
    """Each module's revisions form its own branch: ids with its prefix, no `depends_on`, one
    head, the one it declares (ModuleConflict otherwise, before anything runs)."""
    from alembic.script import ScriptDirectory

    from lakeline.errors import ModuleConflict

    script = ScriptDirectory.from_config(cfg)
    for module in modules:
        where = module.location + os.sep
        revs = [r for r in script.walk_revisions() if os.path.realpath(r.path).startswith(where)]
        for rev in revs:
            problem = None
            if not module.owns_revision(rev.revision):
                problem = f"its id does not start with the prefix {module.prefix!r}"
            elif rev.dependencies:
                problem = "it has depends_on (the core is always migrated first)"
            if problem:
                raise ModuleConflict(
                    f"schema module {module.name!r} ({module.distribution}): revision "
                    f"{rev.revision} ({os.path.basename(rev.path)}) is refused: {problem}"
                )
        heads = sorted(r.revision for r in revs if r.is_head)
        if heads != [module.head]:
            raise ModuleConflict(
                f"schema module {module.name!r} ({module.distribution}) declares head "
                f"{module.head}, its migrations end at {', '.join(heads) or 'nothing'}"
            )


def _module_of_failure(
    exc: BaseException, modules: Sequence[SchemaModule]
) -> tuple[SchemaModule, str] | None:
    """The module (and revision file) whose migration raised `exc`, from its traceback."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = os.path.realpath(frame.filename)
        for module in modules:
            if path.startswith(module.location + os.sep):
                return module, os.path.basename(path)
    return None


def backup_sqlite(db_path: Path, revision: str | None, *, free_bytes: int | None = None) -> Path:
    """Copy a SQLite database consistently (online backup API) next to itself.

    First checks its folder's file system has room for the copy plus `backup_margin` (the
    migration that follows writes too): NotEnoughSpace, naming the sizes, before anything is
    written. `free_bytes` stands in for the free space `shutil.disk_usage` reports (tests
    have no small file system to fill)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = db_path.with_name(f"{db_path.name}.backup-{revision}-{stamp}")
    src = sqlite3.connect(db_path)
    try:
        size = (
            src.execute("PRAGMA page_count").fetchone()[0]
            * src.execute("PRAGMA page_size").fetchone()[0]
        )  # what the copy holds: the file and its committed WAL pages
        need = size + backup_margin(size, revision)
        free = shutil.disk_usage(target.parent).free if free_bytes is None else free_bytes
        if free < need:
            raise NotEnoughSpace(
                f"not enough free space to back up {db_path} ({_mib(size)}) before migrating "
                f"it: the backup and the migration need {_mib(need)} in {target.parent}, "
                f"its file system has {_mib(free)} free; free some space there and try again"
            )
        dst = sqlite3.connect(target)
        try:
            with dst:
                src.backup(dst)
        except BaseException as exc:
            dst.close()
            for leftover in (target, Path(f"{target}-journal"), Path(f"{target}-wal")):
                leftover.unlink(missing_ok=True)
            if not isinstance(exc, sqlite3.Error):
                raise
            done = "the partial backup is removed, nothing was migrated"
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise NotEnoughSpace(
                    f"backing up {db_path} ({_mib(size)}) before migrating it filled the file "
                    f"system of {target.parent}: {done}; free some space there and try again"
                ) from exc
            raise DatabaseError(
                f"backing up {db_path} ({_mib(size)}) to {target} before migrating it failed "
                f"({exc}): {done}"
            ) from exc
        dst.close()
    finally:
        src.close()
    return target


def backup_margin(size: int, revision: str | None = None) -> int:
    """Free space asked for beyond a backup of `size` bytes: 10% of it and 64 MiB; from a
    core `revision` before 0027 the size itself and 64 MiB (0027 rebuilds the record tables:
    a 2.07 GB catalog of 1M artifacts wrote a 1.2 GB write-ahead log and grew by 0.37 GB)."""
    if revision is not None and "_" not in revision and revision < "0027":
        return size + (64 << 20)
    return size // 10 + (64 << 20)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


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


def modules_behind(
    engine: Engine, rows: Sequence[str], modules: Sequence[SchemaModule]
) -> list[str]:
    """`module at revision` for each of `modules` whose branch is not at its head; raises
    SchemaOutOfDate for a branch newer than the installed module knows."""
    behind = []
    for module in modules:
        at = next((row for row in rows if module.owns_revision(row)), None)
        if at == module.head:
            continue
        if at is not None and at not in known_revisions([module]):
            where = engine.url.render_as_string(hide_password=True)
            raise SchemaOutOfDate(
                f"the database {where} is at revision {at} of schema module {module.name!r}, "
                f"newer than the installed {module.distribution} knows ({module.head}): "
                f"upgrade {module.distribution}"
            )
        behind.append(f"{module.name} at {at or 'none'} (head {module.head})")
    return behind


def ensure_schema(
    engine: Engine, *, auto_migrate: bool, modules: Sequence[SchemaModule] = ()
) -> str | None:
    """Check the schema (core and mounted `modules`) is current; migrate SQLite when allowed.
    Returns a backup path if made."""
    with engine.connect() as conn:
        rows = revisions(conn)
    return check_schema(engine, rows, auto_migrate=auto_migrate, modules=modules)


def check_schema(
    engine: Engine,
    rows: list[str] | None,
    *,
    auto_migrate: bool,
    modules: Sequence[SchemaModule] = (),
) -> str | None:
    """`ensure_schema` with the `alembic_version` rows read already (`revisions`)."""
    revision = core_of(rows)
    where = engine.url.render_as_string(hide_password=True)
    if revision == HEAD_REVISION and (
        not modules or not modules_behind(engine, rows or [], modules)
    ):
        return None
    if revision is None:
        raise SchemaOutOfDate(
            f"the database {where} has no lakeline schema: create the instance with "
            "`lakeline init`, or check the database URL"
        )
    check_not_newer(engine, revision)
    behind = modules_behind(engine, rows or [], modules)
    if not auto_migrate:
        if revision != HEAD_REVISION:
            raise SchemaOutOfDate(
                f"the database {where} is at schema revision {revision}, this lakeline needs "
                f"{HEAD_REVISION}: run `lakeline migrate` (back the database up and stop "
                "other writers first)"
            )
        raise SchemaOutOfDate(
            f"the database {where} has schema modules behind the installed ones "
            f"({'; '.join(behind)}): run `lakeline migrate` (back the database up first)"
        )
    backup = None
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        backup = str(backup_sqlite(Path(database), revision))
    upgrade(engine, modules=modules)
    return backup
