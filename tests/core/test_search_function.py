"""PostgreSQL: every search column calls a function holding its expression (migration 0021), so
an UPDATE no longer reads 0013's 100k-character expression: the same vectors, up and down."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.audit import verify
from lakeline.db.migrate import HEAD_REVISION
from lakeline.db.pg_helpers import LOCATE
from lakeline.instance import Instance
from lakeline.search import drop_search_index_ddl, pg_search_function, search_index_ddl
from lakeline.testing_servers import PostgresServer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from test_definer_overloads import _dump as _whole
from test_definer_overloads import _fresh, _migrate

pytestmark = pytest.mark.postgres

SEARCHABLE = (
    "artifacts", "collections", "features", "runs", "schemas", "storages", "transforms",
    "ulabels", "users", "testmod_notes",
)  # fmt: skip
TEXTS = ["Über µl naïve", "a.b-c_d ÅNGSTRÖM", "Łódź Ελλάδα Москва", "plain ascii words 42"]
KEY = {"k": f"{TEXTS[0]}/0.txt"}


def _vectors(instance: Instance) -> dict[str, tuple[int, str]]:
    """Each searchable table's (rows, md5 of its vectors by id)."""
    found = {}
    with instance.engine.connect() as conn:
        for table in SEARCHABLE:
            found[table] = tuple(
                conn.execute(
                    text(
                        f"SELECT count(*), md5(string_agg(id || ':' || search_vector::text, "
                        f"'|' ORDER BY id)) FROM {table}"
                    )
                ).one()
            )
    return found


def _dump(server: PostgresServer, database: str, without: str) -> str:
    """`pg_dump -s` of `database` (as the migration tests' `_dump`) without table `without`."""
    lines = _whole(server, database).split("\n\n")  # one object a paragraph
    return "\n\n".join(p for p in lines if without not in p)


def _expressions(instance: Instance) -> dict[str, str]:
    with instance.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, generation_expression FROM information_schema.columns "
                "WHERE column_name = 'search_vector' AND table_schema = current_schema()"
            )
        ).all()
    return {str(t): str(e) for t, e in rows}


