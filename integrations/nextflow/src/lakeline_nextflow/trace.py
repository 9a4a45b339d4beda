"""Trace files (`-with-trace`) and the execution report's embedded `window.data` records."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from lakeline_nextflow.model import TaskObs
from lakeline_nextflow.values import (
    cut_json,
    duration_ms,
    hash_of_workdir,
    integer,
    missing,
    percent,
    size_bytes,
)

# Every field Nextflow can write (docs/reference/config/trace.mdx), and how to read it.
DURATIONS: tuple[str, ...] = ("duration", "realtime", "time")
SIZES: tuple[str, ...] = (
    "memory",
    "disk",
    "rss",
    "vmem",
    "peak_rss",
    "peak_vmem",
    "rchar",
    "wchar",
)
SIZES += ("read_bytes", "write_bytes")
PERCENTS: tuple[str, ...] = ("%cpu", "%mem")
INTEGERS: tuple[str, ...] = ("syscr", "syscw", "vol_ctxt", "inv_ctxt", "attempt", "cpus")
TIMES: tuple[str, ...] = ("submit", "start", "complete")
TEXT: tuple[str, ...] = (
    "native_id",
    "tag",
    "queue",
    "container",
    "module",
    "script",
    "env",
    "scratch",
)
TEXT += ("error_action", "hostname", "cpu_model")
IDENTITY: tuple[str, ...] = ("task_id", "hash", "name", "process", "status", "exit", "workdir")
KNOWN = set(DURATIONS + SIZES + PERCENTS + INTEGERS + TIMES + TEXT + IDENTITY)


def _naive(value: Any) -> datetime | None:
    """A trace timestamp: wall clock (naive) from the text form, UTC-aware from epoch ms."""
    from lakeline_nextflow.values import trace_time

    if missing(value):
        return None
    text = str(value).strip()
    if isinstance(value, (int, float)) or re.fullmatch(r"\d{10,}", text):
        return trace_time(value, None)
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"not a timestamp: {text!r}")


def _reader(name: str) -> Callable[[Any], Any]:
    if name in DURATIONS:
        return duration_ms
    if name in SIZES:
        return size_bytes
    if name in PERCENTS:
        return percent
    if name in INTEGERS:
        return integer
    return lambda v: None if missing(v) else v


def record_to_obs(record: dict[str, Any], source: str, problems: list[str]) -> TaskObs | None:
    """One trace record (a row, a report entry or a weblog `trace`) as a TaskObs."""
    short = record.get("hash")
    short = None if missing(short) else str(short).strip()
    workdir = None if missing(record.get("workdir")) else str(record["workdir"])
    full = hash_of_workdir(workdir)
    name = None if missing(record.get("name")) else str(record["name"])
    if short is None and full is None and name is None:
        problems.append(f"{source}: a record without hash, workdir or name was skipped")
        return None
    obs = TaskObs(
        source=source,
        short=short,
        hash=full,
        name=name,
        process=None if missing(record.get("process")) else str(record["process"]),
        workdir=workdir,
    )
    bad: list[str] = []
    try:
        obs.task_id = integer(record.get("task_id"))
    except ValueError:
        bad.append("task_id")
    status = record.get("status")
    obs.status = None if missing(status) else str(status).strip().upper()
    try:
        obs.exit_code = integer(record.get("exit"))
    except ValueError:
        bad.append("exit")
    for name_ in TIMES:
        try:
            setattr(obs, name_, _naive(record.get(name_)))
        except ValueError:
            bad.append(name_)
    for key, value in record.items():
        if key in IDENTITY or key in TIMES or missing(value):
            continue
        try:
            read = _reader(key)(value)
        except (TypeError, ValueError):
            bad.append(key)
            obs.fields[key] = value
            continue
        if read is not None:  # None: unknown (`nan%`), left out as `-` is
            obs.fields[key] = read
    if bad:
        problems.append(
            f"{source}: task {short or full or name}: unreadable {', '.join(sorted(set(bad)))} "
            "(kept as text)"
        )
    return obs


class Rows(list[TaskObs]):
    """The records of a trace file; `cut`: the file ended inside a line (read while being
    written, or truncated), so it does not tell how the run ended."""

    cut: bool = False


def read_trace(path: Path, problems: list[str]) -> Rows:
    """The rows of a trace file (tab-separated with a header; `trace.sep` may differ)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    rows = Rows()
    if not lines:
        problems.append(f"{path}: empty trace file")
        return rows
    rows.cut = not text.endswith("\n")
    if rows.cut:  # Nextflow ends every line: the file was cut in its last one
        problems.append(
            f"{path}: truncated (it ends inside line {len(text.splitlines())}: copied while "
            "being written, or cut short): that line was skipped; import the whole file later"
        )
        lines.pop()
        if not lines:
            return rows
    header = lines[0]
    sep = "\t" if "\t" in header else ("," if "," in header else "\t")
    columns = [c.strip() for c in header.split(sep)]
    if "hash" not in columns and "workdir" not in columns:
        raise ValueError(
            f"{path}: not a trace file: the header has neither `hash` nor `workdir` "
            f"(columns: {', '.join(columns[:8])})"
        )
    unknown = [c for c in columns if c not in KNOWN]
    if unknown:
        problems.append(f"{path}: unknown trace columns {', '.join(unknown)}: kept as task params")
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split(sep)
        if len(cells) != len(columns):
            problems.append(
                f"{path}:{number}: {len(cells)} cells for {len(columns)} columns "
                "(truncated or malformed row skipped)"
            )
            continue
        obs = record_to_obs(dict(zip(columns, cells, strict=True)), f"trace:{path.name}", problems)
        if obs is not None:
            rows.append(obs)
    return rows


_WINDOW_DATA = re.compile(r"window\.data\s*=\s*")


def read_report(path: Path, problems: list[str]) -> list[TaskObs]:
    """The task records embedded in an execution report (`window.data = {"trace": [...]}`).

    Accepts the report HTML or just the object literal extracted from it.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    found = _WINDOW_DATA.search(text)
    start = found.end() if found else text.find("{")
    if start < 0:
        raise ValueError(f"{path}: no `window.data` object in this report")
    literal = text[start:].replace("\\'", "'")
    try:
        data, _ = json.JSONDecoder().raw_decode(literal)
    except json.JSONDecodeError as exc:
        if cut_json(exc, literal):
            raise ValueError(
                f"{path}: truncated (its data ends before it is complete: copied while being "
                "written, or cut short)"
            ) from None
        raise ValueError(f"{path}: the report's data does not parse: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("trace"), list):
        raise ValueError(f"{path}: the report's data has no `trace` list")
    rows = []
    for record in data["trace"]:
        if not isinstance(record, dict):
            problems.append(f"{path}: a trace entry that is not an object was skipped")
            continue
        obs = record_to_obs(record, f"report:{path.name}", problems)
        if obs is not None:
            rows.append(obs)
    return rows
