"""Transfer: records of another instance saved into the current one keep their uid, point to
the bytes where they are, and name where they came from; on SQLite+PostgreSQL pairs."""

from __future__ import annotations

import os
from pathlib import Path

import lakeline as ll
import mesh
import pytest
from click.testing import CliRunner
from lakeline.artifacts.save import save_artifacts
from lakeline.errors import StorageError, TransferConflict
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder
from sqlalchemy import func, select, text

two_instances = mesh.two_instances


def _made_in_atlas(atlas: Instance, tmp_path: Path) -> Path:
    """A workflow of atlas (a Recorder bound to it) reads raw/reads.csv, writes sc/pbmc.csv."""
    root = tmp_path / "atlas" / "wf"
    (root / "raw").mkdir(parents=True)
    (root / "sc").mkdir()
    (root / "raw" / "reads.csv").write_text("read\nACGT\n")
    rec = Recorder("toy", root=root, instance=atlas)
    wf = rec.start_workflow(key="pipe", engine_run_id="r1", source_code="rules")
    step = rec.start_step(wf, key="count", kind="rule", engine_task_id="1", source_code="wc")
    rec.use(step, "raw/reads.csv")
    (root / "sc" / "pbmc.csv").write_text("a,b\n1,2\n")
    rec.produce(step, "sc/pbmc.csv")
    rec.finish_step(step, "completed", exit_code=0)
    rec.finish_workflow(wf, "completed")
    return root


def _counts(instance: Instance) -> dict[str, int]:
    with instance.engine.connect() as conn:
        return {
            table: int(conn.execute(select(func.count()).select_from(text(table))).scalar_one())
            for table in ("artifacts", "runs", "transforms", "storages", "users")
        }


