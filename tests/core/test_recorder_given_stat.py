"""`Recorder.use`/`produce` with the caller's stat (`stat=`, an integration's lstat): not
taken again, and the facts are those of the same call without it: a symlink's own lstat is
not its target's, a file replaced or rewritten after that stat is hashed as it is read, a
folder, a path outside every storage root, a relative path, a file gone since."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.instance import Instance
from lakeline.lineage.handles import FileRecord
from lakeline.lineage.recorder import BatchRecorder, Recorder


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def facts(artifact: ll.Artifact | None) -> tuple[Any, ...]:
    """What a record says about its file, less its ids (two catalogs compared)."""
    assert artifact is not None and artifact.id is not None
    record = ll.Artifact.get(id=artifact.id)
    return (record.key, record.hash, record.hash_type, record.size, record.suffix, record.n_files)


def tree(root: Path, tag: str = "") -> None:
    """A workflow folder; `tag` in its names (one catalog: a key is one file's)."""
    (root / "data").mkdir(parents=True)
    (root / "data" / f"in{tag}.txt").write_bytes(b"input bytes")
    (root / "out").mkdir()
    (root / "out" / f"made{tag}.csv").write_bytes(b"a,b\n1,2\n")
    (root / "out" / f"folder{tag}").mkdir()
    (root / "out" / f"folder{tag}" / "x.txt").write_bytes(b"x")
    (root / f"link{tag}.txt").symlink_to(root / "data" / f"in{tag}.txt")


CALLS = [  # (method, path): each given its lstat, or not
    ("use", "data/in{}.txt"),
    ("produce", "out/made{}.csv"),
    ("produce", "out/folder{}"),
    ("use", "link{}.txt"),  # its lstat is the link's own: not its target's
    ("use", "./data/../data/in{}.txt"),  # a path normalize_root tidies
]


def record_all(rec: Recorder, root: Path, *, given: bool) -> list[tuple[Any, ...]]:
    tag = f"-{given}"
    wf = rec.start_workflow(key="p", engine_run_id=f"r{given}")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    made = []
    for method, path in CALLS:
        path = path.format(tag)
        extra = {"stat": os.lstat(root / path)} if given else {}
        made.append(getattr(rec, method)(step, path, **extra))
    outside = root.parent / "outside" / f"o{tag}.txt"  # in no storage root: one is made
    outside.parent.mkdir()
    outside.write_bytes(b"outside")
    extra = {"stat": os.lstat(outside)} if given else {}
    made.append(rec.use(step, str(outside), **extra))
    rec.finish_step(step)
    rec.flush() if isinstance(rec, BatchRecorder) else None
    return [(a[0].replace(tag, ""), *a[1:]) for a in map(facts, made)]


@pytest.mark.parametrize("batch", [True, False])
def test_the_callers_stat_gives_the_same_records(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """Each kind of path, recorded with and without its lstat into two folders of one
    catalog: the same records (keys, hashes, sizes)."""
    made = []
    for given in (False, True):
        root = tmp_path / f"run-{given}" / "wf"
        tree(root, f"-{given}")
        kind = BatchRecorder if batch else Recorder
        made.append(record_all(kind("toy", root=root), root, given=given))
    assert made[0] == made[1]
    assert made[1][0][1] == sha(b"input bytes") == made[1][3][1] == made[1][4][1]
    assert made[1][2][5] == 1 and made[1][5][1] == sha(b"outside")  # a folder of one file


def test_a_symlinks_own_lstat_is_not_taken_for_its_target(
    instance: Instance, tmp_path: Path
) -> None:
    """A link's lstat (not a file, not a folder) given: the target is stat'ed, and queued as
    any file (taken as given, the link would not be a file: written at once, unbatched)."""
    tree(tmp_path / "wf")
    rec = BatchRecorder("toy", root=tmp_path / "wf", steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    used = rec.use(step, "link.txt", stat=os.lstat(tmp_path / "wf" / "link.txt"))
    assert used is not None and used.id is None  # queued
    rec.finish_step(step)
    rec.flush()
    assert facts(used)[1:4] == (sha(b"input bytes"), "sha256", len(b"input bytes"))


@pytest.mark.parametrize("batch", [True, False])
def test_a_file_replaced_after_the_stat_is_hashed_as_read(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """The stat is taken, then the file is replaced (another inode, the same size and mtime)
    or rewritten in place: the record holds the bytes there when it is read."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"AAAA")
    stale = os.lstat(path)
    other = tmp_path / "other.txt"
    other.write_bytes(b"BBBB")
    os.utime(other, ns=(stale.st_atime_ns, stale.st_mtime_ns))
    os.replace(other, path)
    rec = (BatchRecorder if batch else Recorder)("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    replaced = rec.produce(step, "f.txt", stat=stale)
    second = tmp_path / "g.txt"
    second.write_bytes(b"short")
    earlier = os.lstat(second)
    second.write_bytes(b"rewritten, longer")
    rewritten = rec.use(step, "g.txt", stat=earlier)
    rec.finish_step(step)
    rec.flush() if isinstance(rec, BatchRecorder) else None
    assert facts(replaced)[1] == sha(b"BBBB")
    assert facts(rewritten)[1:4] == (sha(b"rewritten, longer"), "sha256", 17)


def test_another_files_stat_is_not_taken_for_its_bytes(instance: Instance, tmp_path: Path) -> None:
    """A stat of another file (a caller's mistake) given: the bytes read are hashed (its
    size and inode are not this file's: read again)."""
    (tmp_path / "a.txt").write_bytes(b"aaa")
    (tmp_path / "b.txt").write_bytes(b"bbbbbb")
    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    b = rec.use(step, "b.txt", stat=os.lstat(tmp_path / "a.txt"))
    rec.finish_step(step)
    rec.flush()
    assert facts(b)[1:4] == (sha(b"bbbbbb"), "sha256", 6)


@pytest.mark.parametrize("batch", [True, False])
def test_a_file_gone_since_the_stat_is_recorded_as_without_it(
    instance: Instance, tmp_path: Path, batch: bool
) -> None:
    """The stat is taken, the file deleted: its use is a reference by location (hash
    unknown), its production nothing, as without the stat."""
    path = tmp_path / "gone.txt"
    path.write_bytes(b"soon gone")
    st = os.lstat(path)
    path.unlink()
    rec = (BatchRecorder if batch else Recorder)("toy", root=tmp_path)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    assert rec.produce(step, "gone.txt", stat=st) is None
    used = rec.use(step, "gone.txt", stat=st)
    rec.finish_step(step)
    rec.flush() if isinstance(rec, BatchRecorder) else None
    assert used is not None
    record = ll.Artifact.get(id=used.id)
    assert record.hash is None and not record.available


def test_outputs_given_as_file_records_take_their_stat(instance: Instance, tmp_path: Path) -> None:
    """`finish_step(outputs=[FileRecord(stat=)])` and `save_files`: the same records."""
    (tmp_path / "o.txt").write_bytes(b"out")
    (tmp_path / "s.txt").write_bytes(b"saved")
    batch = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = batch.start_workflow(key="p", engine_run_id="r")
    step = batch.start_step(wf, key="a", kind="rule", engine_task_id="1")
    batch.finish_step(step, outputs=[FileRecord("o.txt", stat=os.lstat(tmp_path / "o.txt"))])
    batch.flush()
    plain = Recorder("toy", root=tmp_path)
    pwf = plain.start_workflow(key="q", engine_run_id="s")
    pstep = plain.start_step(pwf, key="b", kind="rule", engine_task_id="1")
    (saved,) = plain.save_files(
        [FileRecord("s.txt", producer=pstep, stat=os.lstat(tmp_path / "s.txt"))]
    )
    assert facts(saved)[1] == sha(b"saved")
    (out,) = ll.Run.get(id=step.run.id).outputs.all()
    assert (out.key, out.hash) == ("o.txt", sha(b"out"))


def test_a_file_renamed_over_while_it_is_hashed_is_read_again(
    instance: Instance, tmp_path: Path
) -> None:
    """Another file renamed over the path while it is read (an atomic rewrite): the state
    after the read is the path's (`os.stat`), not the descriptor's (`os.fstat` would show
    the old inode unchanged), so the record holds the bytes the path holds after it."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"old bytes")
    newer = tmp_path / "newer.txt"
    newer.write_bytes(b"new bytes, renamed over")
    replaced: list[int] = []

    def rename_over() -> None:
        if not replaced:
            replaced.append(1)
            os.replace(newer, path)

    rec = BatchRecorder("toy", root=tmp_path, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    with checkpoints.at("source.read", rename_over):
        made = rec.produce(step, "f.txt", stat=os.lstat(path))
    rec.finish_step(step)
    rec.flush()
    assert replaced == [1]
    assert facts(made)[1:4] == (sha(b"new bytes, renamed over"), "sha256", 23)


UNREADABLE = r"""
import os, sys
from pathlib import Path
import lakeline as ll
from lakeline.errors import PathNotFound
from lakeline.lineage.recorder import BatchRecorder, Recorder

work = Path(sys.argv[1])
ll.init(storage=work / "store", name="t")
secret = work.parent / "wf" / "secret.txt"
for kind in (Recorder, BatchRecorder):
    rec = kind("toy", root=secret.parent)
    wf = rec.start_workflow(key="p", engine_run_id=kind.__name__)
    step = rec.start_step(wf, key="a", kind="rule", engine_task_id="1")
    for given in (None, os.lstat(secret)):
        try:
            rec.produce(step, "secret.txt", stat=given)
            print(kind.__name__, "read it")
        except PathNotFound as exc:
            print(kind.__name__, exc)
    rec.finish_step(step)
    rec.flush() if isinstance(rec, BatchRecorder) else None
print("records", ll.Artifact.filter().count())
"""


def test_an_unreadable_file_gives_the_same_error_batched_or_not() -> None:
    """A file lakeline may not read, really (a child process as `nobody` when the tests run
    as root, whom no mode stops): the plain Recorder checks (os.access), the BatchRecorder
    reads it at once and turns its failed open into the same error; nothing is recorded."""
    import shutil
    import subprocess
    import sys
    import tempfile

    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: no user whom a mode stops")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    base = Path(tempfile.mkdtemp(prefix="lakeline-unreadable-"))
    try:
        base.chmod(0o755)
        (base / "wf").mkdir(mode=0o755)
        secret = base / "wf" / "secret.txt"
        secret.write_bytes(b"secret")
        secret.chmod(0)
        work = base / "work"
        work.mkdir()
        if prefix:
            os.chown(work, 65534, 65534)
        elif os.access(secret, os.R_OK):
            pytest.skip("running with privileges that read any file")
        env = {**os.environ, "LAKELINE_HOME": str(work / "home"), "HOME": str(work)}
        for name in ("LAKELINE_CACHE_DIR", "LAKELINE_INSTANCE"):
            env.pop(name, None)
        done = subprocess.run(
            [*prefix, sys.executable, "-c", UNREADABLE, str(work)],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        message = f"{secret.resolve()} cannot be read: check its permissions"
        assert done.stdout.splitlines() == [
            f"Recorder {message}",
            f"Recorder {message}",
            f"BatchRecorder {message}",
            f"BatchRecorder {message}",
            "records 0",
        ]
    finally:
        secret.chmod(0o644)
        shutil.rmtree(base, ignore_errors=True)
