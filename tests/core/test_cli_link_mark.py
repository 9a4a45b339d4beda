"""The CLI shows an artifact's `through_link` (migration 0028): `ls --json` and `get --json`
as a field beside `in_place`, `get` as "(in place, through a link)"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakeline as ll
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder


def run(*args: str) -> str:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_ls_and_get_show_whether_a_record_was_made_through_a_link(
    instance: Instance, tmp_path: Path
) -> None:
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "raw.txt").write_text("raw bytes\n")
    (root / "out" / "link.txt").symlink_to("../data/raw.txt")
    (tmp_path / "copy.txt").write_text("copied\n")
    Recorder("toy", root=root)  # registers the folder: the saves stay in place
    ll.Artifact(root / "out" / "link.txt", key="out/link.txt").save()
    ll.Artifact(root / "data" / "raw.txt", key="kept/raw.txt").save()
    ll.Artifact(tmp_path / "copy.txt", key="copy.txt").save()

    listed = json_lines(run("ls", "--json"))
    assert [(r["key"], r["in_place"], r["through_link"]) for r in listed] == [
        ("copy.txt", False, False),
        ("kept/raw.txt", True, False),
        ("out/link.txt", True, True),
    ]
    (got,) = json_lines(run("get", "out/link.txt", "--json"))
    assert got["through_link"] is True and got["in_place"] is True
    assert "(in place, through a link)" in run("get", "out/link.txt")
    kept = run("get", "kept/raw.txt")
    assert "(in place)" in kept and "through a link" not in kept
