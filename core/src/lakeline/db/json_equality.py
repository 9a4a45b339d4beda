"""JSON values compared as values on SQLite, as PostgreSQL's jsonb compares them.

SQLite stores a JSON column as the text `json.dumps` wrote, keys in the writer's order, and
compares texts: `params={"a": 1, "b": 2}` missed a run stored as `{"b": 2, "a": 1}` (and
`params__ne` found it). On SQLite an equality with an object inside is therefore also true
where the stored text has the same length — a reordering of the same keys and values written
by the same serializer keeps it — and the same canonical form (`lakeline_json()`, sorted keys,
registered on every lakeline connection): the function runs only for rows the length picks.
Numbers are compared as written (1 and 1.0 differ on SQLite; jsonb holds them equal).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import String, and_, func, literal


def canonical_json(text: str | None) -> str | None:
    """`lakeline_json(text)`: the JSON text with every object's keys sorted (None: None; a text
    that is not JSON is itself)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value, sort_keys=True)


def _keyed(value: Any) -> bool:
    """Whether `value` holds an object of two keys or more (only then can order differ)."""
    if isinstance(value, dict):
        return len(value) > 1 or any(_keyed(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_keyed(item) for item in value)
    return False


def _forms(values: list[Any]) -> tuple[list[int], list[str]]:
    """The lengths of `values` as stored and their canonical texts."""
    texts = [json.dumps(value) for value in values]
    return [len(t) for t in texts], [canonical_json(t) or t for t in texts]


def same_json(column: Any, values: list[Any]) -> Any | None:
    """SQLite: `column` holds one of `values` in another key order; None where none of them
    holds an object of two keys or more (the stored text is then compared as it is)."""
    keyed = [value for value in values if _keyed(value)]
    if not keyed:
        return None
    lengths, canonical = _forms(keyed)
    if len(keyed) == 1:
        return and_(
            func.length(column) == lengths[0],
            func.lakeline_json(column) == literal(canonical[0], String),
        )
    return and_(
        func.length(column).in_(sorted(set(lengths))),
        func.lakeline_json(column).in_([literal(text, String) for text in canonical]),
    )
