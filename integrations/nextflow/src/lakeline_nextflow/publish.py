"""Published copies (`publishDir`) found by content: nothing in a work dir names them.

A file or folder in a publish dir is a copy of a task output when it has the output's name
and the same content (or is a link to it, `mode: 'symlink'`, Nextflow's default).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lakeline_nextflow.model import FileRef, Report, TaskPlan, WorkflowPlan

Shape = tuple[object, ...]


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class _Content:
    """Cheap shapes (sizes, names) first; digests only when shapes agree."""

    def __init__(self) -> None:
        self.shapes: dict[Path, Shape] = {}
        self.digests: dict[Path, Shape] = {}

    def shape(self, path: Path) -> Shape:
        if path not in self.shapes:
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file())
                sizes = ((f.relative_to(path).as_posix(), f.stat().st_size) for f in files)
                self.shapes[path] = ("d", *sizes)
            else:
                self.shapes[path] = ("f", path.stat().st_size)
        return self.shapes[path]

    def digest(self, path: Path) -> Shape:
        if path not in self.digests:
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file())
                self.digests[path] = tuple(_file_digest(f) for f in files)
            else:
                self.digests[path] = (_file_digest(path),)
        return self.digests[path]

    def same(self, a: Path, b: Path) -> bool:
        return self.shape(a) == self.shape(b) and self.digest(a) == self.digest(b)


def match_published(
    plans: list[WorkflowPlan], dirs: list[Path], report: Report, exclude: set[str] | None = None
) -> int:
    """Link copies in `dirs` to the task outputs they came from; return how many were found.

    `exclude`: folders not to look in (the work dirs themselves).
    """
    skip = {os.path.realpath(p) for p in exclude or set()}
    index: dict[str, list[tuple[TaskPlan, FileRef]]] = {}
    resolved: dict[str, tuple[TaskPlan, FileRef]] = {}
    for plan in plans:
        for task in plan.tasks.values():
            for ref in task.outputs:
                path = Path(ref.path)
                if path.exists():
                    index.setdefault(path.name, []).append((task, ref))
                    resolved[os.path.realpath(path)] = (task, ref)
    known = {copy.path for p in plans for t in p.tasks.values() for _, copy in t.published}
    content = _Content()
    found = ambiguous = 0
    for folder in dirs:
        if not folder.is_dir():
            continue
        for current, subdirs, names in os.walk(folder):
            if os.path.realpath(current) in skip:
                subdirs[:] = []
                continue
            kept = []
            for name in sorted([*subdirs, *names]):
                candidate = Path(current) / name
                if str(candidate) in known or name not in index:
                    if name in subdirs:
                        kept.append(name)
                    continue
                link = resolved.get(os.path.realpath(candidate)) if candidate.is_symlink() else None
                if link is not None:
                    matches = [link]
                else:
                    try:
                        matches = [
                            m for m in index[name] if content.same(Path(m[1].path), candidate)
                        ]
                    except OSError:
                        matches = []
                if len(matches) == 1:
                    task, ref = matches[0]
                    task.published.append((ref, FileRef(str(candidate), str(candidate))))
                    found += 1
                    continue  # a matched folder is one copy: do not look inside
                if len(matches) > 1:
                    ambiguous += 1
                if name in subdirs:
                    kept.append(name)
            subdirs[:] = [d for d in subdirs if d in kept]
    if ambiguous:
        report.note(
            f"{ambiguous} published file(s) are identical to outputs of several tasks: "
            "not linked to any"
        )
    return found
