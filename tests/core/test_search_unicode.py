"""Non-ASCII letters are searched as SQLite's FTS5 (unicode61) reads them, on PostgreSQL too,
whatever its locale: the C locale's `[:alnum:]` is ASCII only, so PostgreSQL indexed 'über µl'
as 'ber l' and found neither (migration 0013 rebuilds every table's search column)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from alembic import command
from lakeline.db.migrate import HEAD_REVISION, alembic_config, migrating, upgrade
from lakeline.instance import Instance
from lakeline.testing_servers import PostgresServer
from sqlalchemy import text

LABELS = {
    "r1": "über 5 µl é",
    "r2": "ÜBER ÅNGSTRÖM Émile—Zola",
    "r3": "naïve reads.csv aü",
    "r4": "plain ascii x-y a_b",
    "r5": "Łódź DVOŘÁK",  # Latin Extended-A
}
# each query: the labels it finds (FTS5 folds case and drops diacritics: 'é' is 'e', a prefix)
FOUND = {
    "ü": {"r1", "r2"},
    "über": {"r1", "r2"},
    "ÜBER": {"r1", "r2"},  # an upper-case query, upper-case text
    "µl": {"r1"},
    "μl": {"r1"},  # Greek mu: FTS5 folds the micro sign to it
    "é": {"r1", "r2"},  # 'e' and 'emile'
    "ångström": {"r2"},
    "angstrom": {"r2"},
    "émile zola": {"r2"},
    "naïve": {"r3"},
    "naive": {"r3"},
    "aü": {"r3"},
    "read": {"r3"},  # punctuation separates words: 'reads.csv'
    "csv": {"r3"},
    "y": {"r4"},
    "a_b": {"r4"},
    "łódź": {"r5"},
    "ŁÓDŹ": {"r5"},
    "lodz": set(),  # FTS5 keeps 'ł' (no diacritic it drops)
    "dvořák": {"r5"},
    "dvorak": {"r5"},
}


def _labels() -> None:
    ll.save([ll.ULabel(name=name, description=description) for name, description in LABELS.items()])


def _found(query: str) -> set[str]:
    return {label.name for label in ll.ULabel.search(query)}


def test_non_ascii_words_are_found_as_fts5_finds_them(instance: Instance) -> None:
    _labels()
    assert {query: _found(query) for query in FOUND} == FOUND
    assert [x.name for x in ll.ULabel.search("über", limit=1)] == ["r2"]  # pooled: the newest
    assert ll.ULabel.search("ü", limit=5).count() == 2


def _old_module_table(instance: Instance) -> None:
    """A module's searchable table as its migration made it before 0013."""
    with instance.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE testmod_notes (id serial PRIMARY KEY, name varchar(255), body text)"
        )
        document = " || ' ' || ".join(
            f"coalesce(regexp_replace(left({f}, 100000), '[^[:alnum:]]+', ' ', 'g'), '')"
            for f in ("name", "body")
        )
        conn.exec_driver_sql(
            "ALTER TABLE testmod_notes ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            f"to_tsvector('simple'::regconfig, {document})) STORED"
        )
        conn.exec_driver_sql(
            "INSERT INTO testmod_notes (name, body) VALUES ('n1', 'Ölfilter µm'), ('n2', 'oil')"
        )


def _notes(instance: Instance, word: str) -> list[str]:
    with instance.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT name FROM testmod_notes WHERE search_vector @@ "
                    "to_tsquery('simple', :q) ORDER BY name"
                ),
                {"q": f"{word}:*"},
            ).scalars()
        )


def _artifacts_expression(instance: Instance) -> str:
    with instance.engine.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT generation_expression FROM information_schema.columns "
                    "WHERE table_name = 'artifacts' AND column_name = 'search_vector'"
                )
            ).scalar_one()
        )


def test_a_catalog_at_0012_is_migrated_and_then_finds_its_rows(
    instance: Instance, tmp_path: Path
) -> None:
    # saved before: this code's records have columns a catalog at 0012 has not (0028's)
    (tmp_path / "m.txt").write_text("measured")
    ll.Artifact(tmp_path / "m.txt", key="m.txt", description="Müller, 5 µl").save()
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    _labels()
    postgres = instance.dialect == "postgresql"
    if postgres:  # 0013's downgrade: artifacts' column as 0001 made it
        assert "COALESCE(description, ''::text)" in _artifacts_expression(instance)
        assert list(ll.Artifact.search("müller").to_dataframe(["key"])["key"]) == []
        _old_module_table(instance)
        assert _found("über") == set()  # the bug: the C locale's [:alnum:] is ASCII only
        assert _notes(instance, "m") == ["n1"]  # 'µm' indexed as 'm'
    upgrade(instance.engine)
    with instance.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            HEAD_REVISION
        )
    assert {query: _found(query) for query in FOUND} == FOUND
    assert [a.key for a in ll.Artifact.search("MÜLLER µl")] == ["m.txt"]
    if not postgres:
        return
    assert _notes(instance, "olfilter") == ["n1"]  # a module's table: rebuilt too
    assert _notes(instance, "μm") == ["n1"]
    assert _notes(instance, "m") == []
    with migrating(instance.engine) as conn:  # downgrade: the old expression, every row again
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    assert _notes(instance, "m") == ["n1"] and _found("über") == set()
    upgrade(instance.engine)
    assert _notes(instance, "olfilter") == ["n1"] and _found("ÜBER") == {"r1", "r2"}


