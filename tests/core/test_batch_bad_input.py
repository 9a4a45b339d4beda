"""Bad input given to a Recorder call is refused at that call, batched or not: a value a
queued run or file cannot hold, refused only when its batch is written, would fail that flush
and every later one (the batch is queued again), blocking the lineage of every later step."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.errors import InvalidKey, InvalidValue, LakelineError
from lakeline.instance import Instance
from lakeline.lineage.handles import Handle
from lakeline.lineage.recorder import BatchRecorder, FileRecord, Recorder

Call = Callable[[Recorder, Handle, Path], Any]


def _step(rec: Recorder, wf: Handle, task: str, **options: Any) -> Handle:
    return rec.start_step(wf, key="s", kind="rule", engine_task_id=task, **options)


BAD: dict[str, tuple[Call, str]] = {
    "engine_ref too long": (lambda r, wf, p: _step(r, wf, "x" * 600), r"engine_ref.*at most 512"),
    "engine_ref with NUL": (lambda r, wf, p: _step(r, wf, "a\x00b"), r"engine_ref.*NUL"),
    "params with NUL": (lambda r, wf, p: _step(r, wf, "p", params={"a": "x\x00"}), "params.*NUL"),
    "params key with NUL": (lambda r, wf, p: _step(r, wf, "p", params={"a\x00": 1}), "params.*NUL"),
    # a lone surrogate (os.fsdecode of a file name's undecodable byte): no database encodes it
    "engine_ref with a surrogate": (lambda r, wf, p: _step(r, wf, "caf\udce9"), "ref.*surrogate"),
    "params with a surrogate": (
        lambda r, wf, p: _step(r, wf, "p", params={"in": "caf\udce9.txt"}),
        "params.*surrogate",
    ),
    "annotation with a surrogate": (
        lambda r, wf, p: r.annotate(_step(r, wf, "n"), "engine", path="caf\udce9"),
        "metadata must be JSON.*surrogate",
    ),
    "input role with a surrogate": (
        lambda r, wf, p: r.use(_step(r, wf, "u"), p / "out.txt", role="caf\udce9"),
        "input's role.*surrogate",
    ),
    "transform reference with a surrogate": (
        lambda r, wf, p: _step(r, wf, "t", reference="caf\udce9.smk"),
        "surrogate",
    ),
    "transform description with a surrogate": (
        lambda r, wf, p: r.start_workflow(key="q", engine_run_id="q", description="caf\udce9"),
        "surrogate",
    ),
    "exit code out of range": (
        lambda r, wf, p: r.finish_step(_step(r, wf, "e"), "errored", exit_code=2**40),
        "exit code 1099511627776 is out of a 32-bit",
    ),
    "output kind too long": (
        lambda r, wf, p: r.produce(_step(r, wf, "k"), p / "out.txt", kind="k" * 65),
        r"artifact's kind: .* at most 64",
    ),
    "output kind with NUL": (
        lambda r, wf, p: r.finish_step(
            _step(r, wf, "k"), outputs=[FileRecord(p / "out.txt", kind="k\x00")]
        ),
        "artifact's kind: .*NUL",
    ),
    "annotation with NUL": (
        lambda r, wf, p: r.annotate(_step(r, wf, "n"), "engine", tag="a\x00"),
        "metadata must be JSON.*NUL",
    ),
}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_bad_input_is_refused_at_the_call_and_later_steps_are_written(
    instance: Instance, tmp_path: Path, batch: bool, bad: str
) -> None:
    call, message = BAD[bad]
    rec = (
        BatchRecorder("bad", root=tmp_path, ms=600_000) if batch else Recorder("bad", root=tmp_path)
    )
    (tmp_path / "out.txt").write_text("out")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    with pytest.raises(InvalidValue, match=message):  # each one InvalidValue, as documented
        call(rec, wf, tmp_path)
    good = _step(rec, wf, "good")
    rec.produce(good, tmp_path / "out.txt")
    rec.finish_step(good)
    rec.finish_workflow(wf)  # a batch: flushed first, and not refused
    if isinstance(rec, BatchRecorder):
        rec.flush()
        assert not rec._files and not rec._finishes and not rec._runs  # nothing left queued
    run = ll.Run.get(engine="bad", engine_ref="r/good")
    assert run.status == "completed"
    assert [a.key for a in run.outputs.all()] == ["out.txt"]
    assert ll.Run.get(engine="bad", engine_ref="r").status == "completed"


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_params_json_cannot_hold_are_kept_as_their_repr(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """NaN and infinities (PostgreSQL's JSON refuses them; a queued run holding one failed
    every flush there): kept as their repr on both databases, as other values JSON cannot hold."""
    rec = BatchRecorder("nan", root=tmp_path, ms=600_000) if batch else Recorder("nan")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = _step(rec, wf, "1", params={"x": float("nan"), "y": [float("inf")], "z": 1.5})
    rec.finish_step(step)
    rec.finish_workflow(wf)
    assert ll.Run.get(engine="nan", engine_ref="r/1").params == {"x": "nan", "y": ["inf"], "z": 1.5}


def test_a_refused_value_in_a_batch_leaves_the_batch_writable(
    instance: Instance, tmp_path: Path
) -> None:
    """What was queued before the refused call is written by the next flush, once."""
    rec = BatchRecorder("bad", root=tmp_path, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    before = _step(rec, wf, "before")
    rec.finish_step(before)
    with pytest.raises(InvalidValue, match="engine_ref"):
        _step(rec, wf, "y" * 511)  # "r/" + 511 characters
    _step(rec, wf, "y" * 510)  # at the limit: kept
    rec.flush()
    refs = sorted(r.engine_ref for r in ll.Run.filter(engine="bad"))
    assert refs == ["r", "r/before", "r/" + "y" * 510]


@pytest.mark.parametrize(
    "bad",
    [FileRecord("b.txt", kind="k" * 65), FileRecord("b.txt", key=" b.txt")],
    ids=["kind", "key"],
)
@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_a_refused_output_leaves_the_step_s_other_outputs_unwritten(
    instance: Instance, tmp_path: Path, batch: bool, bad: FileRecord
) -> None:
    """finish_step(outputs=[good, bad]) refused: nothing of it is written, batched or not (a
    batch had queued `good` as the unfinished step's output, written by the next flush)."""
    rec = (
        BatchRecorder("bad", root=tmp_path, ms=600_000) if batch else Recorder("bad", root=tmp_path)
    )
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = _step(rec, wf, "1")
    bad = FileRecord(tmp_path / bad.path, key=bad.key, kind=bad.kind)
    with pytest.raises(LakelineError, match=r"kind|key"):
        rec.finish_step(step, outputs=[tmp_path / "a.txt", bad])
    if isinstance(rec, BatchRecorder):
        rec.flush()
        assert not rec._files and not rec._finishes
    assert ll.Run.get(engine="bad", engine_ref="r/1").status == "started"
    assert list(ll.Artifact.filter()) == []


ODD_KEYS = [None, "named/odd.txt", "caf\udce9.txt"]


@pytest.mark.parametrize("key", ODD_KEYS, ids=["path", "key", "bad"])
@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_an_output_whose_name_is_not_utf8_is_refused_at_the_call(
    instance: Instance, tmp_path: Path, batch: bool, key: str | None
) -> None:
    """A file whose name holds a byte UTF-8 cannot decode (a lone surrogate once decoded),
    recorded where it is (its key its path, or a key given: its place is its path), or a key
    holding a surrogate: refused at the call (InvalidKey). Queued, it failed every flush with
    the driver's UnicodeEncodeError: no later step of the run was written, nor the run."""
    rec = (
        BatchRecorder("odd", root=tmp_path, ms=600_000) if batch else Recorder("odd", root=tmp_path)
    )
    odd = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"))
    with open(odd, "wb") as handle:
        handle.write(b"odd")
    (tmp_path / "out.txt").write_text("out")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = _step(rec, wf, "odd")
    path = tmp_path / "out.txt" if key == ODD_KEYS[2] else odd  # a bad key: a good name
    with pytest.raises(InvalidKey, match="surrogate"):
        rec.produce(step, path, key=key)
    good = _step(rec, wf, "good")
    rec.produce(good, tmp_path / "out.txt")
    rec.finish_step(step)
    rec.finish_step(good)
    rec.finish_workflow(wf)
    if isinstance(rec, BatchRecorder):
        assert not rec._files and not rec._finishes and not rec._runs  # nothing left queued
    assert [a.key for a in ll.Run.get(engine="odd", engine_ref="r/good").outputs.all()] == [
        "out.txt"
    ]
    assert ll.Run.get(engine="odd", engine_ref="r/odd").outputs.count() == 0
    assert ll.Run.get(engine="odd", engine_ref="r").status == "completed"


@pytest.mark.parametrize("where", ["in the root", "elsewhere", "url"])
@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_a_reference_whose_location_is_not_utf8_is_refused_at_the_call(
    instance: Instance, tmp_path: Path, batch: bool, where: str
) -> None:
    """A reference to a location holding a lone surrogate (a file name's undecodable byte):
    InvalidReference naming it at the call, nothing of it written (was the driver's bare
    UnicodeEncodeError); the run's other steps are recorded."""
    from lakeline.errors import InvalidReference

    rec = (
        BatchRecorder("odd", root=tmp_path, ms=600_000) if batch else Recorder("odd", root=tmp_path)
    )
    location = {
        "in the root": os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")),
        "elsewhere": os.fsdecode(b"/gone/caf\xe9.txt"),
        "url": "s3://bucket/caf\udce9.txt",
    }[where]
    (tmp_path / "out.txt").write_text("out")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = _step(rec, wf, "odd")
    with pytest.raises(InvalidReference, match="surrogate"):
        rec.reference(step, location)
    good = _step(rec, wf, "good")
    rec.produce(good, tmp_path / "out.txt")
    rec.finish_step(step)
    rec.finish_step(good)
    rec.finish_workflow(wf)
    assert [a.key for a in ll.Artifact.filter()] == ["out.txt"]
    assert ll.Run.get(engine="odd", engine_ref="r/odd").inputs.count() == 0
    assert ll.Run.get(engine="odd", engine_ref="r").status == "completed"
