"""BatchRecorder: the lineage a batched Recorder writes is exactly the plain Recorder's, and a
process killed while it writes a batch leaves none of that batch."""

from __future__ import annotations

import os
import signal
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from faults import SPAWN
from lakeline.access.audit import entries, verify
from lakeline.errors import LakelineError
from lakeline.instance import Instance
from lakeline.lineage.handles import Handle
from lakeline.lineage.recorder import BatchRecorder, FileRecord, Recorder, make_recorder
from sqlalchemy import event


def workflow(rec: Recorder, root: Path) -> None:
    """A run with every case a batch must get right; files are written as an engine would."""
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw words here")
    (root / "data" / "shared.txt").write_text("shared input")
    (root / "data" / "gone.txt").write_text("read, then deleted")
    wf = rec.start_workflow(key="p", engine_run_id="r", source_code="rules")
    one = rec.start_step(wf, key="split", kind="rule", engine_task_id="1")
    rec.use(one, "data/raw.txt")
    rec.use(one, "data/shared.txt")
    (root / "out" / "a.txt").write_text("raw words")
    rec.produce(one, "out/a.txt")
    (root / "out" / "tmp.txt").write_text("temporary")
    rec.produce(one, "out/tmp.txt", kind="transient")
    rec.produce(one, "out/never.txt")  # reported, never made
    (root / "out" / "dir").mkdir()
    (root / "out" / "dir" / "part.txt").write_text("a part")
    rec.produce(one, "out/dir")  # a folder
    rec.finish_step(one)
    two = rec.start_step(wf, key="count", kind="rule", engine_task_id="2")
    rec.use(two, "data/shared.txt", role="again")  # the same input, another step
    rec.use(two, "out/a.txt")  # an output of the same batch
    rec.use(two, "out/dir")  # a folder of the same batch
    (root / "out" / "tmp.txt").unlink()  # a temp() output deleted before anything is written
    rec.use(two, "out/tmp.txt")
    (root / "data" / "gone.txt").unlink()
    rec.use(two, "data/gone.txt")  # its bytes gone, never recorded: a reference
    (root / "out" / "a.txt").write_text("rewritten in place")  # a new version
    (root / "out" / "two.txt").write_text("2")
    rec.finish_step(two, "errored", exit_code=3, error="boom", outputs=["out/two.txt"])
    three = rec.start_step(wf, key="count", kind="rule", engine_task_id="3")
    rec.use(three, "out/a.txt")
    rec.finish_step(three, "cached", cached_from="r/2")
    again = rec.start_step(wf, key="count", kind="rule", engine_task_id="3")  # a replay
    rec.finish_step(again, "cached", cached_from="r/2")
    four = rec.start_step(wf, key="merge", kind="rule", engine_task_id="4")
    rec.save_files([FileRecord("out/two.txt", used_by=[(four, "")])])
    (root / "out" / "m.txt").write_text("merged")
    nested = rec.start_step(wf, key="sub", kind="rule", engine_task_id="5", parent=four)
    rec.finish_step(nested)
    rec.finish_step(four, outputs=[FileRecord("out/m.txt", kind="log")])
    rec.mark_gone("out/m.txt")
    rec.finish_workflow(wf)


def lineage(engine: str, root: Path) -> dict[str, Any]:
    """Everything recorded for `engine`, by engine ids and paths inside `root`."""

    def where(a: ll.Artifact) -> str:
        return str(Path(a.location).relative_to(root))

    runs = {}
    refs = {run.id: run.engine_ref for run in ll.Run.filter(engine=engine)}
    for run in ll.Run.filter(engine=engine):
        cached = refs.get(run.cached_from_id)
        used = sorted((where(a), a.hash) for a in run.inputs.all())
        made = sorted((where(a), a.hash, a.kind, a.available) for a in run.outputs.all())
        parent = refs.get(run.parent_id)
        log = [entry["status"] for entry in run.status_log]
        assert run.finished_at is None or run.finished_at.isoformat() == run.status_log[-1]["at"]
        runs[run.engine_ref] = (
            parent,
            log,
            run.status,
            run.exit_code,
            run.error,
            cached,
            used,
            made,
        )
    files = sorted(
        (where(a), a.hash, a.is_latest, a.available, a.run and a.run.engine_ref)
        for a in ll.Artifact.filter()
        if Path(a.location).is_relative_to(root)
    )
    return {"runs": runs, "files": files}


