"""Public helpers for integrations: is a file written by a step, can a location be reached."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import location_exists, written_since


def test_written_since_tells_sources_from_outputs(tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_text("old bytes")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "inside.txt").write_text("old")
    time.sleep(0.1)  # more than the slack: the step starts strictly after these were written
    started = datetime.now(UTC)
    assert not written_since(source, started)  # only read (or returned) by the step
    assert not written_since(kept, started.timestamp())
    made = tmp_path / "made.txt"
    made.write_text("new")
    copied = tmp_path / "copied.txt"
    shutil.copy2(source, copied)  # keeps the source's mtime; its ctime is new
    assert os.stat(copied).st_mtime == os.stat(source).st_mtime
    (kept / "inside.txt").write_text("rewritten")
    assert written_since(made, started) and written_since(copied, started)
    assert written_since(kept, started)  # a file inside the folder changed
    assert written_since(tmp_path / "absent.txt", started)  # nothing tells otherwise
    assert written_since("s3://bucket/key", started)


def test_location_exists_says_when_it_cannot_tell(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here.txt").write_text("x")
    assert location_exists(tmp_path / "here.txt") is True
    assert location_exists(str(tmp_path / "nothere.txt")) is False
    assert location_exists("nosuchscheme://bucket/key") is None  # no filesystem for it
