"""An artifact's references to users, storages and spaces: PostgreSQL checks them with one
statement-level trigger since migration 0019 (its foreign keys cost ~10 us of server CPU a bulk
row), SQLite with its foreign keys. A row naming a missing one is refused, and so is deleting,
renumbering or truncating one that artifacts still name, with the foreign keys' own errors
(IntegrityError; on PostgreSQL SQLSTATE 23503, their message and constraint name, checked
against 0018's foreign keys on a populated catalog, down and up again)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from alembic import command
from lakeline.access import spaces
from lakeline.access.audit import verify
from lakeline.db.migrate import HEAD_REVISION, alembic_config, migrating, upgrade
from lakeline.db.rows import insert_rows
from lakeline.instance import Instance
from lakeline.models import Artifact
from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from statements import until_waiting_on_a_lock

MISSING = 987654  # no user, storage or space has this id
CONSTRAINTS = {
    "created_by_id": "fk_artifacts_created_by_id_users",
    "storage_id": "fk_artifacts_storage_id_storages",
    "space_id": "artifacts_space_id_fkey",
}


def _saved(instance: Instance, tmp_path: Path) -> tuple[ll.Artifact, int]:
    """An artifact in the default storage and one in a second storage (registered in place);
    returns the second and its storage's id."""
    one = tmp_path / "one.txt"
    one.write_text("one")
    ll.Artifact(str(one), key="refs/one.txt").save()
    root = tmp_path / "other"
    root.mkdir()
    (root / "two.txt").write_text("two")
    storage = instance.register_storage(root)
    two = ll.Artifact(str(root / "two.txt"), key="refs/two.txt").save()
    assert two.storage_id == storage.id
    return two, storage.id


def _rows(instance: Instance, n: int, name: str = "refs", **changes: Any) -> list[dict[str, Any]]:
    """`n` new artifact rows copied from the first saved one (uids, stems and keys new, made
    from `name`), with `changes` in the last of them."""
    table = Artifact.__table__
    assert isinstance(table, Table)
    with instance.engine.connect() as conn:
        first = dict(conn.execute(table.select().order_by(table.c.id).limit(1)).mappings().one())
    del first["id"]
    rows = []
    for i in range(n):
        stem = f"{name}{i:05d}".ljust(12, "x")
        row = first | {"uid": f"{stem}0000", "stem": stem, "key": f"{name}/{i}"}
        rows.append(row)
    rows[-1].update(changes)
    return rows


_COPIED = (
    "suffix, size, hash, hash_type, n_files, storage_id, store_key, in_place, available, "
    "is_latest, created_by_id, created_at"
)
# 20 new rows in one statement, the last in a space that does not exist
_SPACE_ROWS = (
    f"INSERT INTO artifacts ({_COPIED}, uid, stem, key, space_id) SELECT {_COPIED}, "
    "'spacerow' || lpad(g::text, 4, '0') || '0000', 'spacerow' || lpad(g::text, 4, '0'), "
    "'space/' || g, CASE WHEN g = 20 THEN :missing ELSE 1 END "
    "FROM artifacts, generate_series(1, 20) g WHERE id = (SELECT min(id) FROM artifacts)"
)


def _refused(instance: Instance, statement: str, **params: Any) -> DBAPIError:
    """The error `statement` fails with (nothing written)."""
    with pytest.raises(DBAPIError) as caught, instance.engine.begin() as conn:
        conn.execute(text(statement), params)
    return caught.value


def _fk_error(error: DBAPIError, postgres: bool, constraint: str, detail: str) -> None:
    """The foreign key's error: an IntegrityError; on PostgreSQL 23503 naming `constraint`."""
    assert isinstance(error, IntegrityError)
    if not postgres:
        assert "FOREIGN KEY constraint failed" in str(error.orig)
        return
    diag = error.orig.diag  # type: ignore[union-attr]
    assert error.orig.sqlstate == "23503"  # type: ignore[union-attr]
    assert (diag.constraint_name, diag.table_name) == (constraint, "artifacts")
    assert detail in str(diag.message_detail)


