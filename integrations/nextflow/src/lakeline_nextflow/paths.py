"""Where files are now: paths Nextflow wrote, mapped onto a launch dir that may have moved."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lakeline_nextflow.model import FileRef
from lakeline_nextflow.values import split_workdir, strip_uri

REMOTE = ("s3://", "gs://", "az://", "http://", "https://", "ftp://")


@dataclass
class Locator:
    """Maps original paths (as Nextflow wrote them) to local ones.

    `work_root`: the local work dir, when it exists; `original_work` / `original_launch`: where
    they were when Nextflow ran (from the log); task outputs are found by hash under the local
    work dir wherever the original one was.
    """

    launch_dir: Path
    work_root: Path | None = None
    original_work: set[str] = field(default_factory=set)
    original_launch: set[str] = field(default_factory=set)

    def task_dir(self, full_hash: str) -> Path | None:
        """The local work dir of a task (whether or not it still exists)."""
        if self.work_root is None:
            return None
        return self.work_root / full_hash[:2] / full_hash[2:]

    def local(self, original: str) -> str:
        """The local path of an original one (unchanged when it cannot be mapped)."""
        path = strip_uri(original)
        if path.startswith(REMOTE):
            return path
        parts = split_workdir(path)
        if parts is not None and self.work_root is not None:
            root, digest, rest = parts
            if not Path(root).name.startswith("stage-"):
                target = self.work_root / digest[:2] / digest[2:]
                return str(target / rest) if rest else str(target)
            for known in sorted(self.original_work, key=len, reverse=True):
                if path.startswith(known.rstrip("/") + "/"):
                    return str(self.work_root / path[len(known.rstrip("/")) + 1 :])
        if os.path.lexists(path):
            return path
        for known in sorted(self.original_launch, key=len, reverse=True):
            prefix = known.rstrip("/") + "/"
            if path.startswith(prefix):
                moved = self.launch_dir / path[len(prefix) :]
                if moved.exists():
                    return str(moved)
        return path

    def ref(self, original: str, *, role: str = "", relative_to: str | None = None) -> FileRef:
        """A FileRef for an original path (relative paths resolved against `relative_to`)."""
        path = strip_uri(original)
        if relative_to is not None and not path.startswith("/") and "://" not in path:
            path = os.path.normpath(os.path.join(relative_to, path))
        producer = relpath = None
        parts = split_workdir(path)
        if parts is not None and not Path(parts[0]).name.startswith("stage-"):
            producer, relpath = parts[1], parts[2] or None
        return FileRef(
            path=self.local(path), original=path, producer=producer, relpath=relpath, role=role
        )

    def output(self, full_hash: str, relpath: str, original_root: str | None = None) -> FileRef:
        """A task output by hash and path in its work dir."""
        task = self.task_dir(full_hash)
        if task is not None:
            path = str(task / relpath)
        elif original_root is not None:
            path = f"{original_root.rstrip('/')}/{full_hash[:2]}/{full_hash[2:]}/{relpath}"
        else:
            path = str(self.launch_dir / "work" / full_hash[:2] / full_hash[2:] / relpath)
        return FileRef(path=path, original=path, producer=full_hash, relpath=relpath)


def find_work_root(
    launch_dir: Path, given: Path | None, originals: list[str], launch_originals: list[str]
) -> Path | None:
    """The local work dir: given, else as Nextflow saw it, else under the (moved) launch dir."""
    if given is not None:
        return given if given.is_dir() else None
    for original in reversed(originals):
        if Path(original).is_dir():
            return Path(original)
    for original in reversed(originals):
        for launch in launch_originals:
            prefix = launch.rstrip("/") + "/"
            if original.startswith(prefix) and (launch_dir / original[len(prefix) :]).is_dir():
                return launch_dir / original[len(prefix) :]
        if (launch_dir / Path(original).name).is_dir():
            return launch_dir / Path(original).name
    if (launch_dir / "work").is_dir():
        return launch_dir / "work"
    return None
