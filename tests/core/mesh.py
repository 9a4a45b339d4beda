"""Two instances in one process: the fixture the instance-mesh tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.instance import Instance


@pytest.fixture(
    params=[("sqlite", "postgres"), ("postgres", "sqlite")], ids=["sqlite+pg", "pg+sqlite"]
)
def two_instances(
    request: pytest.FixtureRequest, lakeline_home: Path, tmp_path: Path
) -> tuple[Instance, Instance]:
    """(lab, atlas): two writable instances of different databases, each with its own local
    storage; `lab` is the current (connected) one."""
    from lakeline.instance import init

    def make(db: str, name: str) -> Instance:
        url = None if db == "sqlite" else request.getfixturevalue("postgres_url")
        return init(storage=tmp_path / name, db=url, name=name)

    current_db, other_db = request.param
    atlas = make(other_db, "atlas")
    lab = make(current_db, "lab")  # init connects: lab is current
    return lab, atlas
