"""BatchRecorder queueing with one stat per file: the stat the path's resolution made is what
the step saw, the hash's "before" state and the reuse check's. Whatever the file does after
that stat, a record's hash is the bytes it points to."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import lakeline as ll
import pytest
from faults import rewrite_at
from lakeline.instance import Instance
from lakeline.lineage.recorder import BatchRecorder
from lakeline.storage.hashing import hash_in_place, hash_local_file
from lakeline.storage.roots import filesystem


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def state(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def test_a_stale_before_state_is_read_again_not_trusted(tmp_path: Path) -> None:
    """`hash_in_place(before=)` with the state of bytes since replaced (bigger, then smaller
    than the size it names): the digest and fingerprint are the file's bytes now."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"old")
    old = state(path)
    for now in (b"grown well past the size the stale state names" * 50, b"x"):
        path.write_bytes(now)
        digest, stored = hash_in_place(filesystem(str(tmp_path)), str(path), False, old)
        assert (digest.hash, digest.size) == (sha(now), len(now))
        assert stored == (len(now), f"m:{os.stat(path).st_mtime_ns}")
        assert hash_local_file(str(path), 3) == hash_local_file(str(path))  # a wrong size hint


def test_a_file_rewritten_while_queued_is_hashed_as_it_is_after(
    instance: Instance, tmp_path: Path
) -> None:
    """The queue's stat is the hash's before state: a file rewritten while it is read (after
    that stat) is read again, and the record holds the bytes the file holds then."""
    out = tmp_path / "out.txt"
    out.write_bytes(b"first")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    with rewrite_at("source.read", out, b"rewritten while hashed ") as rewrites:
        made = rec.produce(step, "out.txt")
    rec.finish_step(step)
    rec.flush()
    assert rewrites == [1] and made is not None
    record = ll.Artifact.get(id=made.id)
    assert (record.hash, record.size) == (sha(out.read_bytes()), out.stat().st_size)
    assert out.read_bytes() == b"rewritten while hashed 1"


def test_a_queued_output_replaced_before_its_use_is_not_reused(
    instance: Instance, tmp_path: Path
) -> None:
    """An output of this batch replaced keeping its size and mtime (`cp -p`) before the next
    step uses it: the use's stat (new inode and ctime) is not the queued one, so the input is
    a record of the new bytes, not the output's."""
    out = tmp_path / "out.txt"
    out.write_bytes(b"AAAA")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    one = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    made = rec.produce(one, "out.txt")
    rec.finish_step(one)
    then = os.stat(out)
    other = tmp_path / "other.txt"
    other.write_bytes(b"BBBB")
    os.utime(other, ns=(then.st_atime_ns, then.st_mtime_ns))
    os.replace(other, out)
    two = rec.start_step(wf, key="b", kind="rule", engine_task_id="2")
    used = rec.use(two, "out.txt")
    rec.finish_step(two)
    rec.flush()
    assert made is not None and used is not None
    (record,) = ll.Run.get(id=two.run.id).inputs.all()
    assert record.hash == sha(b"BBBB") != ll.Artifact.get(id=made.id).hash


def test_use_saved_takes_a_record_queued_in_this_batch(instance: Instance, tmp_path: Path) -> None:
    """`use_saved` of an output this batch holds unsaved (id None) queues the edge on that
    file: its role written with the batch, one record, the file not read again; an unsaved
    record this Recorder does not hold is refused, and nothing of it is queued."""
    from lakeline.errors import LakelineError
    from lakeline.models import RunInput
    from sqlalchemy import select

    (tmp_path / "out.txt").write_bytes(b"made")
    (tmp_path / "elsewhere.txt").write_bytes(b"other")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    other = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    one = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    made = rec.produce(one, "out.txt")
    rec.finish_step(one)
    two = rec.start_step(wf, key="b", kind="rule", engine_task_id="2")
    assert made is not None and made.id is None
    os.remove(tmp_path / "out.txt")  # not read again: the queued plan is what is written
    rec.use_saved(two, made, role="gathered")
    owf = other.start_workflow(key="q", engine_run_id="s")
    ostep = other.start_step(owf, key="c", kind="rule", engine_task_id="1")
    foreign = other.produce(ostep, "elsewhere.txt")
    assert foreign is not None and foreign.id is None
    with pytest.raises(LakelineError, match="queued in this batch"):
        rec.use_saved(two, foreign)
    rec.finish_step(two)
    rec.flush()
    other.flush()
    assert made.id is not None
    with instance.sessions.read() as session:
        edges = session.execute(select(RunInput.run_id, RunInput.artifact_id, RunInput.role))
        assert sorted(edges.all()) == [(two.run.id, made.id, "gathered")]
    assert ll.Artifact.get(id=made.id).hash == sha(b"made")
