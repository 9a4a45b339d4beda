"""Reading Nextflow's human-formatted values: durations, sizes, percentages, times, hashes."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

# A task work dir: <workDir>/<hash[0:2]>/<hash[2:]>; the full hash is 32 hex digits.
HASH_DIR = re.compile(r"/([0-9a-f]{2})/([0-9a-f]{30})(?=/|$)")
FULL_HASH = re.compile(r"^[0-9a-f]{32}$")
SHORT_HASH = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{1,30}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)\b")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTPE]?B)$", re.I)
_SIZE_FACTOR = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_SIZE_FACTOR |= {"PB": 1 << 50, "EB": 1 << 60}


def missing(value: Any) -> bool:
    """Nextflow writes `-` (or nothing) for a value it does not know."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "-"))


def short_of(full: str) -> str:
    """`862df53160e0...` -> `86/2df531` (the form traces and logs show)."""
    return f"{full[:2]}/{full[2:8]}"


def hash_of_workdir(path: str | None) -> str | None:
    """The full task hash of a work dir path (or of a path inside one), if it names one."""
    if not path:
        return None
    found = HASH_DIR.search(path)
    return None if found is None else found.group(1) + found.group(2)


def split_workdir(path: str) -> tuple[str, str, str] | None:
    """`/w/86/2df.../out/x` -> (`/w`, full hash, `out/x`); None outside a task work dir."""
    found = HASH_DIR.search(path)
    if found is None:
        return None
    root = path[: found.start()]
    rest = path[found.end() :].lstrip("/")
    return root, found.group(1) + found.group(2), rest


def strip_uri(path: str) -> str:
    """`file:///abs/x` -> `/abs/x`; other URIs and plain paths are returned as they are."""
    if path.startswith("file://"):
        return path[len("file://") :] or "/"
    return path


def duration_ms(value: Any) -> int | None:
    """`2.8s`, `46m 35s`, `1d 2h`, `119ms` or raw milliseconds -> milliseconds."""
    if missing(value):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return int(float(text))
    parts = _DURATION_PART.findall(text)
    if not parts:
        raise ValueError(f"not a duration: {text!r}")
    return int(sum(float(n) * _DURATION_MS[unit] for n, unit in parts))


def size_bytes(value: Any) -> int | None:
    """`119.3 MB`, `4 GB`, `259 KB` or raw bytes -> bytes (binary units, as Nextflow prints)."""
    if missing(value):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return int(float(text))
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"not a size: {text!r}")
    return int(float(found.group(1)) * _SIZE_FACTOR[found.group(2).upper()])


def percent(value: Any) -> float | None:
    """`223.2%` or `223.2` -> 223.2; None when unknown (`-`, or `nan%`: JSON has no NaN, and
    a run's params are JSON)."""
    if missing(value):
        return None
    number = (
        float(value) if isinstance(value, (int, float)) else float(str(value).strip().rstrip("%"))
    )
    return number if math.isfinite(number) else None


def integer(value: Any) -> int | None:
    """An integer field (`exit`, `task_id`, `attempt`, `cpus`), None when unknown."""
    if missing(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        return value
    return int(str(value).strip())


def local_time(naive: datetime, tz: tzinfo | None) -> datetime:
    """A wall-clock time Nextflow wrote without a zone, read in `tz` (None: this machine's)."""
    if tz is None:
        return naive.astimezone()  # Python reads a naive datetime as local time, DST included
    return naive.replace(tzinfo=tz)


def trace_time(value: Any, tz: tzinfo | None) -> datetime | None:
    """`2024-11-10 10:13:25.638` (local wall clock) or epoch milliseconds -> aware datetime."""
    if missing(value):
        return None
    if isinstance(value, (int, float)) or re.fullmatch(r"\d{10,}", str(value).strip()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return local_time(datetime.strptime(text, fmt), tz)
        except ValueError:
            continue
    raise ValueError(f"not a timestamp: {text!r}")


def iso_time(value: Any) -> datetime | None:
    """An ISO-8601 time (`2018-10-07T11:42:08Z`, `...-05:00`, nanoseconds allowed) -> aware."""
    if missing(value):
        return None
    text = str(value).strip().replace("Z", "+00:00")
    # Python keeps at most microseconds: cut longer fractions (Java writes nanoseconds).
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def cut_json(error: json.JSONDecodeError, text: str) -> bool:
    """Whether a JSON error means the text ends before the document does (a file copied while
    being written, or cut short): a string left open, or more expected at the very end."""
    return error.msg.startswith("Unterminated string") or error.pos >= len(text.rstrip())


def load_json(text: str, where: str) -> Any:
    """A JSON document; a cut one is said to be truncated."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: nests too deeply to read") from None
    except json.JSONDecodeError as exc:
        if cut_json(exc, text):
            raise ValueError(
                f"{where}: truncated (it ends before its JSON does: copied while being "
                "written, or cut short)"
            ) from None
        raise ValueError(f"{where}: not JSON ({exc})") from None
