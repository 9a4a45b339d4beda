"""Task runs' ends recorded after the task ended, with the others, back to back
(`lakeline_prefect.ended`): what a later task changed meanwhile is never recorded as the
earlier task's, what reads the catalog sees the ends before it, strict records at the end.

The batch's age and the flusher's idle time are raised (`slow`) so that nothing records the
queue between two tasks of a flow: only what each test looks at."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lakeline as ll
import pf_batch
import pf_ended
import pytest
from lakeline.instance import Instance
from lakeline.testing_servers import S3Server
from test_prefect_flows import ENGINE, prepare


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batched, a batch due after 10 min, the flusher idle after 10 s (it sleeps half)."""
    from lakeline_prefect import flusher, hooks

    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
    monkeypatch.setattr(hooks, "BATCH_MS", 600_000.0)
    monkeypatch.setattr(flusher, "IDLE", 10.0)


def _runs() -> dict[str, ll.Run]:
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    return {r.transform.key: r for r in workflow.children.all()}


def _made(run: ll.Run) -> set[str]:
    return {a.key for a in ll.Artifact.filter(run_id=run.id, is_latest=None)}


def test_a_file_rewritten_after_the_task_that_wrote_it_is_not_its_output(
    workdir: Path, instance: Instance, slow: None, caplog: pytest.LogCaptureFixture
) -> None:
    """`write` ends, `rewrite` rewrites its file before the queue is recorded: the file is
    `rewrite`'s output only, never `write`'s with `rewrite`'s bytes (a warning says so)."""
    with caplog.at_level("WARNING", logger="lakeline.prefect"):
        pf_ended.written_then_rewritten()
    runs = _runs()
    assert {r.status for r in runs.values()} == {"completed"}
    (record,) = ll.Artifact.filter(key="out/a.txt", is_latest=None)
    assert record.run_id == runs["rewrite"].id
    assert record.load().startswith("rewritten")
    assert _made(runs["write"]) == set()
    said = [r.getMessage() for r in caplog.records if "changed after task run" in r.getMessage()]
    assert len(said) == 1 and "out/a.txt" in said[0] and "write" in said[0]


def test_a_file_rewritten_after_the_task_that_returned_it_is_not_its_input(
    workdir: Path, instance: Instance, slow: None, caplog: pytest.LogCaptureFixture
) -> None:
    """`pick` returns a file it did not write (used), `overwrite` rewrites it before the queue
    is recorded: `pick` is not recorded as using `overwrite`'s bytes (a warning says so)."""
    (workdir / "data").mkdir()
    (workdir / "data" / "in.txt").write_text("first")
    with caplog.at_level("WARNING", logger="lakeline.prefect"):
        pf_ended.picked_then_overwritten()
    runs = _runs()
    assert {r.status for r in runs.values()} == {"completed"}
    assert [a.size for a in runs["pick"].inputs.all()] in ([], [len("first")])
    said = [r.getMessage() for r in caplog.records if "changed after task run" in r.getMessage()]
    assert len(said) == 1 and "data/in.txt" in said[0] and "pick" in said[0]


def test_a_folder_rewritten_inside_after_its_task_ended_keeps_its_bytes(
    workdir: Path, instance: Instance, slow: None, tmp_path: Path
) -> None:
    """A folder's stat does not change when a file inside is rewritten in place: a task run
    returning a folder is recorded at its end, with the bytes it wrote."""
    from fsspec.implementations.local import LocalFileSystem
    from lakeline.storage.hashing import hash_folder

    seen = tmp_path / "seen"
    seen.mkdir()
    (seen / "0.txt").write_text("alpha")
    (seen / "1.txt").write_text("beta")
    expected = hash_folder(LocalFileSystem(), str(seen)).hash
    pf_ended.folder_then_scribble()
    assert (workdir / "out" / "shards" / "0.txt").read_text() == "ZZpha"
    assert _made(_runs()["shards"]) == {"out/shards"}
    assert {a.hash for a in ll.Artifact.filter(key="out/shards", is_latest=None)} == {expected}


