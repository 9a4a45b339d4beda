"""`lakeline verify` and `lakeline gc`: bytes that do not match, bytes without a record."""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from faults import database_down, kill_at_random, rewrite_at, run_paused
from lakeline import checkpoints
from lakeline.cli import cli
from lakeline.errors import LakelineError
from lakeline.instance import Instance
from lakeline.storage.roots import join, strip_protocol
from sqlalchemy.exc import OperationalError


def run(*args: str, code: int = 0, input: str | None = None) -> Result:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), input=input)
    assert result.exit_code == code, (result.output, result.exception)
    return result


def objects(instance: Instance) -> list[str]:
    """Every file under the objects folder, partial copies included."""
    fs = instance.fs(instance.storage)
    base = strip_protocol(join(instance.storage.root, ".lakeline/objects"))
    fs.invalidate_cache(base)
    return sorted(fs.find(base)) if fs.exists(base) else []


def object_of(instance: Instance, artifact: ll.Artifact) -> str:
    return strip_protocol(join(instance.storage.root, artifact.store_key))


def test_verify_reports_every_mismatch(any_instance: Instance, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (tmp_path / "x.txt").write_text("x bytes")
    (tmp_path / "y.txt").write_text("y bytes")
    (tmp_path / "z.txt").write_text("z bytes")
    saved = ll.save(
        [
            ll.Artifact(folder, key="run"),
            ll.Artifact(tmp_path / "x.txt", key="x.txt"),
            ll.Artifact(tmp_path / "y.txt", key="y.txt"),
            ll.Artifact(tmp_path / "z.txt", key="z.txt"),
        ]
    )
    assert "4 artifacts" in run("verify", "--all").output
    fs = any_instance.fs(any_instance.storage)
    fs.pipe_file(object_of(any_instance, saved[1]), b"X bytes")  # same size, other bytes
    fs.rm(object_of(any_instance, saved[2]))
    out = run("verify", "--all", code=1).output
    assert f"artifact {saved[1].uid} (x.txt)" in out and "do not match" in out
    assert f"artifact {saved[2].uid} (y.txt) are missing" in out
    assert "z.txt" not in out.replace("verified", "")
    assert "2 with bytes that do not match" in out
    run("verify", "z.txt", "run")
    assert "x.txt" in run("verify", "x.txt", code=1).output
    assert "KEYs" in run("verify", code=2).output
    assert "no artifact with stored bytes has key nope" in run("verify", "nope", code=2).output


def test_gc_removes_objects_a_failed_save_left_when_its_database_went_away(
    any_instance: Instance, tmp_path: Path
) -> None:
    """The record phase fails because the database is gone: the save's cleanup cannot ask
    which bytes are referenced, so they stay. gc removes them once the database is back,
    and never a referenced object."""
    keep = tmp_path / "keep.txt"
    keep.write_text("kept")
    kept = ll.Artifact(keep, key="keep.txt").save()
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"f{i}.txt")
        paths[-1].write_text(f"orphan {i}")
    with ExitStack() as outage:  # the database goes down once the bytes are stored

        def go_down() -> None:
            outage.enter_context(database_down(any_instance))

        # (the raw OperationalError becomes a LakelineError with issue 12 item 9)
        with (
            checkpoints.at("save.stored", go_down),
            pytest.raises((OperationalError, LakelineError)),
        ):
            ll.save([ll.Artifact(p, key=f"f/{p.name}") for p in paths])
    assert ll.Artifact.filter(key__startswith="f/").count() == 0
    assert len(objects(any_instance)) == 6  # the five orphans stayed
    assert "nothing to remove" in run("gc").output  # younger than the grace period
    listed = run("gc", "--grace", "0", "--dry-run").output
    assert listed.count("unreferenced") == 5 and "would remove 5 items" in listed
    assert len(objects(any_instance)) == 6
    run("gc", "--grace", "0", input="n\n", code=1)  # asks first, like `lakeline delete`
    assert "removed 5 items" in run("gc", "--grace", "0", "--yes").output
    assert objects(any_instance) == [object_of(any_instance, kept)]
    assert Path(ll.Artifact.get(key="keep.txt").cache()).read_text() == "kept"
    run("verify", "--all")


def _save_paused_at(pause: object, point: str, path: str, key: str) -> None:
    import lakeline as ll
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at(point, pause.hold):  # type: ignore[attr-defined]
        ll.Artifact(path, key=key).save()


