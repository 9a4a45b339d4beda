"""`version` in lookups: one meaning everywhere — a number (1 = the first version, from the
uid's suffix) or a label given at save (labels are never numbers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, func, or_

from lakeline.errors import QueryError


def version_condition(entity: Any, lookup: str, op: str, value: Any) -> Any:
    """`version=N` (an int or a string of digits) is the N-th version (1 = the first);
    any other string is a version label. Labels are never numbers, so the two never meet."""
    from lakeline.ids import STEM_LENGTH, SUFFIX_LENGTH, version_suffix

    if op == "in":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise QueryError(f"{lookup} expects a list, tuple or set, got {value!r}")
        values = list(value)
    else:
        values = [value]
    numbers: set[int] = set()
    labels: set[str] = set()
    for item in values:
        if item is None and op == "exact":
            return entity.version.is_(None)
        if isinstance(item, int) and not isinstance(item, bool):
            numbers.add(item)
        elif isinstance(item, str) and item.strip().isdigit():
            numbers.add(int(item))
        elif isinstance(item, str):
            labels.add(item)
        else:
            raise QueryError(
                f"{lookup} expects a version number (1 = the first) or a label, got {item!r}"
            )
    suffixes = [version_suffix(n - 1) for n in numbers if 1 <= n <= 62**SUFFIX_LENGTH]
    matches: list[Any] = []
    if suffixes:
        matches.append(func.substr(entity.uid, STEM_LENGTH + 1, SUFFIX_LENGTH).in_(suffixes))
    if labels:
        matches.append(entity.version.in_(sorted(labels)))
    return or_(*matches) if matches else false()
