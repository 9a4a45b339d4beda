"""Records pickle (multiprocessing, Prefect, redun pass them to tasks): their column values
travel with the name and uid of their instance, which the unpickling process finds."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import lakeline as ll
import mesh
import pytest
from lakeline.errors import InstanceNotFound
from lakeline.instance import Instance, reopen
from sqlalchemy import inspect

two_instances = mesh.two_instances


def _columns(record: object) -> dict[str, object]:
    return {c.key: getattr(record, c.key) for c in inspect(type(record)).column_attrs}


def test_records_pickle_with_their_values_and_instance(instance: Instance, tmp_path: Path) -> None:
    source = tmp_path / "counts.txt"
    source.write_text("a 1\n")

    @ll.tracked(key="count")
    def count() -> ll.Artifact:
        return ll.Artifact(source, key="raw/counts.txt", description="counts").save()

    artifact = count()
    run = ll.Run.get(transform__key="count")
    label = ll.ULabel(name="liver").save()
    feature = ll.Feature(name="reads", dtype=int).save()
    collection = ll.Collection([artifact], key="all").save()
    records = [artifact, run, run.transform, label, feature, collection, instance.storage]
    for record, back in zip(records, pickle.loads(pickle.dumps(records)), strict=True):
        assert type(back) is type(record) and _columns(back) == _columns(record)
        assert inspect(back).detached and back.instance is instance
    back = pickle.loads(pickle.dumps(artifact))
    assert back.load() == "a 1\n" and back.run.uid == run.uid
    back.description = "edited after the trip"
    back.save()
    assert ll.Artifact.get(artifact.uid).description == "edited after the trip"
    unsaved = pickle.loads(pickle.dumps(ll.Artifact(source, key="raw/again.txt")))
    assert unsaved.save().hash == artifact.hash
    assert pickle.loads(pickle.dumps(instance)) is instance


def test_a_record_of_another_instance_reopens_it_read_only(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    lab, atlas = two_instances
    (tmp_path / "a.txt").write_text("atlas bytes")
    ll.connect("atlas")
    data = pickle.dumps(ll.Artifact(tmp_path / "a.txt", key="a.txt").save())
    ll.connect("lab")
    back = pickle.loads(data)
    assert back.instance.uid == atlas.uid and back.instance.read_only
    assert back.load() == "atlas bytes"
    back.description = "transferred"
    back.save()  # as any record of another instance: transferred into the current one
    assert ll.Artifact.get(back.uid).description == "transferred"
    assert ll.Artifact.using("atlas").get(back.uid).description is None
    with pytest.raises(
        InstanceNotFound, match=r"record of instance 'gone' \(uid x1\).*no instance"
    ):
        reopen("gone", "x1")
    with pytest.raises(InstanceNotFound, match=r"'atlas' is another instance \(uid "):
        reopen("atlas", lab.uid + "x")


def _in_worker(artifact: ll.Artifact) -> tuple[str, str, ll.Artifact]:
    """Runs in a spawned process that connected to nothing itself."""
    artifact.description = "seen by a worker"
    artifact.save()
    made = ll.Artifact({"upper": artifact.load().upper()}, key="worker/upper.json").save()
    return artifact.instance.uid, artifact.load(), made


def test_records_cross_spawned_processes(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("some text")
    artifact = ll.Artifact(tmp_path / "in.txt", key="in.txt").save()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        uid, text, made = pool.apply(_in_worker, (artifact,))
    assert (uid, text) == (instance.uid, "some text")
    assert ll.Artifact.get(artifact.uid).description == "seen by a worker"
    assert made.instance is instance and made.load() == {"upper": "SOME TEXT"}
    assert ll.Artifact.get(key="worker/upper.json").uid == made.uid
