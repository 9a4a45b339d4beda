"""The Recorder, through a small real engine (files on disk, steps as functions), and the
conformance kit every integration runs against its own adapter."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.errors import LakelineError
from lakeline.hookspecs import hookimpl
from lakeline.instance import Instance
from lakeline.lineage.recorder import FileRecord, Recorder
from lakeline.testing import ExpectedStep, RecorderConformance

# A tiny engine: each job reads its inputs and writes its outputs, for real.
JOBS: list[dict[str, Any]] = [
    {"id": "1", "rule": "split", "input": ["data/raw.txt"], "output": ["out/a.txt", "out/b.txt"]},
    {"id": "2", "rule": "count", "input": ["out/a.txt"], "output": ["out/a.count"]},
    {"id": "3", "rule": "count", "input": ["out/b.txt"], "output": ["out/b.count"]},
    {
        "id": "4",
        "rule": "merge",
        "input": ["out/a.count", "out/b.count"],
        "output": ["out/total.txt"],
        "log": ["logs/merge.log"],
    },
]


def execute(job: dict[str, Any], root: Path) -> None:
    text = "\n".join((root / p).read_text() for p in job["input"])
    if job["rule"] == "split":
        half = len(text) // 2
        (root / job["output"][0]).write_text(text[:half])
        (root / job["output"][1]).write_text(text[half:])
    elif job["rule"] == "count":
        (root / job["output"][0]).write_text(str(len(text.split())))
    else:
        (root / job["output"][0]).write_text(str(sum(int(x) for x in text.split())))
    for log in job.get("log", []):
        (root / log).parent.mkdir(parents=True, exist_ok=True)
        (root / log).write_text(f"{job['rule']} done\n")


def record(
    root: Path, run_id: str = "run-1", execute_jobs: bool = True, finish_outputs: bool = False
) -> Recorder:
    """Run (or replay) the toy workflow through the Recorder, as an integration would;
    `finish_outputs` hands the outputs to finish_step instead of produce()."""
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="toy-pipeline", engine_run_id=run_id, source_code="rules...")
    for job in JOBS:
        step = rec.start_step(
            wf, key=job["rule"], kind="rule", engine_task_id=job["id"], params={"job": job["id"]}
        )
        for path in job["input"]:
            rec.use(step, path)
        if execute_jobs:
            execute(job, root)
        logs = [FileRecord(path, kind="log") for path in job.get("log", [])]
        if finish_outputs:
            rec.finish_step(step, "completed", exit_code=0, outputs=[*job["output"], *logs])
            continue
        for path in job["output"]:
            rec.produce(step, path)
        for log in logs:
            rec.produce(step, log.path, kind=log.kind)
        rec.finish_step(step, "completed", exit_code=0)
    rec.finish_workflow(wf, "completed")
    return rec


def prepare(tmp_path: Path) -> Path:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("alpha beta gamma delta epsilon zeta eta")
    return root


class TestToyEngineConformance(RecorderConformance):
    """The kit run against the toy engine's adapter: proves the kit and the Recorder agree."""

    engine = "toy"
    finish_outputs = False

    def run_workflow(self, tmp_path: Path) -> list[ExpectedStep]:
        record(prepare(tmp_path), finish_outputs=self.finish_outputs)
        return [
            ExpectedStep(
                "split", frozenset({"data/raw.txt"}), frozenset({"out/a.txt", "out/b.txt"})
            ),
            ExpectedStep("count", frozenset({"out/a.txt"}), frozenset({"out/a.count"})),
            ExpectedStep("count", frozenset({"out/b.txt"}), frozenset({"out/b.count"})),
            ExpectedStep(
                "merge",
                frozenset({"out/a.count", "out/b.count"}),
                frozenset({"out/total.txt", "logs/merge.log"}),
            ),
        ]

    def replay(self, tmp_path: Path) -> None:
        record(tmp_path / "wf", execute_jobs=False, finish_outputs=self.finish_outputs)


class TestToyEngineFinishingWithOutputsConformance(TestToyEngineConformance):
    """The same, with outputs recorded by finish_step(outputs=...) in the finish's transaction."""

    finish_outputs = True


