"""`insert_rows` of many rows: SQLite takes a few multi-row INSERT ... VALUES statements of
bound parameters, PostgreSQL a COPY; either way every row in order, its id handed back, its
values as given, and one audit entry each in an intact chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.access.audit import entries, verify
from lakeline.db.rows import RETURNING, VALUES_ROWS, insert_rows
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.models import Artifact, ULabel
from sqlalchemy import Table, event, func, select, text


def _seed_row(tmp_path: Path) -> tuple[Table, dict[str, Any]]:
    """The artifacts table and the column values of one saved artifact (without its id)."""
    source = tmp_path / "a.txt"
    source.write_text("a")
    saved = ll.Artifact(str(source), key="seed.txt").save()
    table = Artifact.__table__
    assert isinstance(table, Table)
    return table, {c.key: getattr(saved, c.key) for c in table.columns if not c.primary_key}


def test_many_rows_go_in_few_statements_in_order_and_audited(
    instance: Instance, tmp_path: Path
) -> None:
    table, row = _seed_row(tmp_path)
    n = 2 * VALUES_ROWS + 1
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    rows = [
        {
            **row,
            "uid": f"r{i:011d}0000",
            "stem": f"r{i:011d}",
            "key": f"many/{i}.txt",
            "store_key": f"many/{i}.txt",
            "size": i,
            "description": None if i % 2 else f"row {i}",
            "in_place": bool(i % 3),
            "created_at": at,
        }
        for i in range(n)
    ]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "COPY")) and "artifacts " in statement:
            statements.append(statement)

    with instance.sessions.write() as session:
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            ids = insert_rows(session, table, rows, unique="uid")
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    if instance.dialect == "sqlite":  # not one per row, not a JSON array parsed per column
        assert len(statements) == 3
        assert not any("json_each" in s for s in statements)
        assert all("VALUES (?" in s for s in statements)
    assert ids == sorted(ids) and len(set(ids)) == n
    with instance.sessions.read() as session:
        stored = session.execute(
            select(
                table.c.id,
                table.c.uid,
                table.c.size,
                table.c.description,
                table.c.in_place,
                table.c.created_at,
            ).where(table.c.key.like("many/%"))
        ).all()
    by_id = {r.id: r for r in stored}
    for new_id, given in zip(ids, rows, strict=True):
        got = by_id[new_id]
        assert (got.uid, got.size, got.description, got.in_place) == (
            given["uid"],
            given["size"],
            given["description"],
            given["in_place"],
        )
        assert got.created_at.replace(tzinfo=UTC) == at
    logged = entries(instance, uids=[r["uid"] for r in rows])
    assert [e.uid for e in logged] == [r["uid"] for r in rows]
    assert {e.action for e in logged} == {"insert"}
    assert logged[0].changes["size"] == 0 and "description" not in logged[1].changes
    assert verify(instance).ok


@pytest.mark.parametrize("n", [5, VALUES_ROWS + 7])  # a few: PostgreSQL's rows as JSON
@pytest.mark.parametrize(
    ("column", "bad", "said"),
    [("description", "late\x00byte", "NUL byte"), ("kind", "k" * 65, "at most 64")],
)
def test_a_bad_value_deep_in_many_rows_is_refused_and_nothing_is_written(
    instance: Instance, tmp_path: Path, column: str, bad: str, said: str, n: int
) -> None:
    """Many rows' strings are checked a column at once: a NUL byte or an over-long value in
    any row is still refused before the database sees it, naming the value."""
    table, row = _seed_row(tmp_path)
    rows = [
        {**row, "uid": f"b{i:011d}0000", "stem": f"b{i:011d}", "key": f"bad/{i}.txt"}
        for i in range(n)
    ]
    rows[n - 3][column] = bad
    with pytest.raises(InvalidValue, match=said), instance.sessions.write() as session:
        insert_rows(session, table, rows, unique="uid")
    assert ll.Artifact.filter(key__startswith="bad/").count() == 0
    assert verify(instance).ok


@pytest.mark.parametrize("n", [4, VALUES_ROWS + 3])
def test_many_rows_times_are_stored_as_one_row_at_a_time_would_be(
    instance: Instance, tmp_path: Path, n: int
) -> None:
    """A column of times is converted at once on SQLite: the same text the per-value bind
    processor writes (any zone, no microseconds, an early year), the same instants read
    back on either database, and a naive time refused."""
    table, row = _seed_row(tmp_path)
    times = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 7, 1, 0, 30, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2025, 3, 30, 1, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-8))),
    ]
    rows = [
        {**row, "uid": f"t{i:011d}0000", "stem": f"t{i:011d}", "key": f"times/{i}.txt"}
        | {"created_at": times[i % len(times)]}
        for i in range(n)
    ]
    with instance.sessions.write() as session:
        ids = insert_rows(session, table, rows, unique="uid")
        if instance.dialect == "sqlite":
            dialect = session.get_bind().dialect
            one = table.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
            stored = session.execute(
                text("SELECT id, created_at FROM artifacts WHERE key LIKE 'times/%'")
            ).all()
            texts = dict(stored)
            assert [texts[i] for i in ids] == [one(r["created_at"]) for r in rows]
    with instance.sessions.read() as session:
        back = dict(session.execute(select(table.c.id, table.c.created_at)).all())
    assert [back[i] for i in ids] == [r["created_at"] for r in rows]
    naive = [{**r, "uid": f"n{i:011d}0000", "key": f"naive/{i}.txt"} for i, r in enumerate(rows)]
    naive[-2]["created_at"] = datetime(2026, 1, 1)  # no zone: which instant is unknown
    with pytest.raises(InvalidValue, match="naive"), instance.sessions.write() as session:
        insert_rows(session, table, naive, unique="uid")
    assert ll.Artifact.filter(key__startswith="naive/").count() == 0


def _label_rows(instance: Instance, n: int, start: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"uid": f"d{start + i:011d}", "name": f"d{start + i}", "created_by_id": instance.user.id}
        | extra
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [RETURNING, RETURNING + 1, VALUES_ROWS + 1])
def test_columns_left_out_get_their_python_defaults_however_many_rows(
    instance: Instance, n: int
) -> None:
    """A column the rows leave out gets its `Column(default=...)` on every path: a few rows
    went through SQLAlchemy's INSERT (defaults filled), more through COPY / multi-row VALUES,
    which wrote NULL: 17 labels without `is_type` failed its NOT NULL where 16 went in."""
    table = ULabel.__table__
    assert isinstance(table, Table)
    rows = _label_rows(instance, n, 0)
    with instance.sessions.write() as session:
        ids = insert_rows(session, table, rows, unique="uid")
    with instance.sessions.read() as session:
        stored = session.execute(
            select(table.c.is_type, table.c.created_at).where(table.c.id.in_(ids))
        ).all()
    assert len(stored) == n
    assert {is_type for is_type, _ in stored} == {False}
    assert all(created_at is not None for _, created_at in stored)


@pytest.mark.parametrize("n", [3, RETURNING + 1])
@pytest.mark.parametrize("odd", ["extra", "missing", "swapped"])
def test_rows_with_other_columns_than_the_first_are_refused(
    instance: Instance, n: int, odd: str
) -> None:
    """A later row with a key the first lacks: its value was dropped (a few rows) or the row's
    KeyError raised (many); a later row without one of the first's keys: a StatementError or
    a KeyError. Either way now one InvalidValue naming the column, nothing written."""
    table = ULabel.__table__
    assert isinstance(table, Table)
    rows = _label_rows(instance, n, 1000)
    if odd == "extra":
        rows[-1] = rows[-1] | {"description": "kept?"}
    elif odd == "missing":
        rows = [row | {"description": "d"} for row in rows[:-1]] + rows[-1:]
    else:  # as many keys as the first row, one of them another
        rows = [row | {"description": "d"} for row in rows[:-1]] + [rows[-1] | {"abbr": "a"}]
    with (
        pytest.raises(InvalidValue, match=r"same columns: row \d+ differs .* description"),
        instance.sessions.write() as session,
    ):
        insert_rows(session, table, rows, unique="uid")
    with instance.sessions.read() as session:
        assert session.scalar(select(func.count()).where(table.c.name.like("d1%"))) == 0


def test_one_of_many_values_finds_exactly_the_rows_a_plain_in_finds(
    instance: Instance, tmp_path: Path
) -> None:
    """`one_of` of many values (one JSON parameter, read by json_each on SQLite and by
    jsonb_array_elements_text on PostgreSQL) finds the same rows as `IN` of bound values:
    texts with quotes, backslashes and non-ASCII letters, integers, and the lists it leaves
    to a plain IN (mixed types; a NUL in a text, refused as before)."""
    from lakeline.db.rows import one_of

    table, row = _seed_row(tmp_path)
    odd = ["it's", 'a "quote"', "back\\slash", "Müller µl", "日本", "a\\u0000b", "plain"]
    keys = [f"k/{i}/{word}.txt" for i, word in enumerate(odd * 5)]
    rows = [
        {**row, "uid": f"o{i:011d}0000", "stem": f"o{i:011d}", "key": key, "size": i}
        | {"description": str(i)}
        for i, key in enumerate(keys)
    ]
    with instance.sessions.write() as session:
        ids = insert_rows(session, table, rows, unique="uid")
    wanted = [*keys[::2], "k/none.txt", "k/0/it''s.txt"]
    cases: list[tuple[Any, list[Any]]] = [
        (Artifact.key, wanted),  # texts: JSON
        (Artifact.id, [*ids[1::2], 10**9]),  # integers: JSON on SQLite, inline on PostgreSQL
        (Artifact.size, [*range(0, 35, 2), "3"]),  # mixed types: a plain IN
    ]
    if instance.dialect == "sqlite":  # a text column and integers: SQLite compares them as
        # texts (PostgreSQL refuses varchar = integer); json_each's integers matched none
        cases.append((Artifact.description, [*range(0, 35, 2)]))
    with instance.sessions.read() as session:
        for column, values in cases:
            assert len(values) > RETURNING
            found = set(session.scalars(select(Artifact.id).where(one_of(session, column, values))))
            plain = set(session.scalars(select(Artifact.id).where(column.in_(values))))
            assert found == plain and found
        for _ in range(6):  # psycopg prepares a statement run 5 times: its generic plan too
            texts = select(Artifact.key).where(one_of(session, Artifact.key, wanted))
            assert set(session.scalars(texts)) == set(keys[::2])
        if instance.dialect == "sqlite":  # a NUL: refused as a bound value is (json_each
            nul = [*wanted, "nul\x00inside"]  # would cut the text at it)
            with pytest.raises(InvalidValue, match="NUL"):
                session.scalars(select(Artifact.id).where(one_of(session, Artifact.key, nul)))


@pytest.mark.parametrize("n", [3, RETURNING + 5])
def test_one_of_a_text_with_nul_is_refused_as_a_bound_value_is(
    instance: Instance, tmp_path: Path, n: int
) -> None:
    """A NUL in a text of `one_of`, short list (bound / inline values) or long (one JSON
    parameter where no NUL is), is InvalidValue naming it on both databases: PostgreSQL's
    long list fell back to inline literals and failed with a raw syntax error."""
    from lakeline.db.rows import one_of

    _seed_row(tmp_path)
    values = [*(f"k/{i}.txt" for i in range(n - 1)), "nul\x00inside"]
    with instance.sessions.read() as session, pytest.raises(InvalidValue, match="NUL"):
        session.scalars(select(Artifact.id).where(one_of(session, Artifact.key, values)))


@pytest.mark.parametrize("n", [RETURNING, VALUES_ROWS + 1])
def test_many_rows_booleans_are_bound_as_one_row_at_a_time_binds_them(
    instance: Instance, tmp_path: Path, n: int
) -> None:
    """A Boolean column is bound as a whole column (`rows._booleans`): True, False and the
    integers 1 and 0 stored and read back as the column's bind processor binds each value,
    and a value that is no boolean refused with the processor's own error, nothing written."""
    table, row = _seed_row(tmp_path)
    given = [True, False, 1, 0]
    rows = [
        {**row, "uid": f"b{i:011d}0000", "stem": f"b{i:011d}", "key": f"bools/{i}.txt"}
        | {"in_place": given[i % 4], "is_latest": given[(i + 1) % 4]}
        for i in range(n)
    ]
    with instance.sessions.write() as session:
        ids = insert_rows(session, table, rows, unique="uid")
        dialect = session.get_bind().dialect
        one = table.c.in_place.type.dialect_impl(dialect).bind_processor(dialect)
        if instance.dialect == "sqlite":
            stored = session.execute(
                text("SELECT id, in_place, is_latest FROM artifacts WHERE key LIKE 'bools/%'")
            ).all()
            texts = {i: (a, b) for i, a, b in stored}
            assert [texts[i] for i in ids] == [
                (one(r["in_place"]), one(r["is_latest"])) for r in rows
            ]
    with instance.sessions.read() as session:
        back = {
            i: (a, b)
            for i, a, b in session.execute(select(table.c.id, table.c.in_place, table.c.is_latest))
        }
    assert [back[i] for i in ids] == [(bool(r["in_place"]), bool(r["is_latest"])) for r in rows]
    for bad, error in ((2, ValueError), ("yes", TypeError)):
        odd = [{**r, "uid": f"x{i:011d}0000", "key": f"odd/{i}.txt"} for i, r in enumerate(rows)]
        odd[-1]["in_place"] = bad
        refused = pytest.raises(error, match=r"True, or False|Not a boolean")
        with refused, instance.sessions.write() as session:
            insert_rows(session, table, odd, unique="uid")
    assert ll.Artifact.filter(key__startswith="odd/").count() == 0
