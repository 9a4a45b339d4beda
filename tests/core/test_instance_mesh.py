"""Several instances in one process: `ll.Instance(name)` and `Registry.using(name)` read
another instance without changing the current one; its records carry it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeline as ll
import mesh
import pytest
from click.testing import CliRunner
from lakeline.artifacts.save import save_artifacts
from lakeline.errors import InstanceNotFound, ReadOnlyInstance, SchemaOutOfDate
from lakeline.instance import Instance
from lakeline.lineage.context import run_context
from sqlalchemy import text

two_instances = mesh.two_instances


def _fill_atlas(atlas: Instance, tmp_path: Path) -> list[ll.Artifact]:
    """Two artifacts under sc/ (one in two versions) and one elsewhere, saved into atlas."""
    src = tmp_path / "src"
    src.mkdir()
    made = []
    for name, body in [
        ("pbmc.csv", "a,b\n1,2\n"),
        ("other.csv", "x\n1\n"),
        ("pbmc.csv", "a,b\n3,4\n"),
    ]:
        (src / name).write_text(body)
        key = "raw/other.csv" if name == "other.csv" else "sc/pbmc.csv"
        made += save_artifacts([ll.Artifact(src / name, key=key, description=key.upper())], atlas)
    (src / "tsne.txt").write_text("tsne")
    made += save_artifacts([ll.Artifact(src / "tsne.txt", key="sc/tsne.txt")], atlas)
    return made


def test_using_reads_another_instance_and_leaves_the_current_one(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    _lab, atlas = two_instances
    _fill_atlas(atlas, tmp_path)
    (tmp_path / "mine.txt").write_text("mine")
    ll.Artifact(tmp_path / "mine.txt", key="mine.txt").save()  # into lab, the current one

    hits = ll.Artifact.using("atlas").filter(key__startswith="sc/")
    assert sorted(hits.to_dataframe()["key"]) == ["sc/pbmc.csv", "sc/tsne.txt"]
    assert hits.count() == 2 and hits.instance.read_only
    art = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")
    assert art.instance.name == "atlas" and art.instance.read_only
    assert art.version_number == 2 and len(art.versions.all()) == 2
    assert [a.key for a in ll.Artifact.using("atlas").search("pbmc")] == ["sc/pbmc.csv"]
    # the current instance did not change
    assert [a.key for a in ll.Artifact.filter()] == ["mine.txt"]
    assert ll.Artifact.get(key="mine.txt").instance.name == "lab"

    # the bytes come from atlas's storage
    path = art.cache()
    assert Path(path).is_relative_to(tmp_path / "atlas") and Path(path).read_text() == "a,b\n3,4\n"
    assert art.load()["a"].tolist() == [3]
    assert (
        ll.Artifact.using(ll.Instance("atlas"))
        .get(key="sc/tsne.txt")
        .path.startswith(str(tmp_path / "atlas"))
    )


def test_writes_through_a_read_only_instance_are_refused(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    _lab, atlas = two_instances
    _fill_atlas(atlas, tmp_path)
    art = ll.Artifact.using("atlas").get(key="sc/tsne.txt")
    with pytest.raises(ReadOnlyInstance, match="instance 'atlas' is open read-only"):
        art.delete()
    with pytest.raises(ReadOnlyInstance):
        ll.Instance("atlas").register_storage(tmp_path / "elsewhere")
    label = ll.ULabel(name="T cell").save()  # a label of lab
    with pytest.raises(ll.errors.LakelineError):
        art.labels.add(label)
    # below the API, the database refuses writes on these connections too
    reader = ll.Instance("atlas")
    with pytest.raises(Exception, match=r"(?i)read.only|readonly"), reader.engine.begin() as conn:
        conn.execute(text("UPDATE artifacts SET description = 'x'"))
    again = ll.Artifact.using("atlas").get(key="sc/tsne.txt")
    assert again.description is None
    assert ll.Artifact.using("atlas").filter(is_latest=None).count() == 4
    assert len(atlas.storages()) == 1


def test_unknown_and_newer_instances_are_clear_errors(
    two_instances: tuple[Instance, Instance],
) -> None:
    _lab, atlas = two_instances
    with pytest.raises(InstanceNotFound, match=r"no instance named 'nope'.*atlas, lab"):
        ll.Artifact.using("nope")
    with atlas.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match=r"instance 'atlas'.*newer than this lakeline"):
        ll.Artifact.using("atlas")
    assert ll.Artifact.filter().count() == 0  # the current instance is untouched


def test_reading_another_instance_during_a_run_records_no_cross_edge(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    _lab, atlas = two_instances
    _fill_atlas(atlas, tmp_path)
    run = ll.track(key="analysis.py")
    try:
        art = ll.Artifact.using("atlas").get(key="sc/tsne.txt")
        with pytest.warns(UserWarning, match="of instance 'lab' is current"):
            art.cache()
        assert run.inputs.count() == 0
    finally:
        ll.finish()
    with run_context(run), pytest.warns(UserWarning, match="links cannot cross instances"):
        (tmp_path / "out.txt").write_text("out")
        saved = save_artifacts([ll.Artifact(tmp_path / "out.txt", key="out.txt")], atlas)[0]
    assert saved.run_id is None  # lab's run is not atlas's


def test_cli_lists_every_instance_and_the_current_one(
    two_instances: tuple[Instance, Instance],
) -> None:
    import json

    from lakeline.cli import cli

    lab, atlas = two_instances
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["instances", "--json"])
    assert result.exit_code == 0, result.output
    listed = {r["name"]: r for r in map(json.loads, result.output.splitlines())}
    assert {n: r["current"] for n, r in listed.items()} == {"atlas": False, "lab": True}
    assert listed["atlas"]["uid"] == atlas.uid and listed["lab"]["storage"] == lab.config.storage
    table = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["instances"]).output
    assert [line.split("│")[1].strip() for line in table.splitlines() if "lab" in line] == ["*"]


def test_records_of_an_instance_on_s3_read_their_bytes_with_its_options(
    lakeline_home: Path, tmp_path: Path, s3_server: Any, s3_bucket: str, postgres_url: str
) -> None:
    atlas = ll.init(
        storage=f"s3://{s3_bucket}/lake",
        db=postgres_url,
        name="atlas",
        storage_options=s3_server.storage_options,
    )
    (tmp_path / "pbmc.csv").write_text("a,b\n5,6\n")
    save_artifacts([ll.Artifact(tmp_path / "pbmc.csv", key="sc/pbmc.csv")], atlas)
    ll.init(storage=tmp_path / "lab", name="lab")  # local SQLite, no S3 options: current

    art = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")
    assert art.path.startswith(f"s3://{s3_bucket}/lake/")
    assert art.load()["a"].tolist() == [5]  # through atlas's storage options
    assert Path(art.cache()).read_text() == "a,b\n5,6\n"
    assert ll.Artifact.filter().count() == 0