def test_recorded_details(instance: Instance, tmp_path: Path) -> None:
    root = prepare(tmp_path)
    record(root)
    workflow = ll.Run.get(engine="toy", engine_ref="run-1")
    assert workflow.transform.kind == "pipeline" and workflow.status == "completed"
    steps = workflow.children.order_by("engine_ref").all()
    assert [s.engine_ref for s in steps] == ["run-1/1", "run-1/2", "run-1/3", "run-1/4"]
    assert all(s.exit_code == 0 and s.params == {"job": s.engine_ref[-1]} for s in steps)
    assert ll.Transform.filter(key="count").count() == 1  # one rule, two jobs
    total = ll.Artifact.get(key="out/total.txt")
    assert total.in_place and total.path == str(root / "out" / "total.txt")
    assert total.load() == "8"  # "alpha beta gamma del" + "ta epsilon zeta eta"
    assert ll.Artifact.get(key="logs/merge.log").kind == "log"
    # files in the workflow folder are registered in place: nothing copied
    assert not (Path(instance.storage.root) / ".lakeline" / "objects").exists()


def test_rerun_after_change_adds_new_runs_and_versions(instance: Instance, tmp_path: Path) -> None:
    root = prepare(tmp_path)
    record(root)
    (root / "data" / "raw.txt").write_text("one two three")
    record(root, run_id="run-2")
    assert ll.Run.filter(engine="toy", parent_id__isnull=True).count() == 2
    total = ll.Artifact.get(key="out/total.txt")
    assert total.uid.endswith("0001") and total.load() == "4"  # "one tw" + "o three"
    assert total.run.parent.engine_ref == "run-2"  # type: ignore[union-attr]
    raw_versions = ll.Artifact.filter(key="data/raw.txt", is_latest=None).count()
    assert raw_versions == 2


def test_cached_and_failed_steps(instance: Instance, tmp_path: Path) -> None:
    root = prepare(tmp_path)
    record(root)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="toy-pipeline", engine_run_id="run-2")
    cached = rec.start_step(wf, key="split", kind="rule", engine_task_id="1")
    rec.finish_step(cached, "cached", cached_from="run-1/1")
    failed = rec.start_step(wf, key="count", kind="rule", engine_task_id="2")
    rec.use(failed, "out/a.txt")
    rec.finish_step(failed, "errored", exit_code=3, error="count: killed")
    rec.finish_workflow(wf, "errored", error="1 job failed")
    cached_run = ll.Run.get(engine="toy", engine_ref="run-2/1")
    assert cached_run.status == "cached"
    assert cached_run.cached_from_id == ll.Run.get(engine="toy", engine_ref="run-1/1").id
    failed_run = ll.Run.get(engine="toy", engine_ref="run-2/2")
    assert (failed_run.status, failed_run.exit_code, failed_run.error) == (
        "errored",
        3,
        "count: killed",
    )
    assert failed_run.outputs.count() == 0 and failed_run.inputs.count() == 1
    with pytest.raises(LakelineError, match="finishes as one of"):
        rec.finish_step(failed, "running")


def test_vanished_files_are_listed_not_fatal(instance: Instance, tmp_path: Path) -> None:
    root = prepare(tmp_path)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    gone = rec.use(step, "data/gone.txt")  # read, then deleted: a reference keeps the edge
    assert gone is not None and not gone.available and gone.location == str(root / "data/gone.txt")
    assert rec.produce(step, "out/never.txt") is None  # never made: nothing to record
    assert rec.missing == [str(root / "data" / "gone.txt"), str(root / "out" / "never.txt")]
    # a known file that was deleted since (a temp() output): its record is linked
    known = rec.produce(step, "data/raw.txt")
    (root / "data" / "raw.txt").unlink()
    later = rec.start_step(wf, key="t", kind="rule", engine_task_id="2")
    assert rec.use(later, "data/raw.txt").uid == known.uid  # type: ignore[union-attr]


