"""A BatchRecorder call that flushes first and then records unbatched (a reference, a use of a
file it cannot queue, a save_files, a link_many): when that flush leaves out the call's own
step, the call does not go on naming it. Before, it went on with the step's run id None: the
database refused the edge (run_inputs.run_id NOT NULL, a raw IntegrityError, which the
Snakemake plugin takes as the catalog's failure and stops recording), after the rest of the
batch was written. Now the call raises StepsNotRecorded naming the step (a step call), or
records what names other steps only (a save_files, a link_many)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.errors import StepsNotRecorded
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.handles import FileRecord, Handle
from test_batch_left_out import _catalog, _delete_run, _write


def _two(instance: Instance, tmp_path: Path) -> tuple[BatchRecorder, Handle, Handle]:
    """kept/a and gone/b queued, gone's workflow run deleted: b is left out at the flush."""
    rec = BatchRecorder("calls", root=tmp_path, steps=100, ms=600_000)
    kept = rec.start_workflow(key="wf", engine_run_id="kept")
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    rec.start_workflow(key="wf", engine_run_id="other")  # SQLite: gone's id not given again
    a = rec.start_step(kept, key="a", kind="rule", engine_task_id="a")
    b = rec.start_step(gone, key="b", kind="rule", engine_task_id="b")
    _delete_run(instance, gone.run.id)
    return rec, a, b


@pytest.mark.parametrize(
    "call", ["reference", "use_gone", "link", "mark", "reference_kw", "link_kw", "note_kw"]
)
def test_a_step_call_whose_flush_left_the_step_out_raises_steps_not_recorded(
    instance: Instance, tmp_path: Path, call: str
) -> None:
    rec, a, b = _two(instance, tmp_path)
    with pytest.raises(StepsNotRecorded, match="'gone/b'") as caught:
        if call == "reference":
            rec.reference(b, "table://db/t", hash="x" * 8, hash_type="md5")
        elif call == "use_gone":
            rec.use(b, "no_such_file.txt")  # not queued: the plain path
        elif call == "link":
            rec.link(b, [])
        elif call == "mark":
            rec.mark(b, "started", at=None)
        elif call == "reference_kw":  # the step by keyword: checked too (before: not)
            rec.reference(step=b, location="table://db/t", hash="x" * 8, hash_type="md5")
        elif call == "link_kw":
            rec.link(step=b, used=[])
        else:
            rec.note_attempt(step=b, attempt=2)
    assert "gone/b" in caught.value.steps
    assert _catalog(instance)["runs"]["kept/a"] == ("kept", "started")  # the rest written
    rec.finish_step(a)
    rec.flush()  # nothing more to say
    assert _catalog(instance)["runs"]["kept/a"] == ("kept", "completed")


def test_save_files_and_link_many_record_what_names_other_steps(
    instance: Instance, tmp_path: Path
) -> None:
    rec, a, b = _two(instance, tmp_path)
    _write(tmp_path, "both.txt", "b_only.txt", "made.txt")
    saved = rec.save_files(
        [
            FileRecord("both.txt", used_by=[(a, "in"), (b, "in")]),
            FileRecord("b_only.txt", used_by=[(b, "in")]),
            FileRecord("made.txt", producer=b, used_by=[(a, "in")]),
        ]
    )
    assert saved[0] is not None and saved[1] is None and saved[2] is not None
    both = saved[0]
    assert rec.link_many([(a, both, "again"), (b, both, "again")]) == 1
    seen = _catalog(instance)
    assert seen["edges"] == [
        ("kept/a", "both.txt"),
        ("kept/a", "both.txt"),
        ("kept/a", "made.txt"),
    ]
    assert seen["files"] == {"both.txt": None, "made.txt": None}
    with pytest.raises(StepsNotRecorded, match="'gone/b'"):
        rec.flush()
