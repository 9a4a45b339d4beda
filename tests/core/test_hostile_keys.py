"""Keys that are not what they seem: Unicode forms, control characters, over-long segments."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.errors import InvalidKey
from lakeline.instance import Instance
from lakeline.models import Artifact
from sqlalchemy import update


def _file(tmp_path: Path, name: str = "x.txt", text: str = "x\n") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_nfc_and_nfd_forms_of_a_key_are_one_artifact(instance: Instance, tmp_path: Path) -> None:
    nfc = unicodedata.normalize("NFC", "café/x.txt")
    nfd = unicodedata.normalize("NFD", "café/x.txt")
    assert nfc != nfd
    first = ll.Artifact(_file(tmp_path), key=nfd).save()
    assert first.key == nfc
    again = ll.Artifact(_file(tmp_path), key=nfc).save()
    assert again.uid == first.uid and not again.created
    assert ll.Artifact.filter(key__startswith="caf").count() == 1
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["get", nfd, "--json"])
    assert result.exit_code == 0 and first.uid in result.output


@pytest.mark.parametrize(
    "key", ["raw/\x1b[31mred.txt", "raw/a\nb.txt", "raw/a\rb.txt", "raw/\x7f.txt", "a\u202eb.txt"]
)
def test_control_characters_in_keys_are_refused(
    instance: Instance, tmp_path: Path, key: str
) -> None:
    with pytest.raises(InvalidKey, match="control character"):
        ll.Artifact(_file(tmp_path), key=key)
    assert ll.Artifact.filter().count() == 0


def test_path_segments_over_255_bytes_are_refused(instance: Instance, tmp_path: Path) -> None:
    ok = "é" * 125 + ".txt"  # 250 + 4 bytes
    assert ll.Artifact(_file(tmp_path), key=f"raw/{ok}").save().key == f"raw/{ok}"
    with pytest.raises(InvalidKey, match="255 bytes"):
        ll.Artifact(_file(tmp_path), key="raw/" + "é" * 128 + ".txt")
    with pytest.raises(InvalidKey, match="255 bytes"):
        ll.Artifact(_file(tmp_path), key="d" * 256 + "/x.txt")


def test_cli_escapes_control_characters_stored_by_old_records(
    instance: Instance, tmp_path: Path
) -> None:
    saved = ll.Artifact(_file(tmp_path), key="raw/plain.txt", description="fine").save()
    with instance.sessions.write() as session:  # as an older lakeline let it be stored
        session.execute(
            update(Artifact)
            .where(Artifact.id == saved.id)
            .values(key="raw/\x1b[2J\x1b[31mred\nrow.txt", description="evil\x1b]0;title\x07")
        )
    runner = CliRunner(env={"COLUMNS": "200"})
    for args in (["ls"], ["ls", "--all-versions"], ["search", "evil"], ["get", saved.uid]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output, args
        assert "\\x1b[31mred\\nrow.txt" in result.output, result.output
    listed = runner.invoke(cli, ["ls"]).output
    assert len([line for line in listed.splitlines() if saved.uid in line]) == 1


def test_cli_escapes_control_characters_in_runs_and_transforms(instance: Instance) -> None:
    from lakeline.ids import new_stem, new_uid, versioned_uid
    from lakeline.models import Run, Transform

    with instance.sessions.write() as session:
        uid = versioned_uid(new_stem(), 0)
        transform = Transform(
            uid=uid, stem=uid[:12], key="rule\x1b[31m\nevil", kind="rule", is_latest=True
        )
        session.add(transform)
        session.flush()
        session.add(Run(uid=new_uid(), transform_id=transform.id, status="completed"))
    runner = CliRunner(env={"COLUMNS": "200"})
    for args in (["runs"], ["transforms"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output, args
        assert "rule\\x1b[31m\\nevil" in result.output, result.output