def test_files_outside_the_root_are_registered_or_uploaded(
    instance: Instance, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "ref.fa"
    outside.parent.mkdir()
    outside.write_text(">chr1\nACGT\n")
    rec = Recorder("toy", root=prepare(tmp_path))
    step = rec.start_step(
        rec.start_workflow(key="p", engine_run_id="r"), key="s", kind="rule", engine_task_id="1"
    )
    registered = rec.use(step, outside)
    assert registered is not None and registered.in_place and registered.key == "ref.fa"
    uploading = Recorder("toy-upload", upload=True)
    step2 = uploading.start_step(
        uploading.start_workflow(key="p", engine_run_id="r"),
        key="s",
        kind="rule",
        engine_task_id="1",
    )
    other = tmp_path / "other" / "ref2.fa"
    other.parent.mkdir()
    other.write_text(">chr2\nTTTT\n")
    uploaded = uploading.use(step2, other, key="refs/ref2.fa")
    assert uploaded is not None and not uploaded.in_place and uploaded.key == "refs/ref2.fa"


def test_parallel_steps_from_threads(instance: Instance, tmp_path: Path) -> None:
    root = prepare(tmp_path)
    for i in range(12):
        (root / "data" / f"in{i}.txt").write_text(f"input {i}")
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="p", engine_run_id="r")

    def job(i: int) -> None:
        step = rec.start_step(wf, key="work", kind="rule", engine_task_id=str(i))
        rec.use(step, f"data/in{i}.txt")
        (root / "out" / f"o{i}.txt").write_text(f"output {i}")
        rec.produce(step, f"out/o{i}.txt")
        rec.finish_step(step)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(12):
        out = ll.Artifact.get(key=f"out/o{i}.txt")
        run = out.run
        assert run is not None and run.engine_ref == f"r/{i}"
        assert [a.key for a in run.inputs] == [f"data/in{i}.txt"]


def _waits_for_a_lock(instance: Instance) -> bool:
    """Whether a PostgreSQL session waits for a lock another transaction holds."""
    from sqlalchemy import text

    with instance.sessions.read() as session:
        return bool(session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")))


def test_a_step_started_while_its_transform_is_written_waits_for_its_commit(
    instance: Instance, tmp_path: Path
) -> None:
    """Two threads of one Recorder start the first steps of a new task at once (Prefect's
    mapped tasks): the second must not take the transform whose transaction has not committed
    (PostgreSQL refused its run: a foreign-key violation, and the Prefect flow lost a run)."""
    from lakeline import checkpoints

    root = prepare(tmp_path)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:  # the first thread, its transform written, not committed
        if threading.current_thread().name == "first":
            inside.set()
            release.wait(60)

    def start(i: int) -> None:
        try:
            rec.start_step(wf, key="mapped", kind="task", engine_task_id=str(i))
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=start, args=(1,), name="first")
    second = threading.Thread(target=start, args=(2,), name="second")
    with checkpoints.at("recorder.transform", hold):
        first.start()
        assert inside.wait(60)
        second.start()
        # PostgreSQL: let the second go as far as it can (done, or waiting for the first's
        # lock); SQLite serialises writers, the second waits for the first's commit anyway
        while instance.dialect == "postgresql" and second.is_alive():
            if _waits_for_a_lock(instance):
                break
            second.join(0.05)
        release.set()
        first.join(60)
        second.join(60)
    assert not errors, errors
    runs = ll.Run.filter(engine="toy", parent_id=wf.run.id).all()
    assert sorted(r.engine_ref for r in runs) == ["r/1", "r/2"]
    assert len({r.transform_id for r in runs}) == 1


class Used:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    def artifact_used(self, artifact: ll.Artifact, run: ll.Run) -> None:
        self.events.append((artifact.key or "", run.uid))


def test_hook_artifact_used(instance: Instance, tmp_path: Path) -> None:
    from lakeline import plugins

    used = Used()
    plugins.get_plugin_manager().register(used)
    try:
        root = prepare(tmp_path)
        rec = Recorder("toy", root=root)
        step = rec.start_step(
            rec.start_workflow(key="p", engine_run_id="r"), key="s", kind="rule", engine_task_id="1"
        )
        rec.use(step, "data/raw.txt")
        rec.use(step, "data/raw.txt")  # the same edge again: no second event
        assert used.events == [("data/raw.txt", step.uid)]

        @ll.tracked()
        def reader() -> None:
            ll.Artifact.get(key="data/raw.txt").load()

        reader()
        assert len(used.events) == 2 and used.events[1][0] == "data/raw.txt"
    finally:
        plugins.get_plugin_manager().unregister(used)