def test_gc_removes_partial_copies_of_a_killed_save_after_the_grace_period(
    any_instance: Instance, tmp_path: Path
) -> None:
    """Killed with its copy made, not yet placed: a .partial beside the objects (local
    storage) or in this machine's spool folder (object stores)."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    os.environ["LAKELINE_INSTANCE"] = any_instance.name
    process, pause = run_paused(_save_paused_at, "source.read", str(big), "big.bin")
    assert pause.reached()
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    spool = Path(os.environ["LAKELINE_CACHE_DIR"]) / "spool"
    left = objects(any_instance) + [str(p) for p in spool.glob("*")]
    assert len(left) == 1 and left[0].endswith(".partial")
    assert "nothing to remove" in run("gc").output
    out = run("gc", "--grace", "0", "--yes").output
    assert "partial" in out and "removed 1 items (3.1 MB)" in out
    assert objects(any_instance) == [] and list(spool.glob("*")) == []


def test_gc_during_a_concurrent_save_never_leaves_a_record_without_bytes(
    any_instance: Instance, tmp_path: Path
) -> None:
    """gc (no grace at all) runs while a save holds between storing its new object and
    writing its record: the object is unreferenced then and is removed; the save stores it
    again. Then the save commits between gc's listing and its removal: the object stays."""
    os.environ["LAKELINE_INSTANCE"] = any_instance.name
    first = tmp_path / "first.txt"
    first.write_text("first")
    process, pause = run_paused(_save_paused_at, "save.stored", str(first), "first.txt")
    try:
        assert pause.reached()
        assert "removed 1 items" in run("gc", "--grace", "0", "--yes").output
    finally:
        pause.release()
        process.join(120)
    assert process.exitcode == 0
    saved = ll.Artifact.get(key="first.txt")
    assert Path(saved.cache()).read_text() == "first"

    second = tmp_path / "second.txt"
    second.write_text("second")
    process, pause = run_paused(_save_paused_at, "save.stored", str(second), "second.txt")
    assert pause.reached()

    def let_the_save_commit() -> None:
        pause.release()
        process.join(120)

    with checkpoints.at("gc.listed", let_the_save_commit):
        out = run("gc", "--grace", "0", "--yes").output
    assert process.exitcode == 0
    assert "removed 0 items" in out and "1 kept" in out
    assert Path(ll.Artifact.get(key="second.txt").cache()).read_text() == "second"
    run("verify", "--all")


def test_a_file_that_changed_mid_save_leaves_nothing_for_gc(
    instance: Instance, tmp_path: Path
) -> None:
    path = tmp_path / "x.log"
    path.write_text("x")
    with rewrite_at("source.read", path, b"y", times=99), pytest.raises(LakelineError):
        ll.Artifact(path, key="x.log").save()
    assert objects(instance) == []
    assert "nothing to remove" in run("gc", "--grace", "0").output


def test_a_save_that_turns_out_to_be_an_in_place_record_leaves_no_object(
    any_instance: Instance, tmp_path: Path
) -> None:
    """The same key and bytes as a file registered in place: the save is that record, so
    the copy it stored is nobody's and goes at once (it used to stay for gc)."""
    fs = any_instance.fs(any_instance.storage)
    fs.makedirs(strip_protocol(join(any_instance.storage.root, "raw")), exist_ok=True)
    fs.pipe_file(strip_protocol(join(any_instance.storage.root, "raw/r.txt")), b"reads")
    in_place = ll.Artifact(join(any_instance.storage.root, "raw/r.txt")).save()
    assert in_place.in_place and in_place.key == "raw/r.txt"
    copy = tmp_path / "r.txt"
    copy.write_bytes(b"reads")
    again = ll.Artifact(copy, key="raw/r.txt").save()
    assert again.uid == in_place.uid and not again.created
    assert objects(any_instance) == []


def _bulk_save(started: Any, folder: str, n: int) -> None:
    import lakeline as ll

    ll.connect()
    started.set()
    paths = sorted(Path(folder).iterdir())
    for start in range(0, len(paths), n):  # batches, as a pipeline saves its outputs
        ll.save([ll.Artifact(p, key=f"bulk/{p.name}") for p in paths[start : start + n]])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_during_bulk_saves_then_gc_leaves_every_record_with_its_bytes_and_nothing_else(
    instance: Instance, tmp_path: Path, seed: int
) -> None:
    """kill -9 at a random point of a run of bulk saves (big and small files); whatever it
    left, gc removes, and afterwards every object is referenced and every record verifies."""
    folder = tmp_path / "out"
    folder.mkdir()
    for i in range(80):
        (folder / f"{i:02d}.bin").write_bytes(os.urandom((4 << 20) if i % 4 == 0 else 100))
    os.environ["LAKELINE_INSTANCE"] = instance.name
    kill_at_random(_bulk_save, (str(folder), 8), seed=seed, within=1.0)
    run("gc", "--grace", "0", "--yes")
    records = ll.Artifact.filter(key__startswith="bulk/").all()
    assert sorted(objects(instance)) == sorted(object_of(instance, a) for a in records)
    run("verify", "--all")


def test_gc_grace_is_per_object_and_a_referenced_object_is_never_removed_however_old(
    instance: Instance, tmp_path: Path
) -> None:
    """With the default grace (1h): an orphan two hours old goes, a fresh orphan stays, and a
    referenced object two hours old stays."""
    (tmp_path / "keep.txt").write_text("kept")
    kept = ll.Artifact(tmp_path / "keep.txt", key="keep.txt").save()
    base = Path(instance.storage.root) / ".lakeline" / "objects"
    old_orphan, young_orphan = base / "aa" / "old-orphan", base / "bb" / "young-orphan"
    for orphan in (old_orphan, young_orphan):
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"left by a killed save")
    two_hours_ago = time.time() - 2 * 3600
    for path in (old_orphan, Path(object_of(instance, kept))):
        os.utime(path, (two_hours_ago, two_hours_ago))
    listed = run("gc", "--dry-run").output
    assert "would remove 1 items" in listed and "old-orphan" in listed
    assert "young-orphan" not in listed and kept.store_key not in listed
    assert "removed 1 items" in run("gc", "--yes").output
    assert objects(instance) == sorted([object_of(instance, kept), str(young_orphan)])
    assert Path(ll.Artifact.get(key="keep.txt").cache()).read_text() == "kept"
    assert "removed 1 items" in run("gc", "--grace", "0", "--yes").output  # the young one
    assert objects(instance) == [object_of(instance, kept)]