def test_a_row_naming_a_missing_user_storage_or_space_is_refused(
    instance: Instance, tmp_path: Path
) -> None:
    """The insert side: a bulk insert (COPY on PostgreSQL, one statement) whose last row names a
    storage or user that does not exist writes no row; an UPDATE to a missing one is refused,
    to an existing one taken."""
    postgres = instance.dialect == "postgresql"
    two, second = _saved(instance, tmp_path)
    count = ll.Artifact.filter().count()
    columns = [("storage_id", "storages"), ("created_by_id", "users")]
    if postgres:  # SQLite's space_id is a plain column (0008): no foreign key to keep
        columns.append(("space_id", "spaces"))
    for column, table in columns:
        with pytest.raises(IntegrityError) as caught, instance.sessions.write() as session:
            if column == "space_id":  # not mapped: 20 rows in one INSERT ... SELECT
                session.execute(text(_SPACE_ROWS), {"missing": MISSING})
            else:
                rows = _rows(instance, 20, **{column: MISSING})
                insert_rows(session, Artifact.__table__, rows, unique="uid")
        detail = f'Key ({column})=({MISSING}) is not present in table "{table}".'
        _fk_error(caught.value, postgres, CONSTRAINTS[column], detail)
        assert ll.Artifact.filter().count() == count
        error = _refused(
            instance, f"UPDATE artifacts SET {column} = :v WHERE id = :id", v=MISSING, id=two.id
        )
        _fk_error(error, postgres, CONSTRAINTS[column], detail)
    with instance.engine.begin() as conn:  # an existing storage: taken
        default = {"s": instance.storage.id, "id": two.id}
        conn.execute(text("UPDATE artifacts SET storage_id = :s WHERE id = :id"), default)
        conn.execute(
            text("UPDATE artifacts SET storage_id = :s WHERE id = :id"), {"s": second, "id": two.id}
        )
    with instance.sessions.write() as session:  # several rows, all valid: written
        insert_rows(
            session, Artifact.__table__, _rows(instance, 20, storage_id=second), unique="uid"
        )
    assert ll.Artifact.filter().count() == count + 20


def _other_user(conn: Connection, postgres: bool, artifact_id: int) -> int:
    """A user no table but artifacts names, made the creator of artifact `artifact_id` (on
    PostgreSQL past the trigger that keeps a row's creator, in this transaction only)."""
    user_id = int(
        conn.execute(
            text(
                "INSERT INTO users (uid, handle, created_at) VALUES ('refsuser', 'refs-other', "
                "CURRENT_TIMESTAMP) RETURNING id"
            )
        ).scalar_one()
    )
    if postgres:
        conn.execute(text("ALTER TABLE artifacts DISABLE TRIGGER lakeline_creator_update"))
    conn.execute(
        text("UPDATE artifacts SET created_by_id = :u WHERE id = :id"),
        {"u": user_id, "id": artifact_id},
    )
    if postgres:
        conn.execute(text("ALTER TABLE artifacts ENABLE TRIGGER lakeline_creator_update"))
    return user_id


def test_deleting_a_user_storage_or_space_artifacts_name_is_refused(
    instance: Instance, tmp_path: Path
) -> None:
    """The delete side: deleting (or renumbering; on PostgreSQL also truncating) a storage, a
    user or a space that an artifact names is refused and changes nothing; once no artifact
    names it, it goes."""
    postgres = instance.dialect == "postgresql"
    two, second = _saved(instance, tmp_path)
    with instance.engine.begin() as conn:
        user = _other_user(conn, postgres, two.id)
    detail = 'is still referenced from table "artifacts".'
    cases = [
        ("DELETE FROM storages WHERE id = :id", second, "storage_id"),
        ("UPDATE storages SET id = 4242 WHERE id = :id", second, "storage_id"),
        ("DELETE FROM users WHERE id = :id", user, "created_by_id"),
    ]
    if postgres:
        spaces.create(instance, "lab")
        assert spaces.move(instance, "lab", keys=["refs/two.txt"]) == 1
        with instance.engine.connect() as conn:
            lab = conn.execute(text("SELECT id FROM spaces WHERE name = 'lab'")).scalar_one()
        cases.append(("DELETE FROM spaces WHERE id = :id", lab, "space_id"))
    for statement, id_, column in cases:
        error = _refused(instance, statement, id=id_)
        _fk_error(error, postgres, CONSTRAINTS[column], f"Key (id)=({id_}) {detail}")
    if postgres:
        error = _refused(instance, "TRUNCATE storages")
        assert error.orig.sqlstate == "0A000"  # type: ignore[union-attr]
        assert "cannot truncate a table referenced in a foreign key" in str(error.orig)
    with instance.engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM storages WHERE id = :s"), {"s": second}
            ).scalar()
            == 1
        )
    with instance.engine.begin() as conn:  # nothing names them any more: they go
        conn.execute(text("DELETE FROM artifacts WHERE id = :id"), {"id": two.id})
        conn.execute(text("DELETE FROM storages WHERE id = :s"), {"s": second})
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user})
        if postgres:
            conn.execute(text("DELETE FROM spaces WHERE name = 'lab'"))


def _error_of(instance: Instance, statement: str) -> tuple[Any, ...]:
    """What `statement` fails with: SQLSTATE, message, detail, schema, table, constraint."""
    with pytest.raises(DBAPIError) as caught, instance.engine.begin() as conn:
        conn.execute(text(statement))
    diag = caught.value.orig.diag  # type: ignore[union-attr]
    return (
        diag.sqlstate,
        diag.message_primary,
        diag.message_detail,
        diag.schema_name,  # the table's schema (not the functions' pinned pg_catalog)
        diag.table_name,
        diag.constraint_name,
    )