def test_workflow_nested_under_another_run(instance: Instance, tmp_path: Path) -> None:
    rec = Recorder("toy", root=tmp_path)
    outer = rec.start_workflow(key="outer", engine_run_id="o-1")
    step = rec.start_step(outer, key="launch", kind="task", engine_task_id="1")
    inner = rec.start_workflow(key="inner", engine_run_id="i-1", parent=step)
    beside = rec.start_workflow(key="inner", engine_run_id="i-2", parent=outer.run)
    assert inner.run.parent_id == step.run.id and beside.run.parent_id == outer.run.id
    # the nested pipeline stays a pipeline of its own, not a step of the outer one
    assert inner.transform.parent_id is None and inner.transform.kind == "pipeline"
    again = rec.start_workflow(key="inner", engine_run_id="i-1", parent=step)
    assert again.run.id == inner.run.id  # replay: the same run
    launched = ll.Run.get(engine="toy", engine_ref="o-1/1")
    assert [r.engine_ref for r in launched.children.all()] == ["i-1"]


class Finished:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    @hookimpl
    def run_finished(self, run: ll.Run) -> None:
        self.events.append((run.engine_ref or "", run.status))


def test_finish_records_the_transition_once(instance: Instance, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from lakeline import plugins
    from sqlalchemy import update

    finished = Finished()
    plugins.get_plugin_manager().register(finished)
    try:
        rec = Recorder("toy", root=tmp_path)
        wf = rec.start_workflow(key="p", engine_run_id="r")
        t0, t1 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2025, 1, 2, 3, 9, tzinfo=UTC)
        step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1", started_at=t0)
        done = rec.finish_step(step, "errored", finished_at=t1, exit_code=2, error="boom")
        expected_log = [
            {"status": "started", "at": t0.isoformat()},
            {"status": "errored", "at": t1.isoformat()},
        ]
        for run in (done, step.run, ll.Run.get(engine="toy", engine_ref="r/1")):
            assert (run.status, run.exit_code, run.error) == ("errored", 2, "boom")
            assert (run.started_at, run.finished_at) == (t0, t1)
            assert run.status_log == expected_log
        again = rec.finish_step(step, "errored", exit_code=2, error="boom")  # a replay
        assert again.status_log == expected_log
        assert ll.Run.get(engine="toy", engine_ref="r/1").status_log == expected_log
        assert finished.events == [("r/1", "errored")]  # once
        # a run without a status log (written by an older version) gets one
        other = rec.start_step(wf, key="s", kind="rule", engine_task_id="2")
        with instance.sessions.write() as session:
            session.execute(update(ll.Run).where(ll.Run.id == other.run.id).values(status_log=None))
        assert rec.finish_step(other, finished_at=t1).status_log == [
            {"status": "completed", "at": t1.isoformat()}
        ]
        with instance.sessions.write() as session:
            session.execute(update(ll.Run).where(ll.Run.id == other.run.id).values(parent_id=None))
            session.delete(session.get(ll.Run, other.run.id))
        with pytest.raises(LakelineError, match="no longer exists"):
            rec.finish_step(other, "aborted")
    finally:
        plugins.get_plugin_manager().unregister(finished)


