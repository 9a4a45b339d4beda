"""A run's params are checked once at the call (`track.run_params`): plain params walked once
with no `json.dumps`, anything else as `params_of` always did (repr of what JSON cannot hold,
then `check_json`). The same params stored, the same errors, raised before anything is queued;
and the host a run records is the process's (`liveness.this_host`), read once."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.lineage import liveness
from lakeline.lineage.recorder import BatchRecorder, Recorder
from lakeline.lineage.track import _json_safe, run_params
from lakeline.models.base import check_json


class Text(str):
    pass


def _deep(leaf: Any, depth: int) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"d": [value]}
    return value


GOOD: dict[str, Any] = {
    "empty": {},
    "snakemake job": {
        "jobid": 7,
        "wildcards": {"sample": "a", "i": "3"},
        "threads": 1,
        "resources": {"tmpdir": "/tmp", "_nodes": 1, "mem_mb": 1.5},
        "shellcmd": "tr a-z A-Z < in > out",
        "checkpoint": True,
        "reason": "Missing output files: out/3.txt",
    },
    "unicode": {"name": "café ☕", "emoji": ["🙂"], "ключ": "значение"},
    "tuples": {"t": (1, "a", (2.5, None))},
    "int keys": {"a": {1: "one"}},
    "nan": {"x": float("nan"), "y": [float("inf")], "z": -float("inf")},
    "subclass": {"s": Text("x"), "k": {Text("key"): 1}},
    "set": {"s": {1}},
    "object": {"o": object()},
    "deep": _deep("leaf", 100),
}

BAD: dict[str, Any] = {
    "NUL": {"a": "x\x00"},
    "NUL in a key": {"a\x00": 1},
    "NUL in a list": {"a": [1, ["b", "c\x00"]]},
    "NUL in a tuple": {"a": (1, "\x00")},
    "NUL in a non-ASCII string": {"a": "é\x00"},
    "surrogate": {"in": "caf\udce9.txt"},
    "surrogate in a key": {"caf\udce9": 1},
    "surrogate deep in a list": {"a": [{"b": ["caf\udce9"]}]},
    "NUL in a str subclass": {"a": Text("x\x00")},
    "NUL past the walk's depth": _deep("x\x00", 100),
    "NUL next to a NaN": {"a": float("nan"), "b": "x\x00"},
}


@pytest.mark.parametrize("name", list(GOOD))
def test_run_params_gives_what_params_of_gave(name: str) -> None:
    params = GOOD[name]
    try:  # params_of before: the params themselves when JSON takes them, else their repr'd copy
        json.dumps(params, allow_nan=False)
        before = params
    except (TypeError, ValueError):
        before = _json_safe(params)
    after, checked = run_params(params)
    assert after == before
    assert (after is params) == (before is params)
    if checked:
        check_json(after)  # what it skips would have passed
    # known clean: walked (`_plain`), or from their JSON text (`clean_json_text`: int keys,
    # str subclasses, nesting past the walk's depth, all of which JSON takes as they are)
    clean = ("empty", "snakemake job", "unicode", "tuples", "int keys", "subclass", "deep")
    assert checked == (name in clean)


@pytest.mark.parametrize("name", list(BAD))
def test_run_params_never_calls_bad_params_clean(name: str) -> None:
    after, checked = run_params(BAD[name])
    assert not checked
    with pytest.raises(InvalidValue):
        check_json(after)


@pytest.mark.parametrize("name", list(BAD))
@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_bad_params_are_refused_at_the_call(
    instance: Instance, tmp_path: Path, batch: bool, name: str
) -> None:
    rec = BatchRecorder("p", root=tmp_path, ms=600_000) if batch else Recorder("p")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    with pytest.raises(InvalidValue, match="a run's params: "):
        rec.start_step(wf, key="s", kind="rule", engine_task_id="1", params=BAD[name])
    if isinstance(rec, BatchRecorder):
        assert not rec._runs  # nothing queued
    rec.finish_workflow(wf)
    assert [r.engine_ref for r in ll.Run.filter(engine="p")] == ["r"]


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_an_int_too_long_for_str_is_refused_at_the_call(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """As params_of refused it (its repr raises); not queued, to fail every flush."""
    rec = BatchRecorder("p", root=tmp_path, ms=600_000) if batch else Recorder("p")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    for params in ({"n": 10**5000}, {"n": [-(10**5000)]}):
        with pytest.raises(ValueError, match="digits"):
            rec.start_step(wf, key="s", kind="rule", engine_task_id="1", params=params)
    big = {"n": 10**600, "m": [-(10**600)]}  # long, yet under any str() limit: kept
    assert run_params(big) == (big, True)
    if isinstance(rec, BatchRecorder):
        assert not rec._runs
    rec.finish_workflow(wf)
    assert [r.engine_ref for r in ll.Run.filter(engine="p")] == ["r"]


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_params_are_stored_as_before(instance: Instance, tmp_path: Path, batch: bool) -> None:
    rec = BatchRecorder("p", root=tmp_path, ms=600_000) if batch else Recorder("p")
    wf = rec.start_workflow(key="p", engine_run_id="r", params=GOOD["unicode"])
    names = [n for n in GOOD if n not in ("object", "deep")]
    for name in names:
        rec.finish_step(rec.start_step(wf, key="s", kind="rule", engine_task_id=name,
                                       params=GOOD[name]))  # fmt: skip
    rec.finish_workflow(wf)
    assert ll.Run.get(engine="p", engine_ref="r").params == GOOD["unicode"]
    for name in names:
        expected = json.loads(json.dumps(_json_safe(GOOD[name])))
        assert ll.Run.get(engine="p", engine_ref=f"r/{name}").params == expected, name


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_runs_record_the_host_the_liveness_check_compares(
    instance: Instance, tmp_path: Path, batch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host name is read once a process: a host renamed while a long-lived process runs
    (an engine's plugin, a notebook) leaves its runs under the name its liveness check
    compares (`this_host`), so their process is still found alive (before: the new name,
    and `process_gone` could tell nothing)."""
    first = liveness.this_host()
    monkeypatch.setattr(socket, "gethostname", lambda: "renamed-meanwhile")
    rec = BatchRecorder("h", root=tmp_path, ms=600_000) if batch else Recorder("h")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.finish_step(rec.start_step(wf, key="s", kind="rule", engine_task_id="1"))
    rec.finish_workflow(wf)
    for ref in ("r", "r/1"):
        assert ll.Run.get(engine="h", engine_ref=ref).host == first