def test_a_populated_catalog_keeps_its_vectors_across_0021_up_down_up(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    """Records of every searchable core table and a module's table, text of several scripts;
    down to 0020 (a fresh 0020's schema, `pg_dump -s`), up again (a fresh head's): the vectors
    are the same at each step, the audit chain verifies, and at head each column calls its
    table's function (no UPDATE reads the inline expression)."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    database = make_url(postgres_url).database
    assert database is not None
    with instance.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE testmod_notes (id serial PRIMARY KEY, title text, body varchar)"
        )
        for statement in search_index_ddl("testmod_notes", ("title", "body"), "postgresql"):
            conn.exec_driver_sql(statement)
        for i, words in enumerate(TEXTS):
            conn.execute(
                text("INSERT INTO testmod_notes (title, body) VALUES (:t, :b)"),
                {"t": words, "b": TEXTS[i - 1] if i % 2 else None},
            )
    folder = tmp_path / "files"
    folder.mkdir()
    for i, words in enumerate(TEXTS):
        path = folder / f"{i}.txt"
        path.write_text(words)
        ll.Artifact(str(path), key=f"{words}/{i}.txt", description=words).save()
    for i, words in enumerate(TEXTS):
        ll.ULabel(name=f"{words} {i}", description=words).save()
        ll.Feature(name=f"f{i} {words}", dtype="str", description=words).save()
    ll.Collection(ll.Artifact.filter(), key=TEXTS[2], description=TEXTS[1]).save()
    for i, words in enumerate(TEXTS):
        ll.track(key=f"{words} {i}")
        ll.finish()
    with instance.engine.begin() as conn:  # text in every field of a run, a transform, a user
        conn.execute(text("UPDATE users SET name = :n"), {"n": TEXTS[0]})
        conn.execute(text("UPDATE runs SET error = :e, host = :h"), {"e": TEXTS[2], "h": TEXTS[1]})
        conn.execute(text("UPDATE transforms SET description = :d, reference = :r"),
                     {"d": TEXTS[0], "r": TEXTS[3]})  # fmt: skip
    at_head = _vectors(instance)
    assert all(rows > 0 for table, (rows, _) in at_head.items() if table != "schemas"), at_head
    calls = _expressions(instance)
    assert set(calls) == set(SEARCHABLE)
    for table, expression in calls.items():
        assert f"lakeline_search_{table}(" in expression and "regexp_replace" not in expression
    with instance.engine.connect() as conn:  # immutable, the caller's rights, pg_catalog only
        functions = conn.execute(
            text(
                "SELECT proname, provolatile, prosecdef, proconfig FROM pg_proc "
                "WHERE proname LIKE 'lakeline_search_%' "
                f"AND pronamespace = to_regnamespace(({LOCATE}))"
            )
        ).all()
    assert sorted(f[0] for f in functions) == sorted(f"lakeline_search_{t}" for t in SEARCHABLE)
    assert {(f[1], f[2], tuple(f[3])) for f in functions} == {
        ("i", False, ("search_path=pg_catalog, pg_temp",))
    }

    _migrate(instance, "0020")
    assert _vectors(instance) == at_head
    assert all("lakeline_search_" not in e for e in _expressions(instance).values())
    # the module's table (no core's: left out) holds no function, the core's as a fresh 0020's
    assert _dump(postgres_server, database, "testmod_notes") == _fresh(postgres_server, "0020")
    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE artifacts SET description = 'at 0020' WHERE key = :k"), KEY)
    assert verify(instance).ok
    _migrate(instance, HEAD_REVISION)
    with instance.engine.begin() as conn:
        conn.execute(text("UPDATE artifacts SET description = :d WHERE key = :k"),
                     {"d": TEXTS[0], **KEY})  # fmt: skip
    assert _vectors(instance) == at_head
    assert all("lakeline_search_" in e for e in _expressions(instance).values())
    with instance.engine.begin() as conn:
        for statement in drop_search_index_ddl("testmod_notes", "postgresql"):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("DROP TABLE testmod_notes")
    assert _whole(postgres_server, database) == _fresh(postgres_server, HEAD_REVISION)
    verdict = verify(instance)
    assert verdict.ok and verdict.checked > 10


LONG = "testmod_samples_of_a_module_with_a_rather_long_name"  # > 47 characters: 63 with the prefix


def test_module_tables_with_long_names_get_functions_of_their_own_up_and_down(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Two module tables whose names pass 47 characters and share their first 47: each search
    column calls a function of its own (`lakeline_search_<table>` passed PostgreSQL's 63 bytes
    and was cut: the second table's was the first's name), and 0021's downgrade and upgrade
    find both (it skipped a table whose function name was cut)."""
    instance = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    tables = [f"{LONG}_one", f"{LONG}_two"]
    with instance.engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, title text)")
            for statement in search_index_ddl(table, ("title",), "postgresql"):
                conn.exec_driver_sql(statement)
            conn.execute(text(f"INSERT INTO {table} (title) VALUES (:t)"), {"t": TEXTS[2]})

    def state() -> dict[str, tuple[str, str]]:
        found = {}
        with instance.engine.connect() as conn:
            for table in tables:
                expression = conn.execute(
                    text(
                        "SELECT generation_expression FROM information_schema.columns "
                        "WHERE column_name = 'search_vector' AND table_name = :t"
                    ),
                    {"t": table},
                ).scalar_one()
                vector = conn.execute(text(f"SELECT search_vector::text FROM {table}")).scalar()
                found[table] = (str(expression), str(vector))
        return found

    at_head = state()
    for table, (expression, vector) in at_head.items():
        assert f".{pg_search_function(table)}(" in expression and "ngstr" not in vector
        assert len(pg_search_function(table).encode()) <= 63
    assert pg_search_function(tables[0]) != pg_search_function(tables[1])
    _migrate(instance, "0020")
    at_0020 = state()
    assert all("lakeline_search_" not in e for e, _ in at_0020.values()), at_0020
    assert [v for _, v in at_0020.values()] == [v for _, v in at_head.values()]
    _migrate(instance, HEAD_REVISION)
    assert state() == at_head
