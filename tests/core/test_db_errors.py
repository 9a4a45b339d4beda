"""Database failures and out-of-range input: one clear LakelineError (one line, exit 1 in the
CLI), never a raw driver exception — on SQLite and PostgreSQL alike."""

from __future__ import annotations

import enum
import json
import os
import sqlite3
import uuid
from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.config import InstanceConfig
from lakeline.errors import (
    DatabaseCorrupted,
    DatabaseLocked,
    DatabasePermissionDenied,
    DatabaseUnreachable,
    InvalidValue,
    LakelineError,
    QueryError,
)
from lakeline.instance import Instance, disconnect
from lakeline.models import Run
from sqlalchemy.engine import make_url


def cli_fails(*args: str, match: str = "") -> str:
    """Run the CLI; it must exit 1 with one `error:` line and no traceback. Returns it."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 1, (result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def _file(tmp_path: Path, name: str = "x.txt", text: str = "x\n") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _sqlite_path(instance: Instance) -> Path:
    return Path(str(instance.engine.url.database))


# -- the database goes away, refuses, is locked or damaged -------------------------------------


def test_database_gone_after_connect(instance: Instance, tmp_path: Path) -> None:
    ll.Artifact(_file(tmp_path), key="x.txt").save()
    assert ll.Artifact.filter().count() == 1
    url = make_url(instance.config.db)
    if instance.dialect == "postgresql":
        import psycopg

        admin = url.set(database="postgres", drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
    with pytest.raises(DatabaseUnreachable) as raised:
        ll.Artifact.filter().count()
    assert "\n" not in str(raised.value)
    with pytest.raises(DatabaseUnreachable):
        ll.Artifact(_file(tmp_path, "y.txt"), key="y.txt").save()
    cli_fails("ls", match="database")
    if instance.dialect == "sqlite":  # no empty database was made in its place
        assert not Path(str(url.database)).exists()


@pytest.mark.postgres
def test_a_read_only_role_gets_one_clear_line(
    postgres_url: str, lakeline_home: Path, tmp_path: Path
) -> None:
    import psycopg

    instance = ll.init(tmp_path / "data", db=postgres_url, name="rw")
    ll.Artifact(_file(tmp_path), key="x.txt").save()
    role = f"reader_{uuid.uuid4().hex[:8]}"
    url = make_url(postgres_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    reader_url = url.set(username=role).render_as_string(hide_password=False)
    InstanceConfig(
        name="ro", db=reader_url, storage=instance.config.storage, uid=instance.uid
    ).write()
    disconnect()
    ll.connect("ro")
    assert ll.Artifact.filter().count() == 1  # reading is allowed
    with pytest.raises(DatabasePermissionDenied, match=f"role {role!r} may not write") as raised:
        ll.Artifact(_file(tmp_path, "y.txt"), key="y.txt").save()
    assert "\n" not in str(raised.value)
    cli_fails("-i", "ro", "save", str(_file(tmp_path, "z.txt")), "--key", "z.txt", match=role)
    disconnect()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_sqlite_write_lock_held_too_long(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKELINE_SQLITE_BUSY_TIMEOUT", "0.2")
    instance = ll.init(tmp_path / "data", name="locked")
    blocker = sqlite3.connect(_sqlite_path(instance), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseLocked, match=r"locked by another writer for more than 0\.2 s"):
            ll.Artifact(_file(tmp_path), key="x.txt").save()
        cli_fails("save", str(_file(tmp_path)), "--key", "x.txt", match="locked")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ll.Artifact(_file(tmp_path), key="x.txt").save().created


def test_a_file_that_is_not_a_database(lakeline_home: Path, tmp_path: Path) -> None:
    instance = ll.init(tmp_path / "data", name="garbage")
    path = _sqlite_path(instance)
    disconnect()
    instance.engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database\n" * 400)
    with pytest.raises(DatabaseCorrupted) as raised:
        ll.connect("garbage")
    assert "credentials" not in str(raised.value) and "server" not in str(raised.value)
    message = cli_fails("info", match="not a SQLite database")
    assert "credentials" not in message


def test_a_database_damaged_mid_file(lakeline_home: Path, tmp_path: Path) -> None:
    instance = ll.init(tmp_path / "data", name="damaged")
    ll.save(
        [
            ll.Artifact(
                _file(tmp_path, f"f{i}.txt", f"{i}\n" * 50),
                key=f"d/f{i}.txt",
                description="words " * 40,
            )
            for i in range(300)
        ]
    )
    path = _sqlite_path(instance)
    with instance.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    disconnect()
    instance.engine.dispose()
    size = path.stat().st_size
    assert size > 64 * 4096
    with path.open("r+b") as handle:  # overwrite pages in the middle, keep the header
        for offset in range(8 * 4096, size - 4096, 4 * 4096):
            handle.seek(offset)
            handle.write(os.urandom(4096))
    for args in (["info"], ["ls"], ["search", "words"]):
        cli_fails(*args, match="damaged")
    with pytest.raises(DatabaseCorrupted, match="damaged"):
        ll.connect("damaged")
        ll.Artifact.filter(is_latest=None).all()


def test_migrate_refuses_a_newer_schema_before_any_backup(instance: Instance) -> None:
    from sqlalchemy import text

    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    disconnect()
    folder = Path(instance.config.storage, ".lakeline")
    before = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    cli_fails("migrate", match="newer than this lakeline")
    after = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert after == before  # no backup made


@pytest.mark.parametrize(
    ("field", "value"), [("db", 123), ("storage", ["x"]), ("storage_options", "x"), ("uid", None)]
)
def test_malformed_config_values(lakeline_home: Path, field: str, value: object) -> None:
    config = {
        "name": "bad",
        "db": f"sqlite:///{lakeline_home / 'x.db'}",
        "storage": str(lakeline_home / "data"),
        "uid": "abc",
    }
    config[field] = value
    path = lakeline_home / "instances" / "bad.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(config))
    with pytest.raises(LakelineError, match=f"'{field}' must be"):
        ll.connect("bad")
    cli_fails("-i", "bad", "info", match=f"'{field}' must be")


# -- out-of-range queries ---------------------------------------------------------------------


def test_long_in_lists_are_batched_up_to_the_documented_limit(
    instance: Instance, tmp_path: Path
) -> None:
    saved = ll.save(
        [ll.Artifact(_file(tmp_path, f"{i}.txt", f"{i}"), key=f"k/{i}.txt") for i in range(3)]
    )
    keys = [f"k/{i}.txt" for i in range(100_000)]
    assert ll.Artifact.filter(key__in=keys).count() == 3
    assert {a.uid for a in ll.Artifact.filter(key__in=keys)} == {a.uid for a in saved}
    assert ll.Artifact.filter(key__not_in=keys[1:]).count() == 1
    ids = list(range(1, 100_001))
    assert ll.Artifact.filter(id__in=ids).count() == 3
    with pytest.raises(QueryError, match="the limit is 100000"):
        ll.Artifact.filter(key__in=[*keys, "one more"])


def test_numbers_out_of_range_are_query_errors(instance: Instance, tmp_path: Path) -> None:
    ll.Artifact(_file(tmp_path), key="x.txt").save()
    for lookups in ({"size__gt": 10**30}, {"id": 2**63}, {"size__in": [1, -(2**64)]}):
        with pytest.raises(QueryError, match="out of range"):
            ll.Artifact.filter(**lookups)
    with pytest.raises(QueryError, match="limit"):
        ll.Artifact.filter().limit(2**63)
    with pytest.raises(QueryError, match="offset"):
        ll.Artifact.filter().offset(2**63)
    assert ll.Artifact.filter(size__lt=2**63 - 1).limit(2**63 - 1).count() == 1


def test_searching_a_registry_without_text_fields(instance: Instance) -> None:
    from lakeline.models import RunInput
    from lakeline.query import QuerySet

    with pytest.raises(QueryError, match="RunInput has no text fields"):
        QuerySet(RunInput, instance).search("anything")


# -- values that cannot be stored: the same rule on both databases ----------------------------


def test_nul_bytes_and_over_long_values_are_refused_on_both(
    instance: Instance, tmp_path: Path
) -> None:
    path = _file(tmp_path)
    for kwargs, message in (
        ({"description": "bad\x00byte"}, "NUL"),
        ({"kind": "k" * 65}, "65 characters"),
        ({"description": "d" * 10_000, "kind": "x" * 200}, "200 characters"),
    ):
        with pytest.raises(InvalidValue, match=message):
            ll.Artifact(path, key="x.txt", **kwargs).save()  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="NUL"):
        ll.Artifact.reference(
            "s3://bucket/x.txt", key="r.txt", hash="ab\x00", hash_type="md5"
        ).save()
    assert ll.Artifact.filter(is_latest=None).count() == 0
    with pytest.raises(InvalidValue, match="NUL"):
        ll.Artifact.filter(description="a\x00").count()
    assert ll.Artifact(path, key="x.txt", description="d" * 10_000).save().created


@pytest.mark.parametrize("n", [1, 3, 21])
def test_a_str_subclass_is_checked_as_a_str_is(instance: Instance, n: int) -> None:
    """A text of a str subclass (numpy's `str_`: what a numpy array of names holds) is checked
    as a str is, on both databases: SQLite stored a NUL byte or an over-long value (the checks
    looked at exact `str` alone) and PostgreSQL failed with a raw error (a syntax error where
    `one_of` renders its values inline: a label's name looked up before it is saved)."""
    import numpy as np
    from lakeline.db.rows import one_of
    from lakeline.models import ULabel
    from sqlalchemy import select

    names = [np.str_(f"label {i}") for i in range(n - 1)]
    for bad, message in ((np.str_("a\x00b"), "NUL"), (np.str_("n" * 300), "300 characters")):
        with pytest.raises(InvalidValue, match=message):
            ll.save([ll.ULabel(name=name) for name in [*names, bad]])
    assert ll.ULabel.filter().count() == 0
    with pytest.raises(InvalidValue, match="NUL"):
        ll.ULabel.filter(name=np.str_("a\x00b")).count()
    nul = [*names, np.str_("a\x00b")]
    with instance.sessions.read() as session, pytest.raises(InvalidValue, match="NUL"):
        session.scalars(select(ULabel.id).where(one_of(session, ULabel.name, nul)))

    class Color(str, enum.Enum):  # noqa: UP042 (its str() is "Color.RED": bound as "red")
        RED = "red"

    ll.save([ll.ULabel(name=name) for name in [*names, np.str_("fine"), Color.RED]])
    assert {label.name for label in ll.ULabel.filter()} == {*names, "fine", "red"}


def test_nul_bytes_in_json_values_are_refused_on_both(instance: Instance) -> None:
    from lakeline.lineage.records import ensure_transform

    with instance.sessions.write() as session:
        transform = ensure_transform(session, key="nul.py", kind="script")
    with pytest.raises(InvalidValue, match="NUL"), instance.sessions.write() as session:
        session.add(Run(uid="nulparams0000000", transform_id=transform.id, params={"a": "b\x00"}))
    assert Run.filter(uid="nulparams0000000").count() == 0
    with instance.sessions.write() as session:
        session.add(Run(uid="okparams00000000", transform_id=transform.id, params={"a": ["b"]}))
    assert Run.get("okparams00000000").params == {"a": ["b"]}


def test_other_driver_errors_are_one_cli_line(instance: Instance) -> None:
    """A driver error lakeline has no word for (a table dropped behind its back) is still one
    line in the CLI, not a traceback."""
    from sqlalchemy import text

    with instance.engine.begin() as conn:
        conn.execute(text("DROP TABLE collection_artifacts"))
        conn.execute(text("DROP TABLE collections"))
    cli_fails("info", match="database error:")


def test_a_damaged_search_vocabulary(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vocabulary's lookups (`lakeline.search_vocab`, read through the driver's cursor)
    give the same error as every other read of a damaged file: they gave sqlite3's own
    DatabaseError, and the CLI a traceback."""
    from lakeline import search_vocab

    monkeypatch.setattr(search_vocab, "PREFIX_ROWS", -1)  # a prefix through the vocabulary
    instance = ll.init(tmp_path / "data", name="vocab")
    ll.save([ll.Artifact(_file(tmp_path, f"f{i}.txt", f"{i}\n"), key=f"d/f{i}.txt",
                         description=f"sequencing{i} words") for i in range(30)])  # fmt: skip
    path = _sqlite_path(instance)
    with instance.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        root = conn.exec_driver_sql(
            "SELECT rootpage FROM sqlite_master WHERE name = 'artifacts_fts_vocab'"
        ).scalar_one()
    disconnect()
    instance.engine.dispose()
    with path.open("r+b") as handle:  # the vocabulary's one page, and nothing else
        handle.seek((root - 1) * page)
        handle.write(b"\xff" * page)
    ll.connect("vocab")
    assert ll.Artifact.filter().count() == 30  # the rest of the file reads as before
    with pytest.raises(DatabaseCorrupted, match="damaged"):
        ll.Artifact.search("seq", limit=1).all()
    cli_fails("search", "seq", match="damaged")
