"""`search_index_ddl` of a registry whose fields are SQL keywords (`order`, `user`, `key`):
quoted as each database needs, so the index is made and holds the fields' own text; names no
quoting can serve (malformed, FTS5's own columns, the search column) are refused by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lakeline.errors import InvalidValue
from lakeline.ids import new_uid
from lakeline.instance import Instance
from lakeline.models.base import Queryable
from lakeline.search import drop_search_index_ddl, search_index_ddl
from sqlalchemy import Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class KeywordBase(DeclarativeBase):
    metadata = MetaData()


class Step(KeywordBase, Queryable):
    """A module's registry whose search fields are keywords: `order` (both databases), `user`
    (PostgreSQL: CURRENT_USER when bare), `key` (quoted by SQLAlchemy on SQLite)."""

    __tablename__ = "testkw_steps"
    search_fields = ("order", "user", "key")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(16), unique=True)
    order: Mapped[str | None] = mapped_column(Text)
    user: Mapped[str | None] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(255))


@pytest.fixture
def steps(instance: Instance) -> Iterator[Instance]:
    KeywordBase.metadata.create_all(instance.engine)
    with instance.engine.begin() as conn:
        conn.execute(Step.__table__.insert(), {"uid": new_uid(), "order": "first alpha"})
        for statement in search_index_ddl("testkw_steps", Step.search_fields, instance.dialect):
            conn.exec_driver_sql(statement)
    yield instance
    with instance.engine.begin() as conn:
        for statement in drop_search_index_ddl("testkw_steps", instance.dialect):
            conn.exec_driver_sql(statement)
    KeywordBase.metadata.drop_all(instance.engine)


def test_keyword_fields_are_indexed_with_their_own_text(
    steps: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `order` was a syntax error on both databases; on PostgreSQL a bare `user` in
    the search column's expression is the connected role's name."""
    from lakeline import query

    rows = [
        {"uid": new_uid(), "order": f"alpha {i}", "user": "maria", "key": f"steps/{i}"}
        for i in range(25)
    ]
    with steps.engine.begin() as conn:
        conn.execute(Step.__table__.insert(), rows)
        role = conn.exec_driver_sql(
            "SELECT current_user" if steps.dialect == "postgresql" else "SELECT 'main'"
        ).scalar_one()
    assert Step.search("first").count() == 1  # a row written before the index
    assert Step.search("alpha").count() == 26
    assert Step.search("maria").count() == 25
    assert Step.search("steps").count() == 25
    assert Step.search(role).count() == 0
    monkeypatch.setattr(query, "SEARCH_POOL", 5)  # 25 whole-word matches fill a pool of 20
    assert len(Step.search("alpha", limit=2).all()) == 2
    from lakeline import search_vocab

    monkeypatch.setattr(search_vocab, "PREFIX_ROWS", -1)  # a prefix through the vocabulary
    assert len(Step.search("alph mar", limit=2).all()) == 2


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    ("table", "fields", "said"),
    [
        ("testkw_steps", ["Name"], "'Name'"),
        ("testkw_steps", ["a b"], "'a b'"),
        ("testkw_steps", ["name;drop"], "'name;drop'"),
        ("testkw_steps", ["rowid"], "'rowid'"),
        ("testkw_steps", ["rank"], "'rank'"),
        ("testkw_steps", ["search_vector"], "'search_vector'"),
        ("testkw_steps", ["testkw_steps_fts"], "'testkw_steps_fts'"),  # FTS5's table column
        ("order", ["name"], "'order'"),
        ("returning", ["name"], "'returning'"),  # keywords of SQLite or PostgreSQL
        ("lateral", ["name"], "'lateral'"),  # that SQLAlchemy's preparers do not quote
        ("testkw-steps", ["name"], "'testkw-steps'"),
    ],
)
def test_names_no_quoting_serves_are_refused_by_name(
    dialect: str, table: str, fields: list[str], said: str
) -> None:
    with pytest.raises(InvalidValue, match=said):
        search_index_ddl(table, fields, dialect)


class Unquoted(KeywordBase, Queryable):
    """Fields that SQLite (`returning`, `nothing`) or PostgreSQL (`lateral`, `collation`,
    `concurrently`, `tablesample`) reserve but SQLAlchemy's preparers leave bare: a module
    names such columns with `quote=True`."""

    __tablename__ = "testkw_bare"
    search_fields = ("returning", "nothing", "lateral", "collation", "concurrently", "tablesample")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(16), unique=True)
    returning: Mapped[str | None] = mapped_column("returning", Text, quote=True)
    nothing: Mapped[str | None] = mapped_column("nothing", Text, quote=True)
    lateral: Mapped[str | None] = mapped_column("lateral", Text, quote=True)
    collation: Mapped[str | None] = mapped_column("collation", Text, quote=True)
    concurrently: Mapped[str | None] = mapped_column("concurrently", Text, quote=True)
    tablesample: Mapped[str | None] = mapped_column("tablesample", Text, quote=True)


def test_fields_the_database_reserves_beyond_sqlalchemys_list_are_indexed(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: quoted only where SQLAlchemy's keyword lists say, so each of these was a syntax
    error in the index's DDL on the database that reserves it."""
    from lakeline import query

    Unquoted.__table__.create(instance.engine)
    fields = Unquoted.search_fields
    try:
        with instance.engine.begin() as conn:
            conn.execute(Unquoted.__table__.insert(), {"uid": new_uid(), "returning": "first"})
            for statement in search_index_ddl("testkw_bare", fields, instance.dialect):
                conn.exec_driver_sql(statement)
            rows = [{"uid": new_uid(), **{f: f"{f}word {i}" for f in fields}} for i in range(25)]
            conn.execute(Unquoted.__table__.insert(), rows)
        assert Unquoted.search("first").count() == 1  # a row written before the index
        assert {f: Unquoted.search(f"{f}word").count() for f in fields} == dict.fromkeys(fields, 25)
        monkeypatch.setattr(query, "SEARCH_POOL", 5)  # the whole-word ranking reads the fields
        assert len(Unquoted.search("lateralword", limit=2).all()) == 2
    finally:
        with instance.engine.begin() as conn:
            for statement in drop_search_index_ddl("testkw_bare", instance.dialect):
                conn.exec_driver_sql(statement)
        Unquoted.__table__.drop(instance.engine)


def test_the_0013_downgrade_keeps_keyword_fields(steps: Instance) -> None:
    """0013's downgrade writes the old expression of every search column lakeline made, a
    module's too. Before: its fields bare, so `order` was a syntax error and PostgreSQL's `user`
    the role's name. SQLite: 0013 changes nothing either way."""
    from alembic import command
    from lakeline.db.migrate import alembic_config, migrating, upgrade

    with steps.engine.begin() as conn:
        conn.execute(Step.__table__.insert(), {"uid": new_uid(), "order": "o1", "user": "u1"})
    cfg = alembic_config()
    with migrating(steps.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    assert (Step.search("o1").count(), Step.search("u1").count()) == (1, 1)
    upgrade(steps.engine)
    assert (Step.search("o1").count(), Step.search("u1").count()) == (1, 1)
