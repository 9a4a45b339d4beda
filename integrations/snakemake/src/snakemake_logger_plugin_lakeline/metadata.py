"""Snakemake's per-output metadata: `.snakemake/metadata/<urlsafe-b64(output path)>`.

Written when a job finishes (before `job_finished` is logged): rule, inputs, logs, shell
command, params, code, start and end times, input checksums. One record per output file;
the outputs of one job share the rule, `job_hash` and start time.
"""

from __future__ import annotations

import functools
import json
import os
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAME_JOB = 10.0  # seconds: outputs of one job are marked started together


@functools.lru_cache(maxsize=64)
def _name_max(folder: str) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX") or 255
    except (OSError, ValueError):
        return 255


def _record_name(folder: str, key: str) -> str:
    """Snakemake's name for a record in `folder`: the urlsafe base64 of its output path,
    long names split into '@'-prefixed folders."""
    return _split(folder, urlsafe_b64encode(key.encode()).decode())


def _split(folder: str, b64: str) -> str:
    """`_record_name` of the output whose path encodes to `b64`."""
    step = _name_max(folder) - 1
    if len(b64) <= step:
        return b64
    chunks = [b64[i : i + step] for i in range(0, len(b64), step)]
    return os.path.join(*["@" + c for c in chunks[:-1]], chunks[-1])


def _record_file(folder: str, key: str) -> str:
    """Where Snakemake keeps the record of `key` in `folder` (strings, not Paths: read on
    every finished job)."""
    return os.path.join(folder, _record_name(folder, key))


def _record_path(folder: Path, key: str) -> Path:
    return Path(_record_file(os.fspath(folder), key))


@dataclass
class Record:
    """One output's metadata record."""

    output: str
    rule: str | None
    starttime: float | None
    endtime: float | None
    job_hash: int | None
    data: dict[str, Any] = field(repr=False)

    @property
    def inputs(self) -> list[str]:
        return [str(p) for p in self.data.get("input") or [] if not str(p).startswith("<")]

    @property
    def logs(self) -> list[str]:
        return [str(p) for p in self.data.get("log") or []]


def _parse(output: str, text: str | bytes) -> Record | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("incomplete"):
        return None
    return Record(
        output=output,
        rule=data.get("rule"),
        starttime=data.get("starttime"),
        endtime=data.get("endtime"),
        job_hash=data.get("job_hash"),
        data=data,
    )


def _read_bytes(path: str) -> bytes:
    """The whole file (os calls: cheaper than a Python file object for a small record)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while chunk := os.read(fd, 1 << 16):
            parts.append(chunk)
    finally:
        os.close(fd)
    return b"".join(parts)


@functools.lru_cache(maxsize=16)
def _folders(workdir: str) -> tuple[str, str]:
    """A workflow folder's `.snakemake/incomplete` and `.snakemake/metadata` (read on every
    finished job: joined once)."""
    base = os.path.join(workdir, ".snakemake")
    return os.path.join(base, "incomplete"), os.path.join(base, "metadata")


def read(workdir: str | os.PathLike[str], output: str, *, finished: bool = False) -> Record | None:
    """The finished-job record of `output` (a path as Snakemake names it), if any.

    `finished`: the job was logged finished in this run; Snakemake removed the output's
    incomplete marker before logging it (and no other job of the run writes that output),
    so the marker is not looked for."""
    incomplete, folder = _folders(os.fspath(workdir))
    try:
        b64 = urlsafe_b64encode(output.encode()).decode()  # both folders' name, encoded once
        if not finished and os.path.exists(f"{incomplete}/{_split(incomplete, b64)}"):
            return None  # its job is running (or was killed): the record is stale
        data = _read_bytes(f"{folder}/{_split(folder, b64)}")
        return _parse(output, data)  # JSON: json.loads reads UTF-8 bytes
    except (OSError, ValueError):
        return None


def marked_incomplete(workdir: str | os.PathLike[str], output: str) -> bool:
    """Whether Snakemake marks `output` incomplete: the last job writing it started and
    never finished (killed); its record, if any, is an earlier job's."""
    incomplete, _ = _folders(os.fspath(workdir))
    b64 = urlsafe_b64encode(output.encode()).decode()
    return os.path.exists(f"{incomplete}/{_split(incomplete, b64)}")


def read_all(workdir: str | os.PathLike[str]) -> list[Record]:
    """Every finished-job record of a workflow folder."""
    folder = Path(workdir) / ".snakemake" / "metadata"
    records = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            parts = path.relative_to(folder).parts
            try:
                encoded = "".join(p.removeprefix("@") for p in parts)
                output = urlsafe_b64decode(encoded.encode()).decode()
                record = _parse(output, path.read_text())
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if record is not None:
                records.append(record)
    return records


def group_jobs(records: list[Record]) -> list[list[Record]]:
    """Records grouped by the job that wrote them: same rule and job hash (an object hash,
    unique within one Snakemake run), start times close together (each output has its own)."""
    by_job: dict[tuple[Any, ...], list[Record]] = {}
    for record in records:
        by_job.setdefault((record.rule, record.job_hash), []).append(record)
    groups: list[list[Record]] = []
    for same in by_job.values():
        same.sort(key=lambda r: r.starttime or 0.0)
        current = [same[0]]
        for record in same[1:]:
            if (record.starttime or 0.0) - (current[-1].starttime or 0.0) > SAME_JOB:
                groups.append(current)
                current = []
            current.append(record)
        groups.append(current)
    groups = [sorted(g, key=lambda r: r.output) for g in groups]
    return sorted(groups, key=lambda g: (min(r.starttime or 0.0 for r in g), g[0].output))
