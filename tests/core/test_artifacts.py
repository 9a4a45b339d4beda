"""Saving, versioning, sharing, registering in place, caching and deleting artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import InvalidKey, PathNotFound, UnsupportedObject
from lakeline.instance import Instance
from lakeline.models import Artifact
from sqlalchemy import inspect


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_save_file_records_facts(any_instance: Instance, tmp_path: Path) -> None:
    src = write(tmp_path / "in" / "reads.csv", "a,b\n1,2\n")
    art = ll.Artifact(src, key="raw/reads.csv", description="run 7").save()
    assert art.id is not None and len(art.uid) == 16 and art.uid.endswith("0000")
    assert (art.key, art.suffix, art.size, art.description) == ("raw/reads.csv", ".csv", 8, "run 7")
    assert art.hash_type == "sha256" and len(art.hash or "") == 64
    assert art.is_latest and not art.in_place and art.n_files is None
    assert art.storage_id == any_instance.storage.id
    again = ll.Artifact.get(key="raw/reads.csv")
    assert again.uid == art.uid
    assert Path(art.cache()).read_text() == "a,b\n1,2\n"


def test_identical_content_same_key_returns_existing(instance: Instance, tmp_path: Path) -> None:
    src = write(tmp_path / "x.txt", "hello")
    first = ll.Artifact(src, key="docs/x.txt").save()
    second = ll.Artifact(src, key="docs/x.txt").save()
    assert second.uid == first.uid and second.id == first.id
    assert ll.Artifact.filter(key="docs/x.txt", is_latest=None).count() == 1


def test_new_content_same_key_is_a_new_version(any_instance: Instance, tmp_path: Path) -> None:
    src = tmp_path / "x.txt"
    v1 = ll.Artifact(write(src, "one"), key="docs/x.txt").save()
    v2 = ll.Artifact(write(src, "two"), key="docs/x.txt").save()
    v3 = ll.Artifact(write(src, "three"), key="docs/x.txt").save()
    assert v1.stem == v2.stem == v3.stem
    assert [v.uid[-4:] for v in v3.versions] == ["0000", "0001", "0002"]
    latest = ll.Artifact.get(key="docs/x.txt")
    assert latest.uid == v3.uid and latest.load() == "three"
    assert ll.Artifact.get(v1.uid).is_latest is False
    assert ll.Artifact.get(v1.stem).uid == v3.uid  # a stem names the latest version
    # the old version's bytes are still there
    assert Path(ll.Artifact.get(v1.uid).cache()).read_text() == "one"
    # saving old content again under the key returns that old version, not a duplicate
    again = ll.Artifact(write(src, "one"), key="docs/x.txt").save()
    assert again.uid == v1.uid
    assert ll.Artifact.filter(key="docs/x.txt", is_latest=None).count() == 3


def test_identical_content_other_key_is_its_own_artifact_sharing_bytes(
    any_instance: Instance, tmp_path: Path
) -> None:
    src = write(tmp_path / "x.txt", "same bytes")
    a = ll.Artifact(src, key="a/x.txt").save()
    b = ll.Artifact(src, key="b/x.txt").save()
    assert a.uid != b.uid and a.stem != b.stem
    assert a.hash == b.hash and a.store_key == b.store_key  # one stored object
    a.delete()
    assert Path(ll.Artifact.get(key="b/x.txt").cache()).read_text() == "same bytes"


def test_register_in_place_inside_storage_root(instance: Instance) -> None:
    root = Path(instance.storage.root)
    src = write(root / "runs" / "7" / "counts.tsv", "g\tn\nA\t1\n")
    art = ll.Artifact(src).save()
    assert art.in_place and art.key == "runs/7/counts.tsv" and art.store_key == "runs/7/counts.tsv"
    assert art.path == str(src)
    assert not list((root / ".lakeline" / "objects").glob("**/*.tsv"))  # nothing copied
    art.delete()
    assert src.exists()  # in-place bytes are never removed by lakeline


def test_folder_artifact(any_instance: Instance, tmp_path: Path) -> None:
    folder = tmp_path / "sample.zarr"
    write(folder / "a" / "1.bin", "x" * 10)
    write(folder / "b.txt", "yy")
    art = ll.Artifact(folder, key="arrays/sample.zarr").save()
    assert art.n_files == 2 and art.size == 12 and art.hash_type == "sha256-dir"
    cached = Path(art.cache())
    assert (cached / "a" / "1.bin").read_text() == "x" * 10
    same = ll.Artifact(folder, key="arrays/sample.zarr").save()
    assert same.uid == art.uid
    write(folder / "b.txt", "zz")
    assert ll.Artifact(folder, key="arrays/sample.zarr").save().uid.endswith("0001")


def test_delete_makes_previous_version_latest_and_removes_bytes(
    any_instance: Instance, tmp_path: Path
) -> None:
    src = tmp_path / "x.txt"
    v1 = ll.Artifact(write(src, "one"), key="x.txt").save()
    v2 = ll.Artifact(write(src, "two"), key="x.txt").save()
    location = v2.path
    fs = any_instance.fs(any_instance.storage)
    assert fs.exists(location)
    v2.delete()
    assert not fs.exists(location)
    assert ll.Artifact.get(key="x.txt").uid == v1.uid
    assert ll.Artifact.get(v1.uid).is_latest


def test_bulk_save_one_transaction(any_instance: Instance, tmp_path: Path) -> None:
    paths = [write(tmp_path / "bulk" / f"f{i}.txt", f"content {i}") for i in range(40)]
    seen: list[str] = []
    saved = ll.save(
        [ll.Artifact(p, key=f"bulk/{p.name}") for p in paths],
        progress=lambda stage, n: seen.append(stage),
    )
    assert len({a.uid for a in saved}) == 40
    assert ll.Artifact.filter(key__startswith="bulk/").count() == 40
    assert seen.count("hash") == 40 and seen.count("upload") == 40
    again = ll.save([ll.Artifact(p, key=f"bulk/{p.name}") for p in paths])
    assert [a.uid for a in again] == [a.uid for a in saved]


def test_bulk_save_returns_complete_records(instance: Instance, tmp_path: Path) -> None:
    """More files than one lookup chunk: each returned object is its own row (id, uid and
    every column), detached like a loaded record, and search finds them."""
    paths = [write(tmp_path / "many" / f"f{i}.txt", f"content {i}") for i in range(1100)]
    saved = ll.save(
        [ll.Artifact(p, key=f"many/{p.name}", description=f"zqxw {i}") for i, p in enumerate(paths)]
    )
    rows = {a.uid: a for a in ll.Artifact.filter(key__startswith="many/").all()}
    assert len(rows) == 1100
    columns = [c.key for c in Artifact.__table__.columns]
    for artifact in saved:
        assert inspect(artifact).detached and artifact.created
        row = rows[artifact.uid]
        assert {c: getattr(artifact, c) for c in columns} == {c: getattr(row, c) for c in columns}
    assert ll.Artifact.search("zqxw", limit=2000).count() == 1100


def test_bulk_save_keys_with_quotes_and_wildcards(instance: Instance, tmp_path: Path) -> None:
    """The batch lookups (rendered inline on PostgreSQL) match such keys exactly."""
    keys = ["it's/a.txt", "we%ird_/k$1:2.txt", "x/'); DROP TABLE artifacts; --.txt", 'é/名 q"d.txt']
    paths = [write(tmp_path / f"f{i}.txt", f"quoted {i}") for i in range(len(keys))]
    first = ll.save([ll.Artifact(p, key=k) for p, k in zip(paths, keys, strict=True)])
    again = ll.save([ll.Artifact(p, key=k) for p, k in zip(paths, keys, strict=True)])
    assert [a.uid for a in again] == [a.uid for a in first]
    assert not any(a.created for a in again)
    assert sorted(a.key or "" for a in ll.Artifact.filter().all()) == sorted(keys)


def test_bulk_same_key_twice_makes_two_versions(instance: Instance, tmp_path: Path) -> None:
    one, two = write(tmp_path / "1.txt", "1"), write(tmp_path / "2.txt", "2")
    first, second = ll.save([ll.Artifact(one, key="k.txt"), ll.Artifact(two, key="k.txt")])
    assert first.stem == second.stem and not ll.Artifact.get(first.uid).is_latest
    assert ll.Artifact.get(key="k.txt").uid == second.uid


def test_resave_updates_description(instance: Instance, tmp_path: Path) -> None:
    art = ll.Artifact(write(tmp_path / "x.txt", "x"), key="x.txt").save()
    art.description = "now described"
    art.save()
    assert ll.Artifact.get(key="x.txt").description == "now described"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("/abs/x.csv", "absolute"),
        ("s3://b/x.csv", "absolute"),
        ("a/../x.csv", "'..'"),
        ("a//x.csv", "empty"),
        (".lakeline/objects/x.csv", "internal"),
        ("x.txt", "suffix"),
        (" x.csv", "whitespace"),
    ],
)
def test_bad_keys_are_refused(instance: Instance, tmp_path: Path, key: str, message: str) -> None:
    src = write(tmp_path / "x.csv", "a\n")
    with pytest.raises(InvalidKey, match=message):
        ll.Artifact(src, key=key)
    assert ll.Artifact.filter().count() == 0


def test_missing_and_unreadable_paths(instance: Instance, tmp_path: Path) -> None:
    with pytest.raises(PathNotFound, match="does not exist"):
        ll.Artifact(tmp_path / "nope.csv", key="x.csv")
    secret = write(tmp_path / "secret.csv", "a\n")
    secret.chmod(0)
    try:
        if os.access(secret, os.R_OK):
            pytest.skip("running with privileges that read any file (root)")
        with pytest.raises(PathNotFound, match="cannot be read"):
            ll.Artifact(secret, key="secret.csv")
    finally:
        secret.chmod(0o644)


def test_unsupported_objects_and_types(instance: Instance) -> None:
    with pytest.raises(UnsupportedObject, match=r"cannot make an artifact from a builtins\.int"):
        ll.Artifact(42, key="x.bin")
    with pytest.raises(UnsupportedObject, match="format 'h5ad' cannot save"):
        ll.Artifact({"a": 1}, key="x.h5ad", format="h5ad")
    with pytest.raises(TypeError, match="takes Artifacts"):
        ll.save(["not an artifact"])  # type: ignore[list-item]


def test_empty_folder_is_refused(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ll.errors.LakelineError, match="empty"):
        ll.Artifact(tmp_path / "empty", key="empty").save()


def test_remote_cache_downloads_once_and_verifies(s3_instance: Instance, tmp_path: Path) -> None:
    from lakeline.errors import IntegrityProblem

    art = ll.Artifact(write(tmp_path / "x.txt", "remote bytes"), key="x.txt").save()
    fs = s3_instance.fs(s3_instance.storage)
    cached = Path(art.cache())
    assert cached.read_text() == "remote bytes" and str(cached).startswith(
        os.environ["LAKELINE_CACHE_DIR"]
    )
    fs.pipe_file(art.path.split("://", 1)[1], b"tampered!")
    assert Path(art.cache()).read_text() == "remote bytes"  # served from the verified cache
    cached.unlink()
    with pytest.raises(IntegrityProblem, match="do not match its recorded sha256 hash"):
        art.cache()
    assert not cached.exists()  # the bad download is not kept
    fs.rm(art.path.split("://", 1)[1])
    with pytest.raises(IntegrityProblem, match="missing"):
        art.cache()
