"""A few rows (one INSERT through SQLAlchemy) and many rows (multi-row VALUES on SQLite, COPY
on PostgreSQL) store the same values and fail the same way."""

from __future__ import annotations

from typing import Any

import lakeline as ll
import pytest
from lakeline.access.audit import entries
from lakeline.db.rows import RETURNING, insert_many, insert_rows
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder
from lakeline.models import Run, ULabel
from lakeline.models.base import JSONType, Queryable
from sqlalchemy import Integer, MetaData, String, Table, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _runs_table() -> Table:
    table = Run.__table__
    assert isinstance(table, Table)
    return table


def _run_rows(instance: Instance, n: int, prefix: str) -> tuple[str, list[dict[str, Any]]]:
    """A workflow run the Recorder started (no params) and `n` rows of runs of its transform
    with `params` and `status_log` None."""
    workflow = Recorder("rows").start_workflow(key=f"wf-{prefix}", engine_run_id=prefix)
    rows = [
        {
            "uid": f"{prefix}{i:0{16 - len(prefix)}d}",
            "transform_id": workflow.transform.id,
            "params": None,
            "status_log": None,
            "created_by_id": instance.user.id,
        }
        for i in range(n)
    ]
    return workflow.uid, rows


def _sql_null(instance: Instance) -> dict[str, bool]:
    """Per run uid: whether its `params` holds SQL NULL (not the JSON value `null`)."""
    with instance.sessions.read() as session:
        found = session.execute(text("SELECT uid, params IS NULL FROM runs")).all()
    return {uid: bool(null) for uid, null in found}


@pytest.mark.parametrize("n", [3, RETURNING + 1])
def test_a_json_none_is_sql_null_however_many_rows(instance: Instance, n: int) -> None:
    """None in a JSON column was the JSON value `null` up to RETURNING rows and for the
    Recorder's own run (SQLAlchemy's JSON type), SQL NULL beyond (VALUES/COPY) and for an ORM
    attribute left at None: `filter(params=None)` (IS NULL) missed the first, and SQLite's
    audit logged them as the string "null". Now SQL NULL on every path."""
    workflow, rows = _run_rows(instance, n, f"j{n}x")
    with instance.sessions.write() as session:
        insert_rows(session, _runs_table(), rows, unique="uid")
    uids = [workflow, *(row["uid"] for row in rows)]
    stored = _sql_null(instance)
    assert {uid: stored[uid] for uid in uids} == dict.fromkeys(uids, True)
    assert {run.uid for run in ll.Run.filter(params=None, status_log__isnull=True)} >= set(uids[1:])
    assert not set(uids) & {run.uid for run in ll.Run.filter(params__isnull=False)}
    for entry in entries(instance, uids=uids):
        assert "params" not in entry.changes, entry.changes
        assert entry.uid == workflow or "status_log" not in entry.changes, entry.changes


def test_a_json_null_an_earlier_version_stored_is_none_to_filters(instance: Instance) -> None:
    """Catalogs written before hold JSON `null` where None was given: such a field reads as
    None, so `=None` / `__isnull` find it as they find SQL NULL, and `__ne=None` does not."""
    _, rows = _run_rows(instance, 2, "legacy")
    uids = {row["uid"] for row in rows}
    with instance.sessions.write() as session:
        insert_rows(session, _runs_table(), rows, unique="uid")
        json_null = "'null'::jsonb" if instance.dialect == "postgresql" else "'null'"
        session.execute(
            text(f"UPDATE runs SET params = {json_null} WHERE uid = :uid"), {"uid": rows[0]["uid"]}
        )
    stored = _sql_null(instance)
    assert (stored[rows[0]["uid"]], stored[rows[1]["uid"]]) == (False, True)
    assert ll.Run.get(rows[0]["uid"]).params is None
    assert uids <= {run.uid for run in ll.Run.filter(params=None)}
    assert uids <= {run.uid for run in ll.Run.filter(params__isnull=True)}
    assert not uids & {run.uid for run in ll.Run.filter(params__ne=None)}
    assert not uids & {run.uid for run in ll.Run.filter(params__isnull=False)}


def _label_rows(instance: Instance, n: int, odd: str) -> list[dict[str, Any]]:
    """`n` label rows, the last of which has a key the others lack (`extra`), lacks one they
    have (`missing`) or has as many keys, one of them another (`swapped`)."""
    rows = [
        {"uid": f"m{i:011d}", "name": f"m{i}", "created_by_id": instance.user.id} for i in range(n)
    ]
    if odd == "extra":
        return [*rows[:-1], rows[-1] | {"description": "kept?"}]
    last = rows[-1] if odd == "missing" else rows[-1] | {"abbr": "a"}
    return [*(row | {"description": "d"} for row in rows[:-1]), last]


