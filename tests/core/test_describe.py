"""`artifact.describe()` and `lakeline describe KEY`: the artifact as a tree with its run,
feature values, labels and schemas."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.errors import AnnotationError
from lakeline.instance import Instance


def _annotated(tmp_path: Path) -> ll.Artifact:
    cell_type = ll.ULabel(name="CellType", is_type=True).save()
    ll.save([ll.ULabel(name="T cell", type=cell_type), ll.ULabel(name="reviewed")])
    temperature, cells = ll.save(
        [
            ll.Feature(name="temperature", dtype=float, unit="°C"),
            ll.Feature(name="cell_type", dtype="cat[ULabel[CellType]]"),
        ]
    )
    schema = ll.Schema([temperature, cells], name="sc-obs", otype="DataFrame").save()

    @ll.tracked(key="make_obs")
    def make() -> ll.Artifact:
        path = tmp_path / "obs.csv"
        path.write_text("a\n1\n")
        return ll.Artifact(path, key="sc/obs.csv").save()

    artifact = make()
    artifact.features.add_values({"temperature": 37.5, "cell_type": "T cell"})
    artifact.labels.add(ll.ULabel.get(name="reviewed"))
    artifact.features.add_schema(schema, slot="obs")
    return artifact


def test_describe_cli_and_api(
    instance: Instance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = _annotated(tmp_path)
    run = ll.Run.get(transform__key="make_obs")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["describe", "sc/obs.csv"])
    assert result.exit_code == 0, result.output
    lines = [line.strip("│├└─ ") for line in result.output.splitlines()]
    assert lines[0] == "Artifact sc/obs.csv"
    assert f"uid {artifact.uid}" in lines and "version 1" in lines
    assert f"run {run.uid} (completed) of function make_obs" in lines
    assert "temperature (float, °C) 37.5" in lines
    assert "cell_type (cat[ULabel[CellType]]) T cell" in lines
    assert "reviewed" in lines
    assert "obs sc-obs (DataFrame, 2 features)" in lines
    assert any(line.startswith("storage ") for line in lines)
    artifact.describe()
    assert "temperature (float, °C) 37.5" in capsys.readouterr().out
    missing = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["describe", "sc/none.csv"])
    assert missing.exit_code == 1 and "sc/none.csv" in missing.output


def test_add_schema_needs_a_saved_schema(instance: Instance, tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("x")
    artifact = ll.Artifact(path, key="x.txt").save()
    with pytest.raises(AnnotationError, match=r"add_schema takes a saved Schema"):
        artifact.features.add_schema(ll.Schema([], name="empty"))
    with pytest.raises(AnnotationError, match=r"save the artifact before describing it"):
        ll.Artifact(path, key="y.txt").describe()


def test_annotations_added_in_a_run_name_it(instance: Instance, tmp_path: Path) -> None:
    """Values and labels added inside a tracked run record it: describe() names the run next
    to them and `run.annotated` lists the artifacts it annotated."""
    artifact = _annotated(tmp_path)  # annotated outside any run
    other = ll.Artifact(_file(tmp_path), key="sc/other.csv").save()

    @ll.tracked(key="curate")
    def curate() -> None:
        artifact.features.add_values({"temperature": 36.0})
        artifact.labels.add(ll.ULabel.get(name="T cell"))
        ll.ULabel(name="curated").save()
        other.labels.add(ll.ULabel.get(name="curated"))

    curate()
    run = ll.Run.get(transform__key="curate")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["describe", "sc/obs.csv"])
    lines = [line.strip("│├└─ ") for line in result.output.splitlines()]
    assert f"temperature (float, °C) 36.0 (run {run.uid})" in lines
    assert f"T cell (CellType) (run {run.uid})" in lines
    assert "cell_type (cat[ULabel[CellType]]) T cell" in lines  # added outside a run
    assert "reviewed" in lines
    assert sorted(a.key for a in run.annotated) == ["sc/obs.csv", "sc/other.csv"]
    assert ll.ULabel.get(name="curated").run_id == run.id  # the record, too
    assert ll.Run.get(transform__key="make_obs").annotated.count() == 0


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "other.csv"
    path.write_text("b\n2\n")
    return path