@pytest.mark.parametrize("steps", [1, 2, 100])
def test_batched_lineage_is_the_plain_lineage(
    instance: Instance, tmp_path: Path, steps: int
) -> None:
    plain, batched = tmp_path / "plain", tmp_path / "batched"
    workflow(Recorder("plain", root=plain), plain)
    rec = BatchRecorder("batched", root=batched, steps=steps)
    workflow(rec, batched)
    assert rec.missing == [str(batched / "out" / "never.txt"), str(batched / "data" / "gone.txt")]
    expected = lineage("plain", plain)
    assert len(expected["runs"]) == 6 and len(expected["files"]) == 8
    assert lineage("batched", batched) == expected


def test_steps_are_written_per_batch_and_at_exit(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    rec = BatchRecorder("toy", root=tmp_path, steps=2, ms=60_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    first = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    made = rec.produce(first, "a.txt")
    rec.finish_step(first)
    assert made is not None and made.id is None and first.run.id is None  # queued
    assert not ll.Run.filter(engine="toy", engine_ref="r/1").count()
    second = rec.start_step(wf, key="s", kind="rule", engine_task_id="2")
    rec.finish_step(second)  # the second finished step: the batch is written
    assert made.id is not None and made.run_id == first.run.id
    assert [r.status for r in ll.Run.filter(uid__in=[first.uid, second.uid])] == ["completed"] * 2
    with pytest.raises(LakelineError, match="steps >= 1"):
        BatchRecorder("toy", steps=0)


def test_a_batch_due_by_time_is_left_to_the_timer_when_calls_do_not_flush(
    instance: Instance, tmp_path: Path
) -> None:
    """`flush_on_calls=False` (an integration's timer runs): a call that finds the batch due
    by time queues and returns; `flush_if_due` (the timer) writes it; `steps` still flush."""
    import time

    (tmp_path / "a.txt").write_text("a")
    rec = BatchRecorder("toy", root=tmp_path, steps=3, ms=1, flush_on_calls=False)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    first = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    rec.use(first, "a.txt")
    time.sleep(0.01)  # the batch is due by time (since the use)
    rec.finish_step(first)
    second = rec.start_step(wf, key="s", kind="rule", engine_task_id="2")
    rec.finish_step(second)
    assert first.run.id is None and second.run.id is None  # still queued
    rec.flush_if_due()  # the timer's call
    assert [r.status for r in ll.Run.filter(uid__in=[first.uid, second.uid])] == ["completed"] * 2
    steps = [rec.start_step(wf, key="s", kind="rule", engine_task_id=f"x{i}") for i in range(3)]
    for step in steps:
        rec.finish_step(step)
    assert all(step.run.id is not None for step in steps)  # 3 finished steps: written
    rec.flush_on_calls = True
    late = rec.start_step(wf, key="s", kind="rule", engine_task_id="late")
    rec.finish_step(late)
    time.sleep(0.01)
    after = rec.start_step(wf, key="s", kind="rule", engine_task_id="after")
    rec.use(after, "a.txt")  # due by time (since the finish), found by the call: written by it
    assert late.run.id is not None and after.run.id is not None


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_an_error_text_with_a_nul_byte_is_kept_or_refused_as_the_plain_recorder_does(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """SQLite keeps the whole text (a batched finish went through json_each, whose text ends
    at the NUL: "a"), for a run of this flush and of an earlier one; PostgreSQL refuses it at
    the call (batched: not at every later flush), and the step is finished after."""
    from lakeline.errors import InvalidValue

    rec = BatchRecorder("nul", root=tmp_path, ms=600_000) if batch else Recorder("nul")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    early = rec.start_step(wf, key="s", kind="rule", engine_task_id="early")
    if isinstance(rec, BatchRecorder):
        rec.flush()  # a run of an earlier flush
    now = rec.start_step(wf, key="s", kind="rule", engine_task_id="now")
    steps = [early, now]
    if instance.engine.dialect.name == "postgresql":
        for step in steps:
            with pytest.raises(InvalidValue, match="NUL"):
                rec.finish_step(step, "errored", error="a\x00b")
        for step in steps:
            rec.finish_step(step, "errored", error="ab")
        expected = "ab"
    else:
        for step in steps:
            rec.finish_step(step, "errored", error="a\x00b")
        expected = "a\x00b"
    if isinstance(rec, BatchRecorder):
        rec.flush()
    runs = ll.Run.filter(engine="nul", engine_ref__in=["r/early", "r/now"])
    assert [(r.status, r.error) for r in runs] == [("errored", expected)] * 2
    assert [s.run.error for s in steps] == [expected] * 2


def test_a_step_nested_under_a_step_of_the_same_batch_is_written(
    instance: Instance, tmp_path: Path
) -> None:
    (tmp_path / "raw.txt").write_text("raw")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=60_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    outer = rec.start_step(wf, key="build", kind="task", engine_task_id="1")
    inner = rec.start_step(wf, key="make", kind="task", engine_task_id="2", parent=outer)
    deeper = rec.start_step(wf, key="leaf", kind="task", engine_task_id="3", parent=inner)
    rec.use(deeper, "raw.txt", role="returned")
    for step in (deeper, inner, outer):
        rec.finish_step(step)
    rec.finish_workflow(wf)  # one flush: three waves of runs
    runs = {r.engine_ref: r for r in ll.Run.filter(engine="toy")}
    assert runs["r/2"].parent_id == runs["r/1"].id and runs["r/3"].parent_id == runs["r/2"].id
    assert [r.status for r in runs.values()] == ["completed"] * 4
    assert [a.key for a in runs["r/3"].inputs.all()] == ["raw.txt"]


def test_a_folder_is_queued_like_a_file(instance: Instance, tmp_path: Path) -> None:
    for name in ("made", "read"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.txt").write_text(name)
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=60_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="make", kind="rule", engine_task_id="1")
    used = rec.use(step, "read")
    made = rec.produce(step, "made")
    rec.finish_step(step)
    assert made is not None and used is not None
    assert made.id is None and used.id is None and step.run.id is None  # nothing written yet
    rec.flush()
    assert made.n_files == 1 and made.run_id == step.run.id and used.run_id is None
    assert [a.key for a in ll.Run.get(id=step.run.id).inputs.all()] == ["read"]


def test_an_input_rewritten_between_two_steps_uses_is_its_new_bytes(
    instance: Instance, tmp_path: Path
) -> None:
    """Two steps of one batch use a file under the key they give; it is rewritten between the
    uses: the second step's input is a record of the new bytes, not the first one's."""
    data = tmp_path / "data.txt"
    data.write_text("first bytes")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    one = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    rec.use(one, "data.txt", key="data.txt")
    rec.finish_step(one)
    data.write_text("the other bytes")
    two = rec.start_step(wf, key="b", kind="rule", engine_task_id="2")
    rec.use(two, "data.txt", key="data.txt")
    rec.finish_step(two)
    rec.finish_workflow(wf)
    (first,) = ll.Run.get(id=one.run.id).inputs.all()
    (second,) = ll.Run.get(id=two.run.id).inputs.all()
    assert first.size == len("first bytes") and second.size == len("the other bytes")
    assert second.hash != first.hash and second.is_latest and not first.is_latest


def test_capture_batch_setting_overrides_the_engines_default(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
    on = make_recorder("toy", batch=True, steps=3, root=tmp_path)
    assert isinstance(on, BatchRecorder) and on.steps == 3 and on.instance is instance
    assert type(make_recorder("toy", batch=False, root=tmp_path)) is Recorder
    monkeypatch.setenv("LAKELINE_CAPTURE_BATCH", "off")
    off = make_recorder("toy", batch=True, root=tmp_path)
    assert type(off) is Recorder
    wf = off.start_workflow(key="p", engine_run_id="r")
    step = off.start_step(wf, key="s", kind="rule", engine_task_id="1")
    assert step.run.id is not None  # written at once, readable mid-run
    monkeypatch.setenv("LAKELINE_CAPTURE_BATCH", " Yes ")
    assert isinstance(make_recorder("toy", batch=False, root=tmp_path), BatchRecorder)
    monkeypatch.setenv("LAKELINE_CAPTURE_BATCH", "sometimes")
    with pytest.raises(LakelineError, match="LAKELINE_CAPTURE_BATCH='sometimes': expected on"):
        make_recorder("toy", batch=True, root=tmp_path)


def steps_of_one_flush(rec: Recorder, root: Path, n: int) -> list[Handle]:
    """A step reads `n` files before their producers are known and a shared file, and `n`
    long steps start (written at once), then `n` steps use a file each, produce those files
    and finish, and the long steps read that step's output and the shared file (recorded
    before) and finish, and a step finishes cached from the first: for a BatchRecorder, one
    flush, written when `rec.flush` is called."""
    root.mkdir()
    wf = rec.start_workflow(key="p", engine_run_id="r")
    early = rec.start_step(wf, key="peek", kind="rule", engine_task_id="early")
    (root / "shared.txt").write_text("shared")
    rec.use(early, "shared.txt")
    for i in range(n):
        (root / f"out{i}.txt").write_text(f"out {i}")
        rec.use(early, f"out{i}.txt")
    rec.finish_step(early)
    long = [rec.start_step(wf, key="long", kind="rule", engine_task_id=f"l{i}") for i in range(n)]
    if isinstance(rec, BatchRecorder):
        rec.flush()
    for i in range(n):
        (root / f"in{i}.txt").write_text(f"in {i}")
        step = rec.start_step(wf, key="make", kind="rule", engine_task_id=str(i))
        rec.use(step, f"in{i}.txt")
        rec.produce(step, f"out{i}.txt")  # unchanged: the early step's artifact, claimed
        rec.finish_step(step, exit_code=0)
    for i, step in enumerate(long):  # runs of an earlier flush
        rec.use(step, f"out{i}.txt")  # an output queued in this batch: hashed once
        rec.use(step, "shared.txt")  # saved by an earlier flush, unchanged: linked
        rec.finish_step(step, "errored" if i % 2 else "completed", exit_code=i % 2, error=None)
    again = rec.start_step(wf, key="peek", kind="rule", engine_task_id="again")
    rec.finish_step(again, "cached", cached_from="r/early")  # written before: no flush
    return long


def audited(engine: str, root: Path) -> Counter[tuple[str, str, str, tuple[str, ...]]]:
    """The audit entries of `engine`'s runs, their edges and the files in `root`: (table,
    action, the record by engine id or path, the columns named), counted."""
    runs = {run.uid: run for run in ll.Run.filter(engine=engine)}
    refs = {run.id: run.engine_ref or "" for run in runs.values()}
    files = {
        a.uid: (a.id, str(Path(a.location).relative_to(root)))
        for a in ll.Artifact.filter()
        if Path(a.location).is_relative_to(root)
    }
    paths = dict(files.values())
    found: Counter[tuple[str, str, str, tuple[str, ...]]] = Counter()
    for entry in entries(ll.connect()):
        if entry.table == "runs" and entry.uid in runs:
            what = refs[runs[entry.uid].id]
        elif entry.table == "artifacts" and entry.uid in files:
            what = files[entry.uid][1]
        elif entry.table == "run_inputs" and entry.changes.get("run_id") in refs:
            what = f"{refs[entry.changes['run_id']]} used {paths[entry.changes['artifact_id']]}"
        else:
            continue
        found[entry.table, entry.action, what, tuple(sorted(entry.changes))] += 1
    return found


def inserted_finished(
    found: Counter[tuple[str, str, str, tuple[str, ...]]], refs: list[str]
) -> Counter[tuple[str, str, str, tuple[str, ...]]]:
    """`found` (entries of `audited`) with each of the runs `refs`' insert and update merged
    into one insert naming the columns of both (the update's are non-NULL: a finish)."""
    merged = Counter(found)
    for ref in refs:
        (insert,) = [k for k in merged if k[:3] == ("runs", "insert", ref)]
        (update,) = [k for k in merged if k[:3] == ("runs", "update", ref)]
        del merged[insert], merged[update]
        merged["runs", "insert", ref, tuple(sorted({*insert[3], *update[3]}))] += 1
    return merged


def test_a_flush_writes_its_finishes_edges_and_claims_in_one_statement_each(
    instance: Instance, tmp_path: Path
) -> None:
    n = 5
    plain, batched = tmp_path / "plain", tmp_path / "batched"
    steps_of_one_flush(Recorder("plain", root=plain), plain, n)
    rec = BatchRecorder("batched", root=batched, steps=100, ms=600_000)
    long = steps_of_one_flush(rec, batched, n)
    statements: Counter[str] = Counter()

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        words = " ".join(sql.split()[:3])  # e.g. "UPDATE runs SET", "INSERT INTO run_inputs"
        # an executemany runs once per row (SQLAlchemy's insertmanyvalues batches, flagged
        # as many, carry the rows of ONE statement in one flat set of parameters)
        rows = many and isinstance(params, list)
        statements[words] += len(params) if rows else 1

    event.listen(instance.engine, "before_cursor_execute", record)
    try:
        rec.flush()
    finally:
        event.remove(instance.engine, "before_cursor_execute", record)
    # the n finishes of runs of the flush before (those of this flush's n + 1 runs: inserted
    # finished, by one INSERT)
    assert statements["UPDATE runs SET"] == 1
    assert statements["INSERT INTO runs"] == 1
    assert statements["UPDATE artifacts SET"] == 1  # the n outputs claimed
    # the 3n edges, also those of runs of the flush before, new or not
    assert statements["INSERT INTO run_inputs"] == 1
    for i, step in enumerate(long):  # the records handed back are the rows written
        assert step.run.status == ("errored" if i % 2 else "completed")
        assert step.run.exit_code == i % 2 and step.run.finished_at is not None
        assert step.run.finished_at.tzinfo is UTC
        assert step.run.finished_at.isoformat() == step.run.status_log[-1]["at"]
    expected = audited("plain", plain)
    # the workflow's run; the early step, its n + 1 files and edges, its finish; per long
    # step: its run, two edges, its finish; per step: the run, its input, its edge, its
    # output claimed, its finish; the cached step's run and finish
    assert sum(expected.values()) == 1 + (4 + 2 * n) + 4 * n + 5 * n + 2
    # the same, but a step started and finished in one flush is one insert of the finished
    # run (the early, made and cached steps), not the plain Recorder's insert and update
    merged = ["r/early", *(f"r/{i}" for i in range(n)), "r/again"]
    assert audited("batched", batched) == inserted_finished(expected, merged)


def _killed_mid_batch(instance_name: str, root: str) -> None:
    """In a child: a batch of 2 steps is written, the next one dies half written (SIGKILL)."""
    from lakeline import checkpoints

    os.environ["LAKELINE_INSTANCE"] = instance_name
    ll.connect()
    rec = BatchRecorder("toy", root=root, steps=2, ms=60_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    flushes: list[int] = []

    def die_on_second() -> None:
        flushes.append(1)
        if len(flushes) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    with checkpoints.at("recorder.flush", die_on_second):
        for i in range(4):
            step = rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i))
            rec.use(step, f"in{i}.txt")
            rec.produce(step, f"out{i}.txt")
            rec.finish_step(step)


def test_a_process_killed_mid_batch_loses_that_batch_only(
    instance: Instance, tmp_path: Path
) -> None:
    for i in range(4):
        (tmp_path / f"in{i}.txt").write_text(f"in {i}")
        (tmp_path / f"out{i}.txt").write_text(f"out {i}")
    process = SPAWN.Process(target=_killed_mid_batch, args=(instance.name, str(tmp_path)))
    process.start()
    process.join(120)
    assert process.exitcode == -signal.SIGKILL
    steps = {r.engine_ref: r for r in ll.Run.filter(engine="toy", parent_id__isnull=False)}
    # the killed batch's runs were in its transaction too: nothing of it is left
    assert sorted(steps) == ["r/0", "r/1"]
    assert [steps[f"r/{i}"].status for i in range(2)] == ["completed"] * 2
    keys = sorted(a.key for a in ll.Artifact.filter())
    assert keys == ["in0.txt", "in1.txt", "out0.txt", "out1.txt"]
    assert [a.key for a in steps["r/1"].inputs.all()] == ["in1.txt"]
    assert [a.key for a in steps["r/1"].outputs.all()] == ["out1.txt"]
    # the audit chain holds the written batch's entries only, and the next writer extends it
    assert verify(instance).ok, verify(instance)
    rec = BatchRecorder("toy", root=tmp_path, steps=10, ms=60_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    again = rec.start_step(wf, key="s", kind="rule", engine_task_id="9")
    rec.use(again, "in2.txt")
    rec.finish_step(again)
    rec.flush()
    verdict = verify(instance)
    assert verdict.ok and verdict.checked > 0, verdict


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batched"])
def test_naive_times_are_refused_when_given(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """A naive start or finish time is an InvalidValue at the call that gives it (batched:
    not at the flush, which would lose the batch); an aware one is stored in UTC."""
    from datetime import datetime, timedelta, timezone

    from lakeline.errors import InvalidValue

    naive = datetime(2026, 1, 1, 12)
    rec = make_recorder("toy", root=tmp_path, batch=batch)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    with pytest.raises(InvalidValue, match=r"naive datetime .*: pass a timezone-aware datetime"):
        rec.start_step(wf, key="a", kind="rule", engine_task_id="1", started_at=naive)
    one = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    with pytest.raises(InvalidValue, match=r"naive datetime"):
        rec.finish_step(one, finished_at=naive)
    rec.finish_step(one, finished_at=naive.replace(tzinfo=timezone(timedelta(hours=2))))
    rec.finish_workflow(wf)
    if isinstance(rec, BatchRecorder):
        rec.flush()
    step = ll.Run.get(engine="toy", engine_ref="r/1")
    assert step.status == "completed" and step.finished_at == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert ll.Run.get(engine="toy", engine_ref="r").status == "completed"


def _fail_once(failures: list[int]) -> None:
    """At the `recorder.flush` checkpoint: a transient database error, the first time."""
    from sqlalchemy.exc import OperationalError

    failures.append(1)
    if len(failures) == 1:
        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))


def _first_steps(rec: Recorder, root: Path) -> Handle:
    (root / "in.txt").write_text("input")
    wf = rec.start_workflow(key="p", engine_run_id="r")
    one = rec.start_step(wf, key="split", kind="rule", engine_task_id="1")
    rec.use(one, "in.txt")
    (root / "a.txt").write_text("a")
    rec.produce(one, "a.txt")
    rec.finish_step(one)
    return wf


def _next_steps(rec: Recorder, root: Path, wf: Handle) -> None:
    """Steps using files saved before (unchanged: links), a new input, outputs used again."""
    (root / "new.txt").write_text("a new input")
    two = rec.start_step(wf, key="count", kind="rule", engine_task_id="2")
    rec.use(two, "a.txt")
    rec.use(two, "new.txt", role="extra")
    (root / "dir").mkdir()
    (root / "dir" / "part.txt").write_text("part")
    rec.produce(two, "dir")
    (root / "b.txt").write_text("b")
    rec.finish_step(two, "errored", exit_code=2, error="boom", outputs=["b.txt"])
    three = rec.start_step(wf, key="merge", kind="rule", engine_task_id="3")
    rec.use(three, "b.txt")
    rec.use(three, "in.txt")
    rec.finish_step(three)


def test_a_failed_flush_is_written_whole_by_the_next_one(
    instance: Instance, tmp_path: Path
) -> None:
    """A flush failing half written raises and leaves its batch queued: the next flush writes
    it all (nothing twice), as the plain Recorder records it."""
    from lakeline import checkpoints
    from sqlalchemy.exc import OperationalError

    plain, batched = tmp_path / "plain", tmp_path / "batched"
    for root in (plain, batched):
        root.mkdir()
    rec_plain = Recorder("plain", root=plain)
    plain_wf = _first_steps(rec_plain, plain)
    _next_steps(rec_plain, plain, plain_wf)
    rec_plain.finish_workflow(plain_wf)
    rec = BatchRecorder("batched", root=batched, steps=100, ms=600_000)
    wf = _first_steps(rec, batched)
    rec.flush()
    _next_steps(rec, batched, wf)
    failures: list[int] = []
    with checkpoints.at("recorder.flush", lambda: _fail_once(failures)):
        with pytest.raises(OperationalError, match="server closed"):
            rec.flush()
        steps = {r.engine_ref: r for r in ll.Run.filter(engine="batched")}
        assert "r/2" not in steps and "r/3" not in steps  # rolled back with the batch
        rec.flush()
    assert len(failures) == 2
    rec.finish_workflow(wf)
    assert ll.Run.filter(engine="batched").count() == ll.Run.filter(engine="plain").count() == 4
    assert lineage("batched", batched) == lineage("plain", plain)


@pytest.mark.parametrize("upload", [False, True], ids=["in-place", "uploaded"])
def test_a_file_changed_before_the_retried_flush_is_saved_as_it_is_then(
    instance: Instance, tmp_path: Path, upload: bool
) -> None:
    """The failed flush's copy is gone and its hash stale: the retry reads the file again."""
    from lakeline import checkpoints
    from lakeline.storage.hashing import hash_local_file
    from sqlalchemy.exc import OperationalError

    out = tmp_path / "out.txt"
    out.write_text("the bytes when reported")
    root = None if upload else tmp_path  # no root: a file outside any storage is copied in
    rec = BatchRecorder("toy", root=root, steps=100, ms=600_000, upload=upload)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    made = rec.produce(step, out)
    rec.finish_step(step)
    failures: list[int] = []
    with checkpoints.at("recorder.flush", lambda: _fail_once(failures)):
        with pytest.raises(OperationalError):
            rec.flush()
        out.write_text("other bytes, written before the retry")
        rec.flush()
    assert len(failures) == 2
    assert made is not None and made.id is not None
    (saved,) = ll.Run.get(id=step.run.id).outputs.all()
    assert saved.id == made.id and saved.in_place is not upload
    stored = saved.cache()
    assert Path(stored).read_text() == "other bytes, written before the retry"
    assert saved.hash == hash_local_file(stored).hash
    assert saved.size == len("other bytes, written before the retry")
    assert ll.Run.get(id=step.run.id).status == "completed"


def test_a_file_gone_before_the_retried_flush_is_recorded_as_the_plain_recorder_does(
    instance: Instance, tmp_path: Path
) -> None:
    """Its bytes cannot be read again: its producer claims nothing, a user gets a reference."""
    from lakeline import checkpoints
    from sqlalchemy.exc import OperationalError

    (tmp_path / "in.txt").write_text("input")
    (tmp_path / "out.txt").write_text("output")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    rec.use(step, "in.txt")
    rec.produce(step, "out.txt")
    rec.finish_step(step)
    failures: list[int] = []
    with checkpoints.at("recorder.flush", lambda: _fail_once(failures)):
        with pytest.raises(OperationalError):
            rec.flush()
        (tmp_path / "in.txt").unlink()
        (tmp_path / "out.txt").unlink()
        rec.flush()
    run = ll.Run.get(id=step.run.id)
    assert run.status == "completed" and not run.outputs.all()
    (used,) = run.inputs.all()
    assert used.key == "in.txt" and used.hash is None  # a reference: its bytes are gone
    assert rec.missing == [str(tmp_path / "in.txt"), str(tmp_path / "out.txt")]


def test_runs_whose_insert_failed_stay_queued(instance: Instance, tmp_path: Path) -> None:
    """The queued runs' own transaction fails: they are inserted (once) by the next flush."""
    from sqlalchemy.exc import OperationalError

    (tmp_path / "in.txt").write_text("input")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    outer = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    inner = rec.start_step(wf, key="t", kind="rule", engine_task_id="2", parent=outer)
    rec.use(inner, "in.txt")
    rec.finish_step(inner)
    rec.finish_step(outer)
    inserts: list[str] = []

    def fail_second_wave(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO runs"):
            inserts.append(statement)
            if len(inserts) == 2:  # the nested run's wave: the outer one is inserted
                raise OperationalError(statement, {}, ConnectionError("connection lost"))

    event.listen(instance.engine, "before_cursor_execute", fail_second_wave)
    try:
        with pytest.raises(OperationalError, match="connection lost"):
            rec.flush()
        assert outer.run.id is None and inner.run.id is None
        assert not ll.Run.filter(engine="toy", parent_id__isnull=False).count()
        rec.flush()
    finally:
        event.remove(instance.engine, "before_cursor_execute", fail_second_wave)
    assert len(inserts) == 4
    runs = {r.engine_ref: r for r in ll.Run.filter(engine="toy", parent_id__isnull=False)}
    assert sorted(runs) == ["r/1", "r/2"] and runs["r/2"].parent_id == runs["r/1"].id
    assert [r.status for r in runs.values()] == ["completed"] * 2
    assert [a.key for a in runs["r/2"].inputs.all()] == ["in.txt"]