def test_finish_step_with_outputs(instance: Instance, tmp_path: Path) -> None:
    from lakeline import plugins
    from lakeline.testing import lineage_snapshot

    finished = Finished()
    plugins.get_plugin_manager().register(finished)
    try:
        root = prepare(tmp_path)
        (root / "out" / "early.txt").write_text("used before its producer was known")
        (root / "out" / "made.txt").write_text("made")
        rec = Recorder("toy", root=root)
        wf = rec.start_workflow(key="p", engine_run_id="r")
        reader = rec.start_step(wf, key="read", kind="rule", engine_task_id="1")
        rec.use(reader, "out/early.txt")
        step = rec.start_step(wf, key="make", kind="rule", engine_task_id="2")
        outputs = [
            "out/made.txt",
            FileRecord("out/early.txt"),
            FileRecord(root / "out" / "gone.log", kind="log"),
        ]
        run = rec.finish_step(step, outputs=outputs)
        assert run.status == "completed" and step.run.status == "completed"
        made, early = ll.Artifact.get(key="out/made.txt"), ll.Artifact.get(key="out/early.txt")
        assert made.run_id == early.run_id == step.run.id  # early: its producer, now known
        assert made.in_place
        assert rec.missing == [str(root / "out" / "gone.log")]  # vanished: listed, not fatal
        assert finished.events == [("r/2", "completed")]
        before = lineage_snapshot("toy")
        rec.finish_step(step, outputs=outputs)  # a replay changes nothing
        assert lineage_snapshot("toy") == before
        assert finished.events == [("r/2", "completed")]
        with pytest.raises(LakelineError, match="no other producer"):
            rec.finish_step(step, outputs=[FileRecord("out/made.txt", producer=reader)])
        # the outputs and the finish are one transaction: both or neither
        (root / "out" / "late.txt").write_text("late")
        (root / ".lakeline").mkdir()
        (root / ".lakeline" / "inside.txt").write_text("lakeline's own folder")
        late = rec.start_step(wf, key="make", kind="rule", engine_task_id="3")
        with pytest.raises(LakelineError, match="internal folder"):
            rec.finish_step(late, outputs=["out/late.txt", ".lakeline/inside.txt"])
        assert ll.Artifact.filter(key="out/late.txt").count() == 0
        assert ll.Run.get(engine="toy", engine_ref="r/3").status == "started"
    finally:
        plugins.get_plugin_manager().unregister(finished)


def test_one_statement_writes_leave_later_transactions_whole(
    instance: Instance, tmp_path: Path
) -> None:
    from sqlalchemy import update

    rec = Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")  # one statement each (autocommit on
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")  # PostgreSQL)
    rec.finish_step(step)
    with pytest.raises(RuntimeError), instance.sessions.write() as session:
        session.execute(update(ll.Run).where(ll.Run.id == step.run.id).values(error="half"))
        raise RuntimeError("rolled back")
    assert ll.Run.get(engine="toy", engine_ref="r/1").error is None


def test_references_for_data_without_bytes(instance: Instance, tmp_path: Path) -> None:
    """Tables and files known only by checksum are recorded as references, with their edges;
    a gone file recorded while it existed keeps its record; replays add nothing."""
    from lakeline.errors import ArtifactUnavailable

    rec = Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="refs", engine_run_id="r-1")
    load = rec.start_step(wf, key="load", kind="task", engine_task_id="1")
    table = rec.reference(load, "postgres://warehouse/public/words", output=True)
    gone = rec.reference(
        load, "out/cleaned.txt", output=True, hash="ab12", hash_type="nextflow", size=9
    )
    rec.finish_step(load)
    use = rec.start_step(wf, key="use", kind="task", engine_task_id="2")
    again = rec.reference(use, "postgres://warehouse/public/words", role="table")
    assert again.id == table.id  # the same location without hash: the same record
    rec.reference(
        use, tmp_path / "out" / "cleaned.txt", role="text", hash="ab12", hash_type="nextflow"
    )
    (tmp_path / "seen.txt").write_text("was here")
    seen = rec.use(use, "seen.txt")
    assert seen is not None
    (tmp_path / "seen.txt").unlink()
    kept = rec.reference(use, "seen.txt", role="seen", hash="ff", hash_type="md5")
    assert kept.id == seen.id and kept.available  # recorded with its bytes before
    rec.finish_step(use)
    assert not table.available and table.run_id == load.run.id
    assert gone.run_id == load.run.id and gone.hash == "ab12" and gone.size == 9
    assert gone.key == "out/cleaned.txt"  # inside the workflow folder: keyed like its files
    inputs = {a.id for a in ll.Run.get(uid=use.uid).inputs.all()}
    assert inputs == {table.id, gone.id, seen.id}
    with pytest.raises(ArtifactUnavailable):
        ll.Artifact.get(uid=gone.uid).load()
    # a replay changes nothing
    before = ll.Artifact.filter(is_latest=None).count()
    rec.reference(use, "postgres://warehouse/public/words", role="table")
    rec.reference(load, "out/cleaned.txt", output=True, hash="ab12", hash_type="nextflow")
    assert ll.Artifact.filter(is_latest=None).count() == before
    assert ll.Artifact.filter(available=False).count() == 2


