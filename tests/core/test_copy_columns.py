"""The columns a bulk insert writes: a column NULL in every row is NULL however many rows
(PostgreSQL's COPY leaves it out when the database has no default for it), and PostgreSQL's
per-row default `lakeline_default_space()` is taken once per COPY, with the value each row's
default would have had."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.db.rows import RETURNING, insert_rows
from lakeline.instance import Instance
from lakeline.models import Artifact
from sqlalchemy import Table, select, text


def _rows(tmp_path: Path, n: int) -> tuple[Table, list[dict[str, Any]]]:
    """`n` artifact rows copied from a saved one, without id and space: description, run,
    version and the other unset columns NULL in every row."""
    source = tmp_path / "seed.txt"
    source.write_text("seed")
    saved = ll.Artifact(str(source), key="seed.txt").save()
    table = Artifact.__table__
    assert isinstance(table, Table)
    row = {c.key: getattr(saved, c.key) for c in table.columns if c.key != "id"}
    rows = [
        {**row, "uid": f"c{i:011d}0000", "stem": f"c{i:011d}", "key": f"c/{i}.txt"}
        for i in range(n)
    ]
    assert all(row[name] is None for name in ("description", "run_id", "version", "otype"))
    return table, rows


def test_columns_null_in_every_row_stay_null_and_defaults_apply(
    instance: Instance, tmp_path: Path
) -> None:
    table, rows = _rows(tmp_path, 3 * RETURNING)
    for row in rows[::2]:
        row["description"] = None
    rows[-1]["n_files"] = 7  # NULL in every row but the last
    with instance.sessions.write() as session:
        ids = insert_rows(session, table, rows, unique="uid")
    with instance.sessions.read() as session:
        got = session.execute(
            select(table.c.id, table.c.description, table.c.run_id, table.c.n_files,
                   table.c.available)
            .where(table.c.id.in_(ids)).order_by(table.c.id)
        ).all()  # fmt: skip
    assert [r.id for r in got] == ids
    assert {(r.description, r.run_id) for r in got} == {(None, None)}
    assert [r.n_files for r in got] == [None] * (len(rows) - 1) + [7]
    assert {r.available for r in got} == {True}


@pytest.mark.postgres
def test_the_default_space_is_taken_once_per_copy(instance: Instance, tmp_path: Path) -> None:
    if instance.dialect != "postgresql":
        pytest.skip("lakeline_default_space() is PostgreSQL's")
    table, rows = _rows(tmp_path, 2 * RETURNING)
    with instance.sessions.write() as session:
        session.execute(text("SET LOCAL track_functions = 'all'"))
        ids = insert_rows(session, table, rows, unique="uid")
        calls = session.execute(
            text(
                "SELECT calls FROM pg_stat_xact_user_functions "
                "WHERE funcname = 'lakeline_default_space'"
            )
        ).scalar()
        spaces = session.execute(  # space_id is PostgreSQL's column (not in the model)
            text("SELECT DISTINCT space_id FROM artifacts WHERE id = ANY(:ids)"), {"ids": ids}
        ).scalars()
        assert set(spaces) == {1}
    assert calls == 1  # was one call a row
