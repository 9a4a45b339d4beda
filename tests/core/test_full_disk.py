"""A file system that fills up while bytes are stored: a clear error, nothing half-written."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import NotEnoughSpace
from lakeline.instance import init


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own (mounting needs root, as the suite runs in CI)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "many"])
def test_a_full_disk_while_storing_is_not_enough_space_and_leaves_nothing(
    db_url: str | None, lakeline_home: Path, small_disk: Path, tmp_path: Path, bulk: bool
) -> None:
    init(storage=small_disk / "data", db=db_url, name="small")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 << 20))  # more than the whole file system
    small = [tmp_path / f"s{i}.txt" for i in range(3)]
    for i, path in enumerate(small):
        path.write_text(f"fits {i}")
    with pytest.raises(NotEnoughSpace, match=r"no space left to store .*big\.bin in "):
        if bulk:
            ll.save([ll.Artifact(p, key=p.name) for p in [*small, big]])
        else:
            ll.Artifact(big, key="big.bin").save()
    assert ll.Artifact.filter().count() == 0
    assert list(small_disk.rglob("*.partial")) == []
    ll.save([ll.Artifact(p, key=p.name) for p in small])  # the catalog still works
    assert sorted(a.key for a in ll.Artifact.filter()) == ["s0.txt", "s1.txt", "s2.txt"]
    assert [a.load() for a in ll.Artifact.filter().order_by("key")] == [
        "fits 0",
        "fits 1",
        "fits 2",
    ]
