"""The run journal: every event the plugin saw, one JSON line each, in
`<workdir>/.snakemake/lakeline/journal/<workflow id>.jsonl`.

It is written whether or not the database answers, so `lakeline snakemake import` can replay
a run with its real Snakemake ids and fill in what could not be recorded live.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from json import encoder as _json
from pathlib import Path
from typing import IO, Any

from snakemake_logger_plugin_lakeline.events import Event, from_json, to_json

FOLDER = Path(".snakemake") / "lakeline" / "journal"


def encoder() -> Callable[[Any], str]:
    """`json.JSONEncoder(default=str).encode` of a dict, the same text for less work: the C
    encoder made once, not at each call (`encode` makes one, and its markers, per call). Its
    markers (the circular check) are its own: an encoder whose encoding raised is not used
    again (a journal that failed to encode writes no more)."""
    make = _json.c_make_encoder
    if make is None:  # no C accelerator: the plain path
        return json.JSONEncoder(default=str).encode
    # markers, default, escaping, indent, separators, sort_keys, skipkeys, allow_nan
    chunks = make({}, str, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda value: "".join(chunks(value, 0))


def line_of(event: Event, encode: Callable[[Any], str]) -> str:
    """The journal line of `event` (`encode(to_json(event))`), without copying its fields
    into a new dict first: `{"type": ...` then its fields' own dict, encoded."""
    fields = encode(vars(event))
    if len(fields) <= 2:  # "{}": no fields
        return encode(to_json(event))
    return f'{{"type": "{type(event).__name__}", {fields[1:]}'


def stat_of(path: str) -> list[int] | None:
    """[size, mtime_ns] of a file; for a folder, summed sizes and the newest mtime inside."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return [info.st_size, info.st_mtime_ns]
    size, newest, count = 0, info.st_mtime_ns, 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                child = os.stat(os.path.join(root, name))
            except OSError:
                continue
            size, newest, count = size + child.st_size, max(newest, child.st_mtime_ns), count + 1
    return [size, newest, count]


def joined(folder: str, path: str) -> str:
    """`os.path.join(folder, path)` of two str, the same path for less work (every file of
    every job is joined to the workflow folder)."""
    if not folder or path.startswith("/"):
        return path
    return folder + path if folder.endswith("/") else f"{folder}/{path}"


# stats taken for one event, by path as Snakemake names it: only of entries that are no
# symlink themselves (taken with lstat, so the writer's check for links skips their last part)
Seen = dict[str, os.stat_result]


def stats_of(workdir: str, paths: Iterable[str], seen: Seen | None = None) -> dict[str, list[int]]:
    """`stat_of` each of `paths` (in `workdir`) that exists, to recognise it in a later replay;
    `seen` gets each one's stat, one stat a file (the writer's too, for the same event), but
    a symlink's (the writer stats it again and looks at each part of its path for links)."""
    found = {}
    for path in paths:
        location = joined(workdir, path)
        try:
            info = os.lstat(location)  # the same as os.stat for an entry that is no symlink
            if stat.S_ISLNK(info.st_mode):
                info = os.stat(location)
            elif seen is not None:
                seen[path] = info
        except OSError:
            continue
        now = stat_of(location) if stat.S_ISDIR(info.st_mode) else [info.st_size, info.st_mtime_ns]
        if now is not None:
            found[path] = now
    return found


def is_dir(workdir: str, path: str, info: os.stat_result | None) -> bool:
    """Whether `path` (in `workdir`) is a folder (`info`: its stat, if taken; the path is
    joined only if not)."""
    if info is None:
        return os.path.isdir(joined(workdir, path))
    return stat.S_ISDIR(info.st_mode)


class Journal:
    """Appends events to one run's journal: the lines of a batch of events are written
    together when the tracker flushes (each batch, before its records are written, and at
    the end); a write failure only disables it."""

    def __init__(self, workdir: str, workflow_id: str) -> None:
        self.path = Path(workdir) / FOLDER / f"{workflow_id}.jsonl"
        self._file: IO[str] | None = None
        self._lines: list[str] = []
        self.failed: str | None = None
        self._encode = encoder()

    def write(self, event: Event) -> None:
        if self.failed is not None:
            return
        try:
            self._lines.append(line_of(event, self._encode))
        except (TypeError, ValueError) as exc:
            self.failed = f"{type(exc).__name__}: {exc}"

    def flush(self) -> None:
        """Write the lines kept since the last flush, and flush the file."""
        lines, self._lines = self._lines, []
        if not lines or self.failed is not None:
            return
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()
        except OSError as exc:
            self.failed = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def journals(workdir: str | os.PathLike[str]) -> list[Path]:
    """The journals of a workflow folder, oldest first."""
    folder = Path(workdir) / FOLDER
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime_ns, p.name))


def read(path: Path) -> Iterator[Event]:
    """The events of a journal (a torn last line, from a killed run, is skipped)."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            event = from_json(data) if isinstance(data, dict) else None
            if event is not None:
                yield event
