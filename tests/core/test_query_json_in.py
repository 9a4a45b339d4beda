"""A list of values against a JSON column (a run's params) means the same on both databases:
`db.rows.one_of` raised SQLAlchemy's CompileError on PostgreSQL (no literal for a JSON
value), and a filter `params__in=` with more than LONG_IN values found nothing on SQLite
(json_each handed back the values minified, not as the column stores them)."""

from __future__ import annotations

import lakeline as ll
import pytest
from lakeline.db.rows import one_of
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder
from lakeline.models import Run
from lakeline.query_conditions import LONG_IN
from sqlalchemy import select


@pytest.fixture
def runs(instance: Instance) -> Instance:
    rec = Recorder("json")
    wf = rec.start_workflow(key="p", engine_run_id="r", params={"a": 1, "b": [1, 2]})
    rec.start_step(wf, key="s", kind="rule", engine_task_id="1", params={"a": "x"})
    return instance


@pytest.mark.parametrize(
    ("values", "found"),
    [
        ([{"a": 1, "b": [1, 2]}], ["r"]),
        ([{"a": "x"}, {"a": 1, "b": [1, 2]}], ["r", "r/1"]),
        ([{"a": "x"}] * 20, ["r/1"]),  # past the one-parameter threshold
        (["x"], []),  # a JSON string: no run's params
    ],
)
def test_one_of_a_json_column(runs: Instance, values: list[object], found: list[str]) -> None:
    with runs.sessions.read() as session:
        stmt = select(Run.engine_ref).where(one_of(session, Run.params, values))
        assert sorted(session.scalars(stmt).all()) == found


def test_a_long_in_lookup_of_a_json_field(runs: Instance) -> None:
    many = [{"a": 1, "b": [1, 2]}, *({"n": i} for i in range(LONG_IN))]
    assert [r.engine_ref for r in ll.Run.filter(engine="json", params__in=many)] == ["r"]
    assert [r.engine_ref for r in ll.Run.filter(engine="json", params__not_in=many)] == ["r/1"]
