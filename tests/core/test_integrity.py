"""The bytes and the hash: what is stored is what the record's hash says, on every path.

Faults come from `faults.py` (real files changing, real processes paused or killed, the
database really unreachable); every test runs on SQLite and PostgreSQL, most also on S3.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import lakeline as ll
import pytest
from faults import rewrite_at, run_paused
from lakeline.errors import IntegrityProblem, SourceChanged
from lakeline.instance import Instance
from lakeline.storage.roots import join, strip_protocol


def stored_bytes(instance: Instance, artifact: ll.Artifact) -> bytes:
    storage = instance.storage_by_id(artifact.storage_id)
    fs = instance.fs(storage)
    path = strip_protocol(join(storage.root, artifact.store_key))
    fs.invalidate_cache(path)
    data: bytes = fs.cat_file(path)
    return data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def objects_and_partials(instance: Instance) -> list[str]:
    fs = instance.fs(instance.storage)
    base = strip_protocol(join(instance.storage.root, ".lakeline/objects"))
    return sorted(fs.find(base)) if fs.exists(base) else []


# -- 1. a file that changes while it is saved -------------------------------------------------


def test_file_rewritten_after_hashing_is_stored_under_its_own_hash(
    any_instance: Instance, tmp_path: Path
) -> None:
    """The issue's reproduction: a save callback rewrites the file once it was hashed. The
    object must hold the bytes the record's hash names, and a later save of the original
    bytes under another key must not share an object holding other bytes."""
    log, other = tmp_path / "app.log", tmp_path / "other.txt"
    log.write_bytes(b"line 1\n")
    other.write_bytes(b"other")

    def rewrite(step: str, n: int) -> None:
        if step == "hash" and log.read_bytes() == b"line 1\n":
            log.write_bytes(b"line 1\nline 2 appended while saving\n")

    saved = ll.save(
        [ll.Artifact(log, key="logs/app.log"), ll.Artifact(other, key="other.txt")],
        progress=rewrite,
    )
    for artifact in saved:
        assert sha(stored_bytes(any_instance, artifact)) == artifact.hash
    original = tmp_path / "original.log"
    original.write_bytes(b"line 1\n")
    again = ll.Artifact(original, key="logs/original.log").save()
    assert stored_bytes(any_instance, again) == b"line 1\n"
    assert Path(again.cache()).read_bytes() == b"line 1\n"


def test_file_changed_during_copy_is_copied_again(any_instance: Instance, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"first state")
    with rewrite_at("source.read", path, b"second state") as rewrites:
        art = ll.Artifact(path, key="data.bin").save()
    assert rewrites == [1]
    assert stored_bytes(any_instance, art) == b"second state1" == path.read_bytes()
    assert art.hash == sha(b"second state1") and art.size == len(b"second state1")


def test_file_that_keeps_changing_is_refused_and_nothing_is_kept(
    any_instance: Instance, tmp_path: Path
) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"start")
    with (
        rewrite_at("source.read", path, b"still growing", times=99),
        pytest.raises(SourceChanged, match=re.escape(f"{path} changed while it was being saved")),
    ):
        ll.Artifact(path, key="growing.log").save()
    assert ll.Artifact.filter().count() == 0
    assert objects_and_partials(any_instance) == []


def test_in_place_file_changed_while_hashed_is_hashed_again_or_refused(
    instance: Instance,
) -> None:
    root = Path(instance.storage.root)
    path = root / "raw" / "reads.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"v1")
    with rewrite_at("source.read", path, b"v2-") as rewrites:
        art = ll.Artifact(path).save()
    assert rewrites == [1] and art.in_place
    assert art.hash == sha(b"v2-1") == sha(path.read_bytes())
    other = root / "raw" / "busy.txt"
    other.write_bytes(b"x")
    with (
        rewrite_at("source.read", other, b"y", times=99),
        pytest.raises(SourceChanged, match=r"busy\.txt changed"),
    ):
        ll.Artifact(other).save()
    assert ll.Artifact.filter(key="raw/busy.txt").count() == 0


def test_in_place_folder_changed_while_hashed_is_refused(instance: Instance) -> None:
    folder = Path(instance.storage.root) / "run1"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    (folder / "b.txt").write_bytes(b"b")
    with (
        rewrite_at("source.read", folder / "a.txt", b"A", times=99),
        pytest.raises(SourceChanged, match=r"a\.txt changed"),
    ):
        ll.Artifact(folder).save()
    with rewrite_at("source.read", folder / "b.txt", b"B"):
        art = ll.Artifact(folder).save()
    assert art.n_files == 2
    from lakeline.storage.hashing import hash_folder

    assert art.hash == hash_folder(instance.fs(instance.storage), str(folder)).hash


# -- 3. a delete racing a save of identical bytes ----------------------------------------------


def _save_held(pause: object, path: str, key: str) -> None:
    """In a child process: save `path`, held between storing its bytes and its records."""
    import lakeline as ll
    from lakeline import checkpoints

    ll.connect()
    with checkpoints.at("save.stored", pause.hold):  # type: ignore[attr-defined]
        ll.Artifact(path, key=key).save()


def test_delete_racing_a_save_of_the_same_bytes_leaves_no_record_without_bytes(
    any_instance: Instance, tmp_path: Path
) -> None:
    """A saved, then a save of the same bytes under another key stops after its upload
    phase (the bytes are shared: nothing uploaded); A is deleted meanwhile, removing the
    bytes no committed record references. The save must end with its bytes stored."""
    import os

    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes(b"identical bytes")
    second.write_bytes(b"identical bytes")
    os.environ["LAKELINE_INSTANCE"] = any_instance.name
    a = ll.Artifact(first, key="a.txt").save()
    process, pause = run_paused(_save_held, str(second), "b.txt")
    try:
        assert pause.reached()
        a.delete()
    finally:
        pause.release()
        process.join(120)
    assert process.exitcode == 0
    b = ll.Artifact.get(key="b.txt")
    assert b.store_key == a.store_key
    assert stored_bytes(any_instance, b) == b"identical bytes"
    assert Path(b.cache()).read_bytes() == b"identical bytes"


# -- 2. reads verify -----------------------------------------------------------------------------


def _object_path(instance: Instance, artifact: ll.Artifact) -> str:
    storage = instance.storage_by_id(artifact.storage_id)
    return strip_protocol(join(storage.root, artifact.store_key))


def _overwrite(instance: Instance, artifact: ll.Artifact, data: bytes) -> None:
    fs = instance.fs(instance.storage_by_id(artifact.storage_id))
    fs.pipe_file(_object_path(instance, artifact), data)


@pytest.mark.parametrize("same_size", [True, False])
def test_overwritten_object_is_not_read(
    any_instance: Instance, tmp_path: Path, same_size: bool
) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes(b"a,b\n1,2\n")
    art = ll.Artifact(path, key="table.csv").save()
    _overwrite(any_instance, art, b"a,b\n6,6\n" if same_size else b"a,b\n1,2\n3,4\n")
    for read in (art.cache, art.open, art.load):
        with pytest.raises(IntegrityProblem, match=f"artifact {art.uid} .*(changed|match)"):
            read()


def test_touched_object_with_the_same_bytes_is_read_and_its_tag_refreshed(
    instance: Instance, tmp_path: Path
) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"same bytes")
    art = ll.Artifact(path, key="x.txt").save()
    assert art.store_tag is not None and art.store_tag.startswith("m:")
    os.utime(_object_path(instance, art), ns=(1, 1))
    assert Path(art.cache()).read_bytes() == b"same bytes"
    assert ll.Artifact.get(art.uid).store_tag == "m:1"


def test_changed_hash_in_the_database_is_noticed(any_instance: Instance, tmp_path: Path) -> None:
    from lakeline.models import Artifact
    from sqlalchemy import update

    path = tmp_path / "x.txt"
    path.write_bytes(b"bytes")
    art = ll.Artifact(path, key="x.txt").save()
    with any_instance.sessions.write() as session:
        session.execute(update(Artifact).where(Artifact.id == art.id).values(hash="0" * 64))
    with pytest.raises(IntegrityProblem, match=r"recorded hash .* is not the one its object"):
        ll.Artifact.get(art.uid).cache()


def test_remote_open_checks_the_etag(s3_instance: Instance, tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"0123456789")
    art = ll.Artifact(path, key="x.bin").save()
    fs = s3_instance.fs(s3_instance.storage)
    fs.invalidate_cache()
    assert art.store_tag == f"e:{fs.info(_object_path(s3_instance, art))['ETag']}"
    with art.open() as handle:
        assert handle.read() == b"0123456789"
    _overwrite(s3_instance, art, b"9876543210")
    with pytest.raises(IntegrityProblem, match="do not match its recorded sha256"):
        art.open()


def test_tampered_cache_copy_is_downloaded_again(s3_instance: Instance, tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"original")
    art = ll.Artifact(path, key="x.bin").save()
    cached = Path(art.cache())
    cached.write_bytes(b"tampere!")  # same size, new mtime
    assert Path(art.cache()).read_bytes() == b"original"
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"aaa")
    (folder / "b.txt").write_bytes(b"bbb")
    run = ll.Artifact(folder, key="run").save()
    cached_run = Path(run.cache())
    (cached_run / "b.txt").write_bytes(b"BBB")
    assert (Path(run.cache()) / "b.txt").read_bytes() == b"bbb"


def test_a_refreshed_tag_does_not_block_editing_an_older_copy_of_the_record(
    instance: Instance, tmp_path: Path
) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"same bytes")
    ll.Artifact(path, key="x.txt").save()
    first, second = ll.Artifact.get(key="x.txt"), ll.Artifact.get(key="x.txt")
    os.utime(_object_path(instance, first), ns=(5, 5))
    first.cache()  # hashed, found right: the record's tag is refreshed
    second.description = "edited"
    ll.save([second])
    assert ll.Artifact.get(key="x.txt").description == "edited"