def _catalog(instance: Instance) -> tuple[list[str], list[str]]:
    """The foreign keys of artifacts to users/storages/spaces, and the 0019 triggers."""
    with instance.engine.connect() as conn:
        fks = conn.execute(
            text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'artifacts'::regclass "
                "AND contype = 'f' AND confrelid IN "
                "('users'::regclass, 'storages'::regclass, 'spaces'::regclass) ORDER BY 1"
            )
        ).scalars()
        triggers = conn.execute(
            text(
                "SELECT tgrelid::regclass || '.' || tgname FROM pg_trigger "
                "WHERE tgname LIKE 'lakeline\\_artifact\\_refs%' ORDER BY 1"
            )
        ).scalars()
        return [str(f) for f in fks], [str(t) for t in triggers]


@pytest.mark.postgres
def test_a_populated_catalog_upgrades_to_0019_and_back_with_the_same_errors(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """0018's foreign keys and 0019's triggers refuse the same statements with the same
    SQLSTATE, message, detail and constraint; the downgrade puts the foreign keys back
    (validated against every row), the upgrade takes them away again; nothing else changes."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    two, second = _saved(instance, tmp_path)
    statements = [
        f"UPDATE artifacts SET storage_id = {MISSING} WHERE id = {two.id}",
        f"UPDATE artifacts SET space_id = {MISSING} WHERE id = {two.id}",
        _SPACE_ROWS.replace(":missing", str(MISSING)),  # the statement-level check
        f"DELETE FROM storages WHERE id = {second}",
        f"UPDATE storages SET id = 4242 WHERE id = {second}",
        "TRUNCATE storages",
    ]
    with instance.engine.begin() as conn:
        user = _other_user(conn, True, two.id)
    statements.append(f"DELETE FROM users WHERE id = {user}")
    at_head = [_error_of(instance, s) for s in statements]
    fks, triggers = _catalog(instance)
    assert fks == [] and len(triggers) == 11

    def migrate_to(revision: str, how: Any) -> None:
        cfg = alembic_config()
        with migrating(instance.engine) as conn:
            cfg.attributes["connection"] = conn
            how(cfg, revision)

    migrate_to("0018", command.downgrade)
    assert _catalog(instance) == (sorted(CONSTRAINTS.values()), [])
    at_0018 = [_error_of(instance, s) for s in statements]
    # TRUNCATE's hint differs (the foreign key's offers CASCADE, which no trigger follows)
    assert at_0018 == at_head
    migrate_to(HEAD_REVISION, command.upgrade)
    upgrade(instance.engine)  # as `lakeline migrate` does: nothing left to do
    assert _catalog(instance) == (fks, triggers)
    assert [_error_of(instance, s) for s in statements] == at_head
    paths = [tmp_path / f"after{i}.txt" for i in range(20)]
    for i, path in enumerate(paths):
        path.write_text(f"after {i}")
    ll.save([ll.Artifact(str(p), key=f"after/{p.name}") for p in paths])
    assert ll.Artifact.filter(key__startswith="after/").count() == 20
    assert verify(instance).ok


@pytest.mark.postgres
def test_a_delete_waits_for_a_save_naming_the_storage_then_is_refused(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Concurrency as with the foreign key: the insert locks the storage's row (FOR KEY SHARE);
    a delete of the storage meanwhile waits for the insert's commit, then sees its row and is
    refused. The other order: an insert waits for an open delete, and once it commits is
    refused (no artifact names a deleted storage)."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    two, second = _saved(instance, tmp_path)
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM artifacts WHERE id = :id"), {"id": two.id})
    errors: list[BaseException] = []

    def delete_storage() -> None:
        try:
            with instance.engine.begin() as conn:
                conn.execute(text("DELETE FROM storages WHERE id = :s"), {"s": second})
        except BaseException as exc:
            errors.append(exc)

    with instance.sessions.write() as session:
        insert_rows(
            session, Artifact.__table__, _rows(instance, 20, storage_id=second), unique="uid"
        )
        deleter = threading.Thread(target=delete_storage)
        deleter.start()
        until_waiting_on_a_lock(instance.engine, deleter, "the delete of the storage")
    deleter.join()
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    assert errors[0].orig.sqlstate == "23503"  # type: ignore[union-attr]
    assert ll.Artifact.filter(storage_id=second).count() == 1

    with instance.engine.begin() as conn:  # the other order
        conn.execute(text("DELETE FROM artifacts WHERE storage_id = :s"), {"s": second})
    errors.clear()

    def insert() -> None:
        try:
            with instance.sessions.write() as session:
                rows = _rows(instance, 20, "late", storage_id=second)
                insert_rows(session, Artifact.__table__, rows, unique="uid")
        except BaseException as exc:
            errors.append(exc)

    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM storages WHERE id = :s"), {"s": second})
        inserter = threading.Thread(target=insert)
        inserter.start()
        until_waiting_on_a_lock(instance.engine, inserter, "the insert naming the storage")
    inserter.join()
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    assert errors[0].orig.sqlstate == "23503"  # type: ignore[union-attr]
    assert ll.Artifact.filter(storage_id=second).count() == 0