@pytest.mark.parametrize("n", [3, RETURNING + 1])
@pytest.mark.parametrize("odd", ["extra", "missing", "swapped"])
def test_insert_many_refuses_rows_with_other_columns_however_many(
    instance: Instance, n: int, odd: str
) -> None:
    """`insert_many` of more than RETURNING rows on SQLite (one executemany) raised
    SQLAlchemy's StatementError for a row with a key swapped for another; now the same
    InvalidValue naming the column as the other paths, and nothing written."""
    table = ULabel.__table__
    assert isinstance(table, Table)
    rows = _label_rows(instance, n, odd)
    with (
        pytest.raises(InvalidValue, match=r"same columns: row \d+ differs .* description"),
        instance.sessions.write() as session,
    ):
        insert_many(session, table, rows)
    assert not ll.ULabel.filter(name__startswith="m").count()


class _DocBase(DeclarativeBase):
    metadata = MetaData()


class _Doc(_DocBase, Queryable):
    """A module's registry with an indexed JSON column."""

    __tablename__ = "testjson_docs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(16), unique=True)
    doc: Mapped[dict[str, Any] | None] = mapped_column(JSONType, index=True)


def test_a_none_filter_reads_the_index_of_a_json_column(instance: Instance) -> None:
    """`=None` on a JSON column also finds the JSON `null` of older catalogs. Before, on
    PostgreSQL as `jsonb_typeof(doc) = 'null'`, which no index serves: a sequential scan
    however the column was indexed (now `doc = 'null'::jsonb`, a second index range)."""
    _Doc.__table__.create(instance.engine)
    try:
        rows = [{"uid": f"d{i:015d}", "doc": {"i": i} if i else None} for i in range(500)]
        with instance.engine.begin() as conn:
            conn.execute(_Doc.__table__.insert(), rows)
            json_null = "'null'::jsonb" if instance.dialect == "postgresql" else "'null'"
            conn.exec_driver_sql(f"UPDATE testjson_docs SET doc = {json_null} WHERE id = 2")
            conn.exec_driver_sql("ANALYZE")
        query = _Doc.filter(doc=None)
        assert sorted(d.uid for d in query) == ["d000000000000000", "d000000000000001"]
        sql = str(
            query.statement.compile(
                dialect=instance.engine.dialect, compile_kwargs={"literal_binds": True}
            )
        )
        with instance.engine.begin() as conn:
            if instance.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # whenever it can
                plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
            else:
                plan = "\n".join(
                    str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
                )
        assert "ix_testjson_docs_doc" in plan and "Seq Scan" not in plan, plan
    finally:
        _Doc.__table__.drop(instance.engine)


@pytest.mark.parametrize("n", [1, 3, RETURNING + 1])
def test_json_values_are_refused_and_kept_alike_however_many_rows(
    instance: Instance, n: int
) -> None:
    """A NUL byte or a lone surrogate anywhere in a JSON value (a value, a key, nested) is
    refused whatever path binds it (SQLite's bind checks the JSON text, walking the value only
    when the text has an escape that may be one), with nothing written; a surrogate pair, a
    text spelling `\\u0000` and other text are kept as given."""
    _, rows = _run_rows(instance, n, f"v{n}x")
    workflow_id = rows[0]["transform_id"]
    bad: list[Any] = [
        {"a": "b\x00"},
        {"a\x00": 1},
        {"a": [1, {"b": ["c\x00"]}]},
        ["\x00"],
        {"a": "lone \ud800"},
        {"k\udc00": True},
        [[{"x": ("y", "\udfff")}]],
    ]
    for value in bad:
        for column in ("params", "status_log"):
            odd = [dict(row) for row in rows]
            odd[-1][column] = value
            with pytest.raises(InvalidValue), instance.sessions.write() as session:
                insert_rows(session, _runs_table(), odd, unique="uid")
        with pytest.raises(InvalidValue), instance.sessions.write() as session:
            session.add(Run(uid=f"v{n}orm{0:09d}", transform_id=workflow_id, params=value))
    assert ll.Run.filter(uid__startswith=f"v{n}").count() == 0
    good: list[Any] = [
        {"emoji": "\U0001f600 ok", "\u00e9t\u00e9": ["\u4e2d", 1.5, None, False]},
        {"path": "C:\\u0000\\ud800 spelled out", "n": [1, 2, {"deep": "\\uD800"}]},
        ["plain", 3, {"x": None}],
    ]
    kept = [dict(row) for row in rows]
    for i, row in enumerate(kept):
        row["params"] = good[i % len(good)]
        row["status_log"] = [good[(i + 1) % len(good)]]
    with instance.sessions.write() as session:
        insert_rows(session, _runs_table(), kept, unique="uid")
    for row in kept:
        run = ll.Run.get(row["uid"])
        assert (run.params, run.status_log) == (row["params"], row["status_log"])
