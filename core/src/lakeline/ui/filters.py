"""Jinja2 filters of the UI's templates (they return text; autoescape escapes it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lakeline.lineage.render import size_text


def size(value: int | None) -> str:
    """`1234567` -> `1.2 MB`; empty for unknown."""
    return size_text(value) or ""


def when(value: datetime | str | None) -> str:
    """A timestamp as `2026-12-05 04:31:07 UTC`."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: datetime | None, end: datetime | None) -> str:
    """`1 h 02 min`, `3.2 s`; empty when either end is missing."""
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def version(record: Any) -> str:
    """A versioned record's number, with its label: `2 (v2.0)`."""
    number = str(record.version_number)
    return f"{number} ({record.version})" if record.version else number


def pretty_json(value: Any) -> str:
    """Indented JSON (non-ASCII kept); autoescape makes it safe."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def short(text: str | None, limit: int = 80) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


FILTERS = {
    "size": size,
    "when": when,
    "duration": duration,
    "version": version,
    "pretty_json": pretty_json,
    "short": short,
}
