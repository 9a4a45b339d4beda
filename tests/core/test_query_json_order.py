"""A JSON lookup compares values, not texts, on both databases: an object's keys in another
order are the same object (PostgreSQL's jsonb compares so). On SQLite, which keeps the text
written, `params={"a": 1, "b": 2}` missed a run stored as `{"b": 2, "a": 1}` and
`params__ne=` found it."""

from __future__ import annotations

from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder
from lakeline.query_conditions import LONG_IN

STORED = {"b": 2, "a": 1, "n": {"y": 1, "x": [1, {"q": 1, "p": 2}]}, "ä": "ü"}
REORDERED = {"ä": "ü", "a": 1, "n": {"x": [1, {"p": 2, "q": 1}], "y": 1}, "b": 2}


@pytest.fixture
def runs(instance: Instance) -> Instance:
    rec = Recorder("order")
    wf = rec.start_workflow(key="p", engine_run_id="r", params=STORED)
    rec.start_step(wf, key="s", kind="rule", engine_task_id="1", params={"a": 2, "b": 1})
    rec.start_step(wf, key="t", kind="rule", engine_task_id="2")
    return instance


def refs(**lookups: Any) -> list[str]:
    return sorted(r.engine_ref for r in ll.Run.filter(engine="order", **lookups))


def test_an_object_in_another_key_order_is_found(runs: Instance) -> None:
    assert refs(params=STORED) == ["r"]
    assert refs(params=REORDERED) == ["r"]
    assert refs(params__in=[REORDERED, {"z": 0}]) == ["r"]
    assert refs(params__in=[REORDERED, {"b": 1, "a": 2}]) == ["r", "r/1"]
    assert refs(params={"b": 1, "a": 2}) == ["r/1"]


def test_negations_leave_a_reordered_object_out(runs: Instance) -> None:
    assert refs(params__ne=REORDERED) == ["r/1", "r/2"]  # a run without params: not equal
    assert refs(params__not_in=[REORDERED]) == ["r/1"]
    assert refs(params__not_in=[REORDERED, {"b": 1, "a": 2}]) == []


def test_long_lookups_find_a_reordered_object(runs: Instance) -> None:
    many = [REORDERED, *({"n": i, "m": i} for i in range(LONG_IN))]
    assert refs(params__in=many) == ["r"]
    assert refs(params__not_in=many) == ["r/1"]


@pytest.mark.parametrize(
    "other",
    [
        {"b": 1, "a": 2, "n": {"y": 1, "x": [1, {"q": 1, "p": 2}]}, "ä": "ü"},  # same length
        {"b": 2, "a": 1, "n": {"y": 1, "x": [{"q": 1, "p": 2}, 1]}, "ä": "ü"},  # array order
        {"b": 2, "a": 1, "n": {"y": 1, "x": [1, {"q": 1, "p": 2}]}},
        {"b": 2, "a": 1, "n": {"y": 1, "x": [1, {"q": 1, "p": 2}]}, "ä": "ü", "c": None},
    ],
)
def test_other_values_are_not_equal(runs: Instance, other: dict[str, Any]) -> None:
    assert refs(params=other) == []
    assert refs(params__in=[other]) == []
    assert refs(params__ne=other) == ["r", "r/1", "r/2"]