def test_an_object_overwritten_after_the_task_that_wrote_it_keeps_its_bytes(
    workdir: Path,
    instance: Instance,
    slow: None,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An object has no stat to compare: a task run with one is recorded at its end."""
    import s3fs

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    url = f"s3://{s3_bucket}/out/put.txt"
    pf_ended.put_then_overwrite(url, s3_bucket, "out/put.txt")
    client = s3_server.client()
    body = client.get_object(Bucket=s3_bucket, Key="out/put.txt")["Body"].read()
    assert body == b"overwritten after the task that wrote it\n"
    (made,) = ll.Artifact.filter(run_id=_runs()["s3_put"].id, is_latest=None)
    assert made.size == len(b"written first\n")


def test_a_path_written_after_the_task_that_returned_it_is_not_its_output(
    workdir: Path, instance: Instance, slow: None
) -> None:
    """`promise` returns a path with no file at its end; `fulfil` writes it later: the file
    is `fulfil`'s output, not `promise`'s (recorded at its end: as missing)."""
    pf_ended.promised_then_fulfilled()
    runs = _runs()
    assert ll.Artifact.get(key="out/later.txt").run_id == runs["fulfil"].id
    assert _made(runs["promise"]) == set()


def test_a_body_reading_its_run_sees_the_task_runs_that_ended(
    workdir: Path, instance: Instance, slow: None
) -> None:
    """A body that reads its run (a save or a load with the lakeline API) writes the batch
    first, with the ends queued: an earlier task's output is in the catalog, its run done."""
    assert pf_ended.made_then_read() == ("write", "completed")


def test_a_downstream_task_records_its_input_after_the_task_that_made_it(
    workdir: Path, instance: Instance, slow: None
) -> None:
    """A task run given a queued task run's output records that end first: one record per
    file, made by the upstream run, used by the downstream one, and each run written once
    (inserted finished, not inserted started then updated)."""
    from lakeline.access.audit import entries

    assert pf_ended.chained() == workdir / "out" / "x.more"
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    steps = sorted(workflow.children.all(), key=lambda r: r.started_at)
    assert [s.transform.key for s in steps] == ["write", "consume", "consume"]
    assert [s.status for s in steps] == ["completed"] * 3
    assert [_made(s) for s in steps] == [{"out/x.txt"}, {"out/x.up"}, {"out/x.more"}]
    assert [[a.key for a in s.inputs.all()] for s in steps] == [[], ["out/x.txt"], ["out/x.up"]]
    assert ll.Artifact.filter(key="out/x.txt", is_latest=None).count() == 1
    assert ll.Artifact.filter(key="out/x.up", is_latest=None).count() == 1
    uids = [s.uid for s in steps]
    assert [e.action for e in entries(instance, uids=uids)] == ["insert"] * 3


def test_strict_records_a_task_run_at_its_end_and_fails_it(
    workdir: Path, instance: Instance, slow: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Strict: a task run's recording that fails fails the task (so the flow) at its end,
    before the next task runs; not later, when the batch is written."""
    import lakeline_prefect
    from lakeline import checkpoints
    from lakeline.errors import DatabaseUnreachable
    from lakeline_prefect import RecordingFailed
    from prefect.context import TaskRunContext

    lakeline_prefect.configure(strict=True)

    def fail() -> None:  # hashing a file inside the task run `bad` (its hook: its context)
        context = TaskRunContext.get()
        if context is not None and context.task.name == "bad":
            raise DatabaseUnreachable("the database went away")

    with checkpoints.at("source.read", fail), pytest.raises(RecordingFailed, match="'bad"):
        pf_ended.bad_then_after()
    assert (workdir / "out" / "bad.txt").exists()
    assert not (workdir / "out" / "after.txt").exists()


def test_a_task_run_refused_while_ends_are_queued_costs_itself_only(
    workdir: Path, instance: Instance, slow: None, caplog: pytest.LogCaptureFixture
) -> None:
    """`doomed`'s run is deleted after its body wrote it: the flush at the flow run's end
    leaves it out (StepsNotRecorded, a warning naming it); the task runs that ended around
    it, queued then, are written with their outputs."""
    from lakeline.lineage.recorder import Recorder
    from sqlalchemy import text

    refs: list[str] = []

    def delete(run_id: int) -> None:
        # a run recorded after it first: SQLite would give the deleted run's id to the next
        # run inserted, and the finish would land on that run (the core's `_gone_runs`)
        Recorder("toy").start_workflow(key="later", engine_run_id="later")
        with instance.engine.begin() as conn:
            select = text("SELECT engine_ref FROM runs WHERE id = :id")
            refs.append(conn.execute(select, {"id": run_id}).scalar_one())
            conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": run_id})

    pf_ended.DOOM[:] = [delete]
    with caplog.at_level("WARNING", logger="lakeline.prefect"):
        pf_ended.first_doomed_last()
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    assert workflow.status == "completed"
    steps = sorted(workflow.children.all(), key=lambda r: r.started_at)
    assert [s.transform.key for s in steps] == ["write", "write"]
    assert [s.status for s in steps] == ["completed", "completed"]
    assert [_made(s) for s in steps] == [{"out/first.txt"}, {"out/last.txt"}]
    said = [r.getMessage() for r in caplog.records if r.name == "lakeline.prefect"]
    assert len(said) == 1 and repr(refs[0]) in said[0] and "not recorded" in said[0], said


def test_task_runs_queued_at_process_exit_are_written(
    workdir: Path, instance: Instance, prefect_server: Path
) -> None:
    """A process that exits while a flow runs (its flow run never finishes) with a task
    run's end queued: the exit records it and writes it."""
    from prefect.settings import PREFECT_API_URL

    raw, gate = prepare(workdir), workdir / "gate"
    script = workdir / "exits.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, threading, time
            from pathlib import Path
            sys.path.insert(0, {str(Path(pf_batch.__file__).parent)!r})
            import pf_batch
            from lakeline_prefect import flusher, hooks
            hooks.BATCH_MS = 600_000.0
            flusher.IDLE = 3600.0
            raw, gate = Path({str(raw)!r}), Path({str(gate)!r})
            flow = threading.Thread(
                target=pf_batch.quick_then_held, args=(raw, gate), daemon=True
            )
            flow.start()
            deadline = time.monotonic() + 120
            while not len(hooks._ENDED) and time.monotonic() < deadline:
                time.sleep(0.005)
            print("queued", len(hooks._ENDED), flush=True)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "LAKELINE_CAPTURE_BATCH"}
    env.update(LAKELINE_INSTANCE=instance.name, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=workdir, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"queued 1" in done.stdout, done.stdout
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    quick = ll.Run.get(engine=ENGINE, transform__key="quick")
    assert quick.parent_id == workflow.id and quick.status == "completed"
    assert ll.Artifact.get(key="out/quick.txt").run_id == quick.id