def test_the_search_column_reads_text_the_same_in_a_utf8_locale(
    postgres_server: PostgresServer,
) -> None:
    """A database whose locale is C.UTF-8 (its [:alnum:] and lower() know 'Ü'), another whose
    locale is C: the same tokens."""
    from lakeline.db.engine import make_engine
    from lakeline.search import search_index_ddl

    admin = make_engine(postgres_server.url("postgres")).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    vectors = {}
    for locale in ("C", "C.UTF-8"):
        name = f"search_locale_{locale.replace('.', '_').replace('-', '').lower()}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(
                f"CREATE DATABASE {name} ENCODING 'UTF8' LOCALE '{locale}' TEMPLATE template0"
            )
        engine = make_engine(postgres_server.url(name))
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE t (id int, name text, body text)")
                for statement in search_index_ddl("t", ("name", "body"), "postgresql"):
                    conn.exec_driver_sql(statement)
                conn.execute(
                    text("INSERT INTO t VALUES (1, :a, :b)"),
                    {"a": LABELS["r2"], "b": " ".join([LABELS["r1"], LABELS["r3"], LABELS["r5"]])},
                )
                vectors[locale] = conn.execute(text("SELECT search_vector::text FROM t")).scalar()
        finally:
            engine.dispose()
            postgres_server.drop_database(name)
    admin.dispose()
    expected = (
        "'5':6 'angstrom':2 'au':12 'csv':11 'dvorak':14 'e':8 'emile':3 'naive':9 'reads':10 "
        "'uber':1,5 'zola':4 'łodz':13 'μl':7"
    )
    assert vectors == {"C": expected, "C.UTF-8": expected}


def _own_search_columns(instance: Instance) -> dict[str, str]:
    with instance.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT table_name, generation_expression FROM information_schema.columns "
                "WHERE table_name LIKE 'testmod_%' AND column_name = 'search_vector'"
            )
        ).all()
    return {str(name): str(expression) for name, expression in found}


def test_a_search_column_lakeline_did_not_make_is_left_as_it_is(instance: Instance) -> None:
    """0013 rebuilds lakeline's search columns only: a module's own `search_vector` (weighted,
    its table named as search_index_ddl refuses) made 0013 fail with 'not a plain SQL name'
    or was replaced by lakeline's expression."""
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    postgres = instance.dialect == "postgresql"
    if postgres:
        with instance.engine.begin() as conn:
            for table in ('"testmod_Odd"', "testmod_weighted"):
                conn.exec_driver_sql(
                    f"CREATE TABLE {table} (id serial PRIMARY KEY, name text, body text, "
                    "search_vector tsvector GENERATED ALWAYS AS ("
                    "setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A') || "
                    "to_tsvector('simple'::regconfig, coalesce(body, ''))) STORED)"
                )
        _old_module_table(instance)  # lakeline's column, as a module's migration made it
        before = _own_search_columns(instance)
    upgrade(instance.engine)
    with instance.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            HEAD_REVISION
        )
    if not postgres:
        return
    after = _own_search_columns(instance)
    assert {t: after[t] for t in ("testmod_Odd", "testmod_weighted")} == {
        t: before[t] for t in ("testmod_Odd", "testmod_weighted")
    }
    assert after["testmod_notes"] != before["testmod_notes"]  # lakeline's: rebuilt
    assert _notes(instance, "olfilter") == ["n1"]
    with migrating(instance.engine) as conn:  # and the downgrade leaves them too
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    again = _own_search_columns(instance)
    assert again == before


def test_a_word_with_an_underscore_is_a_phrase_whose_last_part_is_a_prefix(
    instance: Instance,
) -> None:
    """'v1_2' is the phrase 'v1' then a word starting '2' (FTS5's `"v1_2"*`); PostgreSQL's
    to_tsquery made every part of 'v1_2:*' a prefix, so it also found 'v10 2' there."""
    ll.save([ll.ULabel(name=n, description=d) for n, d in {"w1": "v1 2x", "w2": "v10 2"}.items()])
    assert _found("v1_2") == {"w1"}
    assert _found("v1_2x") == {"w1"}
    assert _found("V1_") == {"w1", "w2"}  # one part: a prefix
