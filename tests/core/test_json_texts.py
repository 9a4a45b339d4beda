"""JSON texts made once: a run's params dumped at the call (`track.checked_params`) and its
status log's text built as entries are logged (`records.log_text`), bound as they are by the
run's insert; other JSON values dumped by json.dumps's own encoder built once
(`models.base.dump_json`). The same texts as `json.dumps`, the same checks, and a run's params
stored as they were at the call, batched or not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder, Recorder
from lakeline.lineage.records import LOG_TEXT, log_text
from lakeline.models.base import JSONText, JSONValue, clean_json_text, dump_json
from sqlalchemy.dialects import postgresql, sqlite


class Text(str):
    pass


VALUES: list[Any] = [
    {},
    [],
    {"a": 1, "b": [1.5, None, True, False], "c": {"d": "e"}},
    {"name": "café ☕", "emoji": ["🙂"], "ключ": "значение"},
    {"t": (1, "a", (2.5, None))},
    {2: "two", 2.5: "x", None: "n", True: "t"},
    {"x": float("nan"), "y": [float("inf"), -float("inf")]},
    {"s": Text("x"), Text("k"): 1},
    {"big": 10**300, "neg": -(10**300), "f": 1e-300},
    {"quote": 'a "b" \\ c\n\t\x01'},
    [{"status": "started", "at": "2026-12-07T13:38:17.123456+00:00"}],
]


@pytest.mark.parametrize("value", VALUES)
def test_dump_json_is_json_dumps(value: Any) -> None:
    assert dump_json(value) == json.dumps(value)


@pytest.mark.parametrize("value", VALUES)
def test_a_json_column_binds_the_text_json_dumps_gives_on_sqlite(value: Any) -> None:
    dialect = sqlite.dialect()
    process = JSONValue().dialect_impl(dialect).bind_processor(dialect)
    assert process(value) == json.dumps(value)


@pytest.mark.parametrize("value", VALUES)
def test_a_clean_text_is_strict_json_of_no_nul_and_no_surrogate(value: Any) -> None:
    text = clean_json_text(value)
    try:
        strict = json.dumps(value, allow_nan=False)
    except ValueError:  # NaN, infinities: not JSON as they are
        assert text is None
        return
    clean = "\\u0000" not in strict and "\\ud" not in strict
    assert text == (strict if clean else None)


@pytest.mark.parametrize(
    "value",
    [{"a": "x\x00"}, {"a\x00": 1}, {"s": "caf\udce9"}, {"o": object()}, {"s": {1}}],
)
def test_what_a_json_column_refuses_is_never_a_clean_text(value: Any) -> None:
    assert clean_json_text(value) is None


def test_a_cycle_is_no_clean_text_and_still_refused_when_bound() -> None:
    value: dict[str, Any] = {}
    value["self"] = value
    assert clean_json_text(value) is None
    dialect = sqlite.dialect()
    process = JSONValue().dialect_impl(dialect).bind_processor(dialect)
    with pytest.raises(RecursionError):  # as before: check_json's walk of the cycle
        process(value)


@pytest.mark.parametrize("value", [v for v in VALUES if clean_json_text(v) is not None])
def test_a_json_text_binds_as_its_text_on_sqlite_and_as_its_value_on_postgres(
    value: Any,
) -> None:
    text = clean_json_text(value)
    assert text is not None
    given = JSONText(value, text)
    dialect = sqlite.dialect()
    process = JSONValue().dialect_impl(dialect).bind_processor(dialect)
    assert process(given) == text == json.dumps(value)
    pg = postgresql.dialect()  # jsonb: the value as the text holds it (no NUL, no surrogate)
    assert JSONValue().process_bind_param(given, pg) == json.loads(json.dumps(value))


def test_a_status_log_text_is_the_logs_json() -> None:
    log = log_text(None, "started", "2026-12-07T13:38:17.123456+00:00")
    log = log_text(log, "completed", datetime(2026, 12, 7, 13, 38, 18, tzinfo=UTC).isoformat())
    assert log.text == json.dumps(log.value)
    assert log.value == [
        {"status": "started", "at": "2026-12-07T13:38:17.123456+00:00"},
        {"status": "completed", "at": "2026-12-07T13:38:18+00:00"},
    ]
    empty = JSONText([], "[]")
    assert log_text(empty, "cached", 'odd "at"').text == json.dumps(
        [{"status": "cached", "at": 'odd "at"'}]
    )


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
@pytest.mark.parametrize(
    "params", [{"n": 1, "w": {"i": "3"}}, {"n": 1, "name": "café 🙂"}], ids=["ascii", "unicode"]
)
def test_a_steps_params_are_stored_as_they_were_at_the_call(
    instance: Instance, tmp_path: Path, batch: bool, params: dict[str, Any]
) -> None:
    """Batched, the params changed in place after the call were stored as the flush found
    them (a NUL byte added then failed the flush: InvalidValue, the batch kept queued); now
    as at the call, as an unbatched step's are (its insert is at the call)."""
    params = {**params}  # this test's own, changed below
    given = json.loads(json.dumps(params))
    rec = BatchRecorder("p", root=tmp_path, ms=600_000) if batch else Recorder("p")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1", params=params)
    params["n"] = 2
    params["late"] = "x\x00"
    rec.finish_step(step)
    rec.finish_workflow(wf)
    assert ll.Run.get(engine="p", engine_ref="r/1").params == given


def test_params_annotated_while_queued_are_stored_annotated(
    instance: Instance, tmp_path: Path
) -> None:
    """The text made at the call is not bound once the queued run's params are set anew."""
    rec = BatchRecorder("p", root=tmp_path, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1", params={"a": 1})
    rec.annotate(step, "note", k="v")
    rec.finish_step(step)
    rec.finish_workflow(wf)
    assert ll.Run.get(engine="p", engine_ref="r/1").params == {"a": 1, "note": {"k": "v"}}


def test_a_queued_runs_status_log_set_anew_is_dumped_and_checked(
    instance: Instance, tmp_path: Path
) -> None:
    """A status log replaced on a queued run is not the one its text was made of: the finish
    appends to the new one, and the insert dumps and checks it (a NUL byte refused)."""
    rec = BatchRecorder("p", root=tmp_path, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    good = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    good.run.status_log = [{"status": "scheduled", "at": "earlier"}]
    rec.finish_step(good)
    rec.flush()
    log = ll.Run.get(engine="p", engine_ref="r/1").status_log
    assert [e["status"] for e in log] == ["scheduled", "completed"]
    assert log[0] == {"status": "scheduled", "at": "earlier"}
    bad = rec.start_step(wf, key="s", kind="rule", engine_task_id="2")
    bad.run.status_log = [{"status": "started", "at": "x\x00"}]
    assert vars(bad.run)[LOG_TEXT].value is not bad.run.status_log
    rec.finish_step(bad)
    with pytest.raises(InvalidValue, match="NUL"):  # the batch kept queued, as before
        rec.flush()
    assert ll.Run.filter(engine="p", engine_ref="r/2").count() == 0
    bad.run.status_log = [{"status": "started", "at": "x"}]
    rec.finish_workflow(wf)
    log = ll.Run.get(engine="p", engine_ref="r/2").status_log
    assert [e["status"] for e in log] == ["started", "completed"]
    assert log[0] == {"status": "started", "at": "x"}