def test_a_file_made_by_one_step_is_not_hashed_again_when_the_next_uses_it(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Produced by step 1, used unchanged by step 2: linked by its stat, read once. Rewritten
    afterwards: hashed again, a new version, and the next user links that one."""
    from lakeline.artifacts import planning

    hashed: list[str] = []
    real = planning.hash_in_place  # (files outside a storage root: copy_hashed)

    def counting(fs: Any, path: str, is_dir: bool, *before: Any) -> Any:
        hashed.append(path)
        return real(fs, path, is_dir, *before)

    monkeypatch.setattr(planning, "hash_in_place", counting)
    rec = Recorder("toy", root=tmp_path)
    wf = rec.start_workflow(key="big", engine_run_id="b-1")
    make = rec.start_step(wf, key="make", kind="task", engine_task_id="1")
    (tmp_path / "big.bin").write_bytes(b"x" * 4096)
    made = rec.produce(make, "big.bin")
    rec.finish_step(make)
    read = rec.start_step(wf, key="read", kind="task", engine_task_id="2")
    used = rec.use(read, "big.bin", role="data")
    assert used is not None and made is not None and used.id == made.id
    assert len(hashed) == 1  # the produce only
    assert [a.id for a in ll.Run.get(uid=read.uid).inputs.all()] == [made.id]
    (tmp_path / "big.bin").write_bytes(b"y" * 4096)  # same size, new bytes
    again = rec.start_step(wf, key="read", kind="task", engine_task_id="3")
    newer = rec.use(again, "big.bin", role="data")
    assert len(hashed) == 2 and newer is not None and newer.id != made.id
    assert newer.uid.startswith(made.uid[:12])  # a new version of the same key
    outputs = rec.start_step(wf, key="make", kind="task", engine_task_id="4")
    (tmp_path / "other.bin").write_bytes(b"z" * 10)
    rec.finish_step(outputs, outputs=["other.bin"])
    last = rec.start_step(wf, key="read", kind="task", engine_task_id="5")
    assert rec.use(last, "other.bin") is not None and len(hashed) == 3  # outputs= remembered too


def test_mark_gone_a_file_the_engine_deleted(instance: Instance, tmp_path: Path) -> None:
    """A temp() output deleted by its workflow: its record says so, instead of the store
    looking corrupt; a later save of the same bytes at that location fills it in again."""
    from lakeline.errors import ArtifactUnavailable

    root = prepare(tmp_path)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    (root / "tmp").mkdir()
    (root / "tmp" / "t.txt").write_text("temporary\n")
    made = rec.produce(step, "tmp/t.txt", kind="transient")
    assert made is not None and made.available
    assert rec.mark_gone("tmp/t.txt") is None  # still there: nothing to mark
    (root / "tmp" / "t.txt").unlink()
    gone = rec.mark_gone("tmp/t.txt")
    assert gone is not None and gone.uid == made.uid and gone.available is False
    assert gone.hash == made.hash and gone.run_id == step.run.id  # lineage kept
    with pytest.raises(ArtifactUnavailable, match=r"deleted by the workflow \(temp\)"):
        ll.Artifact.get(key="tmp/t.txt").load()
    assert rec.mark_gone("tmp/never.txt") is None  # never recorded
    (root / "tmp" / "t.txt").write_text("temporary\n")
    again = ll.Artifact(str(root / "tmp" / "t.txt")).save()
    assert again.uid == made.uid and ll.Artifact.get(key="tmp/t.txt").available is True


def test_link_many_records_edges_of_many_steps_in_one_go(
    instance: Instance, tmp_path: Path
) -> None:
    root = prepare(tmp_path)
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    first = rec.start_step(wf, key="s", kind="rule", engine_task_id="1")
    second = rec.start_step(wf, key="t", kind="rule", engine_task_id="2")
    raw = ll.Artifact(str(root / "data" / "raw.txt")).save()
    edges = [(first, raw, "reads"), (second, raw, ""), (second, raw, "again")]
    assert rec.link_many(edges) == 3
    assert rec.link_many(edges) == 0  # a replay changes nothing
    assert [a.uid for a in first.run.inputs] == [raw.uid]
    assert second.run.inputs.count() == 1 and raw.run_id is None  # a use sets no producer