def _objects(instance: Instance) -> list[Path]:
    folder = Path(instance.config.storage) / ".lakeline" / "objects"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_transfer_keeps_the_uid_and_leaves_the_bytes(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    lab, atlas = two_instances
    _made_in_atlas(atlas, tmp_path)
    art = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")
    uid, source_run = art.uid, art.run
    assert source_run is not None

    saved = art.save()  # lab is current: a transfer
    assert saved is art and art.instance is not atlas and art.instance.name == "lab"
    assert ll.Artifact.get(uid).key == "sc/pbmc.csv"
    assert art.load()["a"].tolist() == [1]  # read where atlas keeps it
    assert Path(art.path).is_relative_to(tmp_path / "atlas")
    assert _objects(lab) == []  # no byte copied
    assert str(tmp_path / "atlas" / "wf") in [s.root for s in lab.storages()]
    run = art.run
    assert run is not None and run.transform.key == "lakeline/transfer"
    assert run.params is not None and run.params["source_instance"] == "atlas"
    assert run.params["source_runs"] == [source_run.uid] and run.status == "completed"
    # rows written here are the transferring user's (a PostgreSQL target refuses rows in
    # another's name); the source's creators are named in the transfer run
    assert run.params["source_creators"] == [atlas.user.handle]
    assert art.created_by_id == lab.user.id
    copied = ll.Run.get(source_run.uid)  # the source run and its transforms, as provenance
    assert copied.transform.key == "count" and copied.transform.source_code == "wc"
    assert copied.parent is not None and copied.parent.transform.key == "pipe"

    before = _counts(lab)
    again = ll.Artifact.using("atlas").get(key="sc/pbmc.csv").save()
    assert again.uid == uid and _counts(lab) == before  # again: nothing changes
    art.delete()  # the transferred record goes, atlas's bytes stay
    assert (tmp_path / "atlas" / "wf" / "sc" / "pbmc.csv").exists()


def test_a_newer_version_becomes_the_new_version_here(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    _lab, atlas = two_instances
    root = _made_in_atlas(atlas, tmp_path)
    first = ll.Artifact.using("atlas").get(key="sc/pbmc.csv").save()
    (root / "sc" / "pbmc.csv").write_text("a,b\n3,4\n")
    newer = save_artifacts([ll.Artifact(root / "sc" / "pbmc.csv")], atlas)[0]
    assert newer.stem == first.stem and newer.uid != first.uid
    ll.Artifact.using("atlas").get(newer.uid).save()
    versions = ll.Artifact.filter(stem=first.stem).order_by("uid").all()
    assert [(v.uid, v.is_latest) for v in versions] == [(first.uid, False), (newer.uid, True)]
    assert ll.Artifact.get(key="sc/pbmc.csv").load()["a"].tolist() == [3]


def test_bulk_transfer_of_a_query(two_instances: tuple[Instance, Instance], tmp_path: Path) -> None:
    lab, atlas = two_instances
    _made_in_atlas(atlas, tmp_path)
    saved = ll.save(ll.Artifact.using("atlas").filter())
    assert sorted(a.key for a in saved) == ["raw/reads.csv", "sc/pbmc.csv"]
    assert {a.instance.name for a in saved} == {"lab"}
    assert ll.Artifact.filter().count() == 2 and _objects(lab) == []
    (tmp_path / "mine.txt").write_text("mine")
    mine = ll.Artifact(tmp_path / "mine.txt", key="mine.txt")
    with pytest.raises(ll.errors.LakelineError, match="in a call of their own"):
        ll.save([mine, ll.Artifact.using("atlas").get(key="raw/reads.csv")])


def test_bad_transfers_change_nothing(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    lab, atlas = two_instances
    root = _made_in_atlas(atlas, tmp_path)
    # a key this instance gives another artifact
    (tmp_path / "other.csv").write_text("x\n")
    ll.Artifact(tmp_path / "other.csv", key="sc/pbmc.csv").save()
    before = _counts(lab)
    with pytest.raises(TransferConflict, match=r"'sc/pbmc.csv'.*another artifact"):
        ll.Artifact.using("atlas").get(key="sc/pbmc.csv").save()
    assert _counts(lab) == before

    # the same uid with other content is never merged
    reads = ll.Artifact.using("atlas").get(key="raw/reads.csv").save()
    with lab.engine.begin() as conn:
        conn.execute(text("UPDATE artifacts SET hash = 'other' WHERE uid = :u"), {"u": reads.uid})
    before = _counts(lab)
    with pytest.raises(TransferConflict, match=r"other content.*never merged"):
        ll.Artifact.using("atlas").get(key="raw/reads.csv").save()
    assert _counts(lab) == before

    # bytes this machine cannot reach: an error, not a copy
    lost = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")
    os.replace(root / "sc" / "pbmc.csv", tmp_path / "moved.csv")
    with pytest.raises(StorageError, match=r"cannot read storage.*bytes are never copied"):
        ll.save([lost])
    assert _counts(lab) == before


def test_cli_transfer(two_instances: tuple[Instance, Instance], tmp_path: Path) -> None:
    from lakeline.cli import cli

    _lab, atlas = two_instances
    _made_in_atlas(atlas, tmp_path)
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(cli, ["transfer", "sc/pbmc.csv", "raw/reads.csv", "--from", "atlas"])
    assert result.exit_code == 0, result.output
    assert "transferred 2 artifact(s) from atlas into lab (0 already here)" in result.output
    again = runner.invoke(cli, ["transfer", "sc/pbmc.csv", "--from", "atlas"])
    assert "transferred 0 artifact(s) from atlas into lab (1 already here)" in again.output
    unknown = runner.invoke(cli, ["transfer", "sc/pbmc.csv", "--from", "nope"])
    assert unknown.exit_code == 1 and "no instance named 'nope'" in unknown.output
    missing = runner.invoke(cli, ["transfer", "no/such.csv", "--from", "atlas"])
    assert missing.exit_code == 2 and "has no artifact with key no/such.csv" in missing.output
    with atlas.engine.begin() as conn:  # a newer lakeline migrated atlas
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    from lakeline.instance import disconnect

    disconnect()  # forget the atlas opened above
    newer = runner.invoke(cli, ["transfer", "sc/pbmc.csv", "--from", "atlas"])
    assert newer.exit_code == 1 and "instance 'atlas'" in newer.output
    assert "newer than this lakeline" in newer.output


def test_feature_values_and_labels_come_along(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    from lakeline.annotations.records import save_records

    lab, atlas = two_instances
    _made_in_atlas(atlas, tmp_path)
    kind = save_records([ll.ULabel(name="CellType", is_type=True)], atlas)[0]
    assert isinstance(kind, ll.ULabel)
    t_cell, liver = save_records(
        [ll.ULabel(name="T cell", type=kind), ll.ULabel(name="liver")], atlas
    )
    save_records(
        [
            ll.Feature(name="cell_type", dtype="cat[ULabel[CellType]]"),
            ll.Feature(name="temperature", dtype=float),
        ],
        atlas,
    )
    from lakeline.annotations.values import FeatureManager, LabelManager

    source = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")  # annotated through writable atlas
    FeatureManager(source, atlas).add_values({"temperature": 37.5, "cell_type": "T cell"})
    LabelManager(source, atlas).add(liver)  # type: ignore[arg-type]
    assert isinstance(t_cell, ll.ULabel)

    art = ll.Artifact.using("atlas").get(key="sc/pbmc.csv").save()
    assert art.features.get_values() == {"temperature": 37.5, "cell_type": "T cell"}
    assert [label.name for label in art.labels.get()] == ["T cell", "liver"]
    assert ll.ULabel.get(name="T cell").type is not None  # its type came along

    # a feature of the same name with another dtype here: refused, nothing written
    (tmp_path / "x.txt").write_text("x")
    other = save_artifacts([ll.Artifact(tmp_path / "x.txt", key="x.txt")], atlas)[0]
    FeatureManager(other, atlas).add_values({"temperature": 1.0})
    with lab.engine.begin() as conn:
        conn.execute(text("UPDATE features SET dtype = 'int' WHERE name = 'temperature'"))
    before = _counts(lab)
    with pytest.raises(TransferConflict, match="feature 'temperature' is float"):
        ll.Artifact.using("atlas").get(key="x.txt").save()
    assert _counts(lab) == before
