"""Run real redun workflows in a folder of their own (local executor, files on disk)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from redun_project import Flow


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[Flow]:
    yield Flow(tmp_path / "proj")
