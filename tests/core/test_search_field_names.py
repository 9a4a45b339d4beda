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
        ("order", ["name"], "'order'"),
        ("testkw-steps", ["name"], "'testkw-steps'"),
    ],
)
def test_names_no_quoting_serves_are_refused_by_name(
    dialect: str, table: str, fields: list[str], said: str
) -> None:
    with pytest.raises(InvalidValue, match=said):
        search_index_ddl(table, fields, dialect)
