"""Artifacts by reference: data lakeline knows of (a URL, maybe a hash) but holds no bytes for."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.artifacts.save import Plan, save_artifacts
from lakeline.errors import ArtifactUnavailable, InvalidKey, InvalidReference, StorageError
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder
from lakeline.lineage.usage import insert_input
from lakeline.models import Artifact, RunInput, Storage
from sqlalchemy import func, select
from sqlalchemy.orm import Session


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def counts(instance: Instance) -> tuple[int, int, int]:
    with instance.sessions.read() as s:
        return (
            s.scalar(select(func.count()).select_from(Artifact)) or 0,
            s.scalar(select(func.count()).select_from(Storage)) or 0,
            s.scalar(select(func.count()).select_from(RunInput)) or 0,
        )


def test_reference_records_without_reading(instance: Instance, tmp_path: Path) -> None:
    gone = tmp_path / "work" / "ab" / "cdef" / "out.bam"  # never existed
    described = ll.Artifact.reference(gone, hash="f" * 64, hash_type="sha256", size=12)
    assert described.id is None and described.available is False  # nothing saved yet
    assert counts(instance)[0] == 0
    ref = described.save()
    assert ref is described and ref.created and ref.id is not None
    assert (ref.available, ref.in_place, ref.size, ref.suffix) == (False, True, 12, ".bam")
    assert (ref.hash, ref.hash_type, ref.key, ref.n_files) == ("f" * 64, "sha256", None, None)
    assert ref.location == str(gone) and not gone.exists()
    storage = ref.storage
    assert (storage.root, storage.type, ref.store_key) == ("/", "reference", str(gone)[1:])
    with pytest.raises(StorageError, match="only records references"):
        instance.fs(storage)
    # a local file saved afterwards is still uploaded, not registered "in place" under `/`
    src = tmp_path / "other.txt"
    src.write_text("x")
    saved = ll.Artifact(src).save()
    assert not saved.in_place and saved.storage_id == instance.storage.id


@pytest.mark.parametrize(
    ("location", "root", "store_key", "suffix"),
    [
        ("postgres://warehouse/public/words", "postgres://", "warehouse/public/words", ""),
        ("lid://5e5d3f/results/out.txt", "lid://", "5e5d3f/results/out.txt", ".txt"),
        ("SNOWFLAKE://acct/db/schema/t?role=x", "snowflake://", "acct/db/schema/t?role=x", ""),
        ("s3://bucket/raw/reads.fastq.gz/", "s3://", "bucket/raw/reads.fastq.gz", ".fastq.gz"),
        ("file:///srv/gone/a.csv", "/", "srv/gone/a.csv", ".csv"),
    ],
)
def test_reference_locations(
    instance: Instance, location: str, root: str, store_key: str, suffix: str
) -> None:
    ref = ll.Artifact.reference(location).save()
    assert (ref.storage.root, ref.storage.type) == (root, "reference")
    assert (ref.store_key, ref.suffix, ref.available) == (store_key, suffix, False)
    expected = f"{root}{store_key}"
    assert ref.location == expected
    assert ll.Artifact.get(ref.uid).location == expected
    # one reference storage per scheme, however many references it holds
    other = ll.Artifact.reference(f"{root}{store_key}-2").save()
    assert other.storage_id == ref.storage_id and other.uid != ref.uid


def test_reference_identity_and_versions(instance: Instance) -> None:
    url = "postgres://warehouse/public/words"
    first = ll.Artifact.reference(url, key="tables/words", description="the words").save()
    again = ll.Artifact.reference(url, key="tables/words").save()
    assert again.uid == first.uid and not again.created  # both without hash: same record
    hashed = ll.Artifact.reference(url, key="tables/words", hash="v1", hash_type="md5").save()
    assert hashed.stem == first.stem and hashed.uid.endswith("0001")  # a new version
    assert hashed.description == "the words"  # carried over, as for files
    same = ll.Artifact.reference(url, key="tables/words", hash="v1", hash_type="md5").save()
    assert same.uid == hashed.uid
    v3 = ll.Artifact.reference(url, key="tables/words", hash="v2", hash_type="md5").save()
    assert v3.uid.endswith("0002") and v3.is_latest
    assert [a.is_latest for a in v3.versions] == [False, False, True]
    assert ll.Artifact.reference(url, hash="v1", hash_type="md5").save().uid == hashed.uid
    keyless = ll.Artifact.reference("lid://abc/x.txt").save()
    assert ll.Artifact.reference("lid://abc/x.txt").save().uid == keyless.uid
    # the same hash at another location is another record (a reference is its location)
    elsewhere = ll.Artifact.reference("lid://def/x.txt").save()
    assert elsewhere.uid != keyless.uid
    assert ll.Artifact.filter(available=False).count() == 3  # latest versions only
    assert ll.Artifact.filter(available=False, is_latest=None).count() == 5
    assert ll.Artifact.filter(available=True).count() == 0


def test_reference_inside_a_storage_root(any_instance: Instance) -> None:
    root = any_instance.storage.root
    ref = ll.Artifact.reference(f"{root}/runs/7/table.csv", hash="ab", hash_type="md5").save()
    assert (ref.storage_id, ref.store_key) == (any_instance.storage.id, "runs/7/table.csv")
    assert ref.key == "runs/7/table.csv" and not ref.available  # key: its path in the root
    assert ref.location == f"{root}/runs/7/table.csv"
    for read in (ref.cache, ref.load, ref.open):
        with pytest.raises(ArtifactUnavailable, match=f"{ref.uid} .*runs/7/table.csv"):
            read()
    with pytest.raises(InvalidKey, match="internal folder"):
        ll.Artifact.reference(f"{root}/.lakeline/objects/x.csv").save()


def test_reading_a_reference_is_a_clear_error(instance: Instance) -> None:
    ref = ll.Artifact.reference("postgres://warehouse/public/words", key="words").save()
    for read in (ref.cache, ref.load, ref.open, lambda: ref.path):
        with pytest.raises(ArtifactUnavailable) as caught:
            read()
        message = str(caught.value)
        assert ref.uid in message and "(words)" in message
        assert "postgres://warehouse/public/words" in message
    assert counts(instance)[2] == 0  # a failed read records no used-by edge


def test_saving_the_bytes_makes_a_reference_available(instance: Instance, tmp_path: Path) -> None:
    src = tmp_path / "results" / "out.txt"
    ref = ll.Artifact.reference(src, hash=sha("hello"), hash_type="sha256").save()
    held = ll.Artifact.get(ref.uid)  # loaded while still a reference
    src.parent.mkdir()
    src.write_text("hello")
    saved = ll.Artifact(src).save()
    assert saved.uid == ref.uid and not saved.created
    assert (saved.available, saved.size, saved.hash) == (True, 5, sha("hello"))
    assert saved.storage_id == instance.storage.id and not saved.in_place
    assert Path(saved.cache()).read_text() == "hello"
    assert Path(held.cache()).read_text() == "hello"  # an object loaded before follows
    assert held.available
    assert ll.Artifact.filter(is_latest=None).count() == 1
    assert saved.location != str(src)  # the record now names where lakeline holds the bytes


def test_other_bytes_at_a_referenced_location_are_another_record(
    instance: Instance, tmp_path: Path
) -> None:
    src = tmp_path / "out.txt"
    ref = ll.Artifact.reference(src, hash=sha("expected"), hash_type="sha256").save()
    src.write_text("other")
    saved = ll.Artifact(src).save()
    assert saved.uid != ref.uid and saved.available
    assert not ll.Artifact.get(ref.uid).available
    md5 = ll.Artifact.reference(tmp_path / "m.txt", hash=sha("m"), hash_type="md5").save()
    (tmp_path / "m.txt").write_text("m")  # same digest text, other algorithm: not the same
    assert ll.Artifact(tmp_path / "m.txt").save().uid != md5.uid


def test_in_place_and_keyed_saves_fill_in_references(instance: Instance) -> None:
    root = Path(instance.storage.root)
    ref = ll.Artifact.reference(root / "runs" / "a.csv", key="tables/a.csv", hash=sha("a,b\n"),
                                hash_type="sha256").save()  # fmt: skip
    (root / "runs").mkdir()
    (root / "runs" / "a.csv").write_text("a,b\n")
    saved = ll.Artifact(root / "runs" / "a.csv").save()  # in place, no key: found by location
    assert saved.uid == ref.uid and saved.key == "tables/a.csv"
    assert saved.available and saved.in_place and saved.size == 4
    # under a key, a file with a reference's hash fills it in wherever it comes from
    keyed = ll.Artifact.reference("lid://9f/b.txt", key="b.txt", hash=sha("b"),
                                  hash_type="sha256").save()  # fmt: skip
    copy = root.parent / "b.txt"
    copy.write_text("b")
    filled = ll.Artifact(copy, key="b.txt").save()
    assert filled.uid == keyed.uid and filled.available and filled.load() == "b"
    assert ll.Artifact.filter(available=False).count() == 0
    # a reference saved where an available record with that hash is returns that record
    assert ll.Artifact.reference(root / "runs" / "a.csv", hash=sha("a,b\n"),
                                 hash_type="sha256").save().uid == ref.uid  # fmt: skip


def test_bulk_save_mixes_files_and_references_with_edges(
    instance: Instance, tmp_path: Path
) -> None:
    rec = Recorder("test")
    wf = rec.start_workflow(key="wf", engine_run_id="run-1")
    producer = rec.start_step(wf, key="make", kind="process", engine_task_id="1")
    consumer = rec.start_step(wf, key="use", kind="process", engine_task_id="2")
    files = []
    for i in range(20):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}")
        files.append(ll.Artifact(tmp_path / f"f{i}.txt", key=f"files/f{i}.txt"))
    refs = [
        ll.Artifact.reference(f"lid://{i:04x}/out{i}.txt", hash=f"h{i}", hash_type="md5",
                              run=producer.run)
        for i in range(20)
    ]  # fmt: skip
    batch = [a for pair in zip(files, refs, strict=True) for a in pair]
    edges: list[int] = []

    def link(session: Session, plans: Sequence[Plan]) -> None:
        assert [p.artifact for p in plans] == batch  # in the caller's order
        for plan in plans:
            assert plan.result is not None
            if insert_input(session, consumer.run.id, plan.result.id, "in"):
                edges.append(plan.result.id)

    saved = save_artifacts(batch, instance, also=link)
    assert len(edges) == 40 and all(a.id is not None for a in saved)
    assert [a.available for a in saved] == [True, False] * 20
    assert all(r.run_id == producer.run.id for r in refs)
    assert ll.Artifact.filter(run=producer.run).count() == 20
    again = [
        ll.Artifact.reference(f"lid://{i:04x}/out{i}.txt", hash=f"h{i}", hash_type="md5")
        for i in range(20)
    ]
    assert [a.uid for a in ll.save(again)] == [r.uid for r in refs]
    assert sum(1 for a in again if a.created) == 0
    with instance.sessions.read() as s:
        assert (
            s.scalar(select(func.count()).select_from(Storage).where(Storage.type == "reference"))
            == 1
        )


def test_delete_of_a_reference_never_touches_bytes(instance: Instance, tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    ref = ll.Artifact.reference(outside, key="precious.txt").save()
    inside = Path(instance.storage.root) / "kept.txt"
    inside.write_text("keep me too")
    ref_in = ll.Artifact.reference(inside, hash="h", hash_type="md5").save()
    ref.delete()
    ref_in.delete()
    assert outside.read_text() == "keep me" and inside.read_text() == "keep me too"
    assert ll.Artifact.filter(is_latest=None).count() == 0


BAD: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
    ("", {}, InvalidReference, "empty"),
    ("   ", {}, InvalidReference, "empty"),
    (" s3://b/x", {}, InvalidReference, "whitespace"),
    ("s3://", {}, InvalidReference, "names nothing"),
    ("s3:///", {}, InvalidReference, "names nothing"),
    ("3s://x/y", {}, InvalidReference, "URL scheme"),
    ("file://relative/x", {}, InvalidReference, "absolute path"),
    ("a\x00b", {}, InvalidReference, "NUL"),
    # a lone surrogate (os.fsdecode of a file name's undecodable byte): no database encodes it
    ("/data/caf\udce9.csv", {}, InvalidReference, "surrogate"),
    ("s3://b/caf\udce9", {}, InvalidReference, "surrogate"),
    ("file:///data/caf\udce9", {}, InvalidReference, "surrogate"),
    (42, {}, InvalidReference, "not int"),
    ("s3://b/x", {"hash": "abc"}, InvalidReference, "hash_type="),
    ("s3://b/x", {"hash_type": "md5"}, InvalidReference, "without a hash"),
    ("s3://b/x", {"hash": "", "hash_type": "md5"}, InvalidReference, "empty"),
    ("s3://b/x", {"hash": "a b", "hash_type": "md5"}, InvalidReference, "whitespace"),
    ("s3://b/x", {"hash": "a" * 129, "hash_type": "md5"}, InvalidReference, "limit is 128"),
    ("s3://b/x", {"size": -1}, InvalidReference, "non-negative"),
    ("s3://b/x", {"size": True}, InvalidReference, "non-negative"),
    ("s3://b/x", {"size": "12"}, InvalidReference, "non-negative"),
    ("s3://b/x.csv", {"key": "x.parquet"}, InvalidKey, "same suffix"),
    ("s3://b/x", {"key": "/abs"}, InvalidKey, "absolute"),
    ("s3://b/x", {"key": "a/../b"}, InvalidKey, "'..'"),
    ("s3://b/" + "x" * 2100, {}, InvalidReference, "limit is 2048"),
]


@pytest.mark.parametrize(("location", "kwargs", "error", "match"), BAD)
def test_bad_references_are_clear_errors(
    instance: Instance, location: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ll.Artifact.reference(location, **kwargs).save()
    assert counts(instance) == (0, 1, 0)  # nothing written, no reference storage either


def test_a_failing_batch_writes_nothing(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    root = instance.storage.root
    batch = [
        ll.Artifact(tmp_path / "a.txt", key="a.txt"),
        ll.Artifact.reference("postgres://db/t"),
        ll.Artifact.reference(f"{root}/.lakeline/x"),  # refused when planned
    ]
    with pytest.raises(InvalidKey):
        ll.save(batch)
    assert counts(instance) == (0, 1, 0)

    def fail(session: Session, plans: Sequence[Plan]) -> None:
        raise RuntimeError("boom after the records")

    with pytest.raises(RuntimeError, match="boom"):
        save_artifacts(
            [ll.Artifact(tmp_path / "a.txt", key="a.txt"), ll.Artifact.reference("lid://x/y")],
            instance,
            also=fail,
        )
    assert counts(instance) == (0, 1, 0)  # the reference storage went with the transaction
    ref = ll.Artifact.reference("lid://x/y").save()  # and a retry works
    assert ref.storage.root == "lid://"
    assert len(instance.storages()) == 2


def test_registering_a_reference_root_makes_it_a_real_storage(
    instance: Instance, tmp_path: Path
) -> None:
    ref = ll.Artifact.reference(tmp_path / "gone.txt").save()
    assert ref.storage.type == "reference"
    storage = instance.register_storage("/")
    assert storage.id == ref.storage_id and storage.type == "local"
    instance.fs(storage)  # a filesystem now
    assert ll.Artifact.get(ref.uid).location == str(tmp_path / "gone.txt")


def test_cli_shows_references(instance: Instance, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner
    from lakeline.cli import cli

    ref = ll.Artifact.reference("postgres://warehouse/public/words", key="tables/words").save()
    runner = CliRunner()
    listed = runner.invoke(cli, ["ls"])
    assert listed.exit_code == 0, listed.output
    assert "tables/words" in listed.output and "(reference)" in listed.output
    (row,) = [json.loads(line) for line in runner.invoke(cli, ["ls", "--json"]).output.splitlines()]
    assert (row["available"], row["path"]) == (False, None)
    assert row["location"] == "postgres://warehouse/public/words"
    shown = runner.invoke(cli, ["get", "tables/words"])
    assert shown.exit_code == 0, shown.output
    assert "reference to" in shown.output and "postgres://warehouse/public/words" in shown.output
    assert "lakeline holds no bytes" in shown.output
    (record,) = [
        json.loads(x)
        for x in runner.invoke(cli, ["get", ref.uid, "--json"]).output.split("\n")
        if x
    ]
    assert record["local_path"] is None and record["available"] is False
    copied = runner.invoke(cli, ["get", "tables/words", "-o", str(tmp_path / "out")])
    assert copied.exit_code == 1 and "is a reference to postgres://" in copied.output
    assert not (tmp_path / "out").exists()
    deleted = runner.invoke(cli, ["delete", "tables/words", "--yes"])
    assert deleted.exit_code == 0 and ll.Artifact.filter(is_latest=None).count() == 0
