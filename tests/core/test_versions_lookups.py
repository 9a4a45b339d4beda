"""One meaning of "version" (number or label) everywhere, and lookups that name their mistake."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.errors import DoesNotExist, InvalidValue, QueryError
from lakeline.instance import Instance


def _three_versions(tmp_path: Path) -> list[ll.Artifact]:
    saved = []
    for i, label in enumerate((None, "v2.0", None)):
        path = tmp_path / f"t{i}.csv"
        path.write_text(f"a\n{i}\n")
        saved.append(ll.Artifact(path, key="t.csv", version=label).save())
    return saved


def test_unknown_operator_is_named_with_the_valid_ones(instance: Instance) -> None:
    with pytest.raises(QueryError) as raised:
        ll.Artifact.filter(key__startwith="raw/")
    message = str(raised.value)
    assert "unknown operator 'startwith'" in message
    assert "startswith" in message and "icontains" in message
    assert "relation" not in message
    with pytest.raises(QueryError, match="unknown operator 'bogus'"):
        ll.Artifact.filter(run__transform__key__bogus="x")


def test_version_means_number_or_label_in_get_filter_and_cli(
    instance: Instance, tmp_path: Path
) -> None:
    v1, v2, v3 = _three_versions(tmp_path)
    # a number: the n-th version, as the CLI's --version N and `ls --all-versions` show it
    assert ll.Artifact.get(key="t.csv", version="1").uid == v1.uid
    assert ll.Artifact.get(key="t.csv", version=1).uid == v1.uid
    assert ll.Artifact.get(key="t.csv", version=3).uid == v3.uid
    # a label: the version labelled so (and its number finds it too)
    assert ll.Artifact.get(key="t.csv", version="v2.0").uid == v2.uid
    assert ll.Artifact.get(key="t.csv", version=2).uid == v2.uid
    assert {a.uid for a in ll.Artifact.filter(version__in=[1, "v2.0"])} == {v1.uid, v2.uid}
    with pytest.raises(DoesNotExist):
        ll.Artifact.get(key="t.csv", version=4)
    # the CLI agrees
    runner = CliRunner()
    for version, uid in (("1", v1.uid), ("v2.0", v2.uid), ("3", v3.uid)):
        result = runner.invoke(cli, ["get", "t.csv", "--version", version, "--json"])
        assert result.exit_code == 0, result.output
        assert uid in result.output
    # the data frame: `version` is the number (as in the CLI's JSON), the label beside it
    frame = ll.Artifact.filter(key="t.csv", is_latest=None).to_dataframe(
        ["key", "version", "version_label"]
    )
    assert frame.loc[[v1.uid, v2.uid, v3.uid], "version"].tolist() == [1, 2, 3]
    labels = frame.loc[[v1.uid, v2.uid, v3.uid], "version_label"].tolist()
    assert labels[1] == "v2.0" and labels[0] is None and labels[2] is None
    assert "version" in ll.Artifact.filter().to_dataframe().columns


def test_a_version_label_cannot_be_a_number(instance: Instance, tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("a\n1\n")
    with pytest.raises(InvalidValue, match="version label '7' is a number"):
        ll.Artifact(path, key="n.csv", version="7")
    with pytest.raises(InvalidValue, match="64"):
        ll.Artifact(path, key="n.csv", version="v" * 65)
