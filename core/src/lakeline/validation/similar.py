"""The duplicate safeguard for new records: names close to existing ones, in one batched pass.

A registry's save path calls `check_new_names(model, names)` on a batch of new records (after
taking out the exact-name duplicates, which return the existing record). A new name is
*similar* to an existing one when

1. their keys are equal: the key is the name casefolded, without whitespace and punctuation
   (`+` is kept: `CD4+` and `CD4-` are different markers), so `T cell`, `T-cell`, `t_cell`
   and `Tcell` are one name; or
2. a typo: their keys (both at least `TYPO_MIN` characters long) are one edit apart — one
   letter inserted, deleted, replaced, or two neighbours swapped (optimal string alignment
   distance 1, rapidfuzz's `OSA`) — and they start with the same character and hold the same
   digits and `+` signs (`CD4`/`CD8`, `IL2`/`IL4`, `CD4+`/`CD4-`, `B cell`/`T cell` are
   different things, not typos).

Speed: one query reads the registry's names; no pairwise comparison of all names. Candidates
for (2) come from a pigeonhole index: when two strings are one edit apart, the longer one's
first half, or its second half after one skipped character, occurs unchanged in the other
(at its start, resp. end). Each existing key is indexed under its two halves, each new key
looks up the halves of the three lengths an existing key one edit away can have, and only
those few candidates are compared with rapidfuzz. Cost: linear in the number of names; the
index is one dict per key length and half, built in C from lists (`dict(zip(...))`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lakeline.errors import SimilarNameWarning
from lakeline.validation.lookup import name_field, one_param_in, preview

if TYPE_CHECKING:
    from lakeline.instance import Instance

TYPO_MIN = 6  # shorter keys (e.g. gene symbols) differ by one letter on purpose too often
_DROP = re.compile(r"[^\w+]|_")  # whitespace and punctuation except '+'
_DROP_ASCII = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c) == "+"))
_NOT_MARKS = re.compile(r"[^\d+]+")  # what is left: digits and '+', which a typo cannot change


def name_key(name: str) -> str:
    """The key two names that differ in case, whitespace or punctuation only share."""
    if name.isascii():  # the same result, several times faster
        return name.encode().translate(None, _DROP_ASCII).lower().decode()
    return _DROP.sub("", name.casefold())


def name_keys(names: list[str]) -> list[str]:
    """`name_key` of each name."""
    drop, sub = _DROP_ASCII, _DROP.sub
    return [
        n.encode().translate(None, drop).lower().decode() if n.isascii() else sub("", n.casefold())
        for n in names
    ]


def similar_names(
    model: type[Any], names: Iterable[str], field: str | None = None, *, instance: Instance
) -> dict[str, str]:
    """{new name: existing name it is close to} for names the registry (of `instance`) does
    not hold yet; names it holds exactly are left out (duplicates, not near ones)."""
    from lakeline.validation.lookup import read_names

    column = name_field(model, field)
    new = [n for n in dict.fromkeys(names) if isinstance(n, str)]
    if not new:
        return {}
    with instance.engine.connect() as conn:
        existing = read_names(conn, model, column)
    return match_similar(new, existing) if existing else {}


def match_similar(new: list[str], existing: list[str]) -> dict[str, str]:
    """The matching of `similar_names` on lists in memory (oldest existing name first)."""
    held = set(existing)
    new = [n for n in new if n not in held]
    keys = name_keys(existing)
    by_key = dict(zip(reversed(keys), reversed(existing), strict=True))  # the oldest name wins
    found: dict[str, str] = {}
    typo_candidates: list[tuple[str, str]] = []
    for name, key in zip(new, name_keys(new), strict=True):
        hit = by_key.get(key)
        if hit is not None:
            found[name] = hit
        elif len(key) >= TYPO_MIN:
            typo_candidates.append((name, key))
    if typo_candidates:
        found.update(_typos(typo_candidates, existing, keys))
    return found


class _Halves:
    """Existing keys of one length, indexed by their first half and by their second half
    after one skipped character: {part: index} for the parts one key has, {part: [indexes]}
    for the parts several share (dicts built in C from lists, no Python loop per key)."""

    def __init__(self, keys: list[str], indexes: list[int]) -> None:
        from collections import Counter

        half = len(keys[0]) // 2
        self.heads, self.shared_heads = _multimap([k[:half] for k in keys], indexes, Counter)
        self.tails, self.shared_tails = _multimap([k[half + 1 :] for k in keys], indexes, Counter)


def _multimap(
    parts: list[str], indexes: list[int], counter: Any
) -> tuple[dict[str, int], dict[str, list[int]]]:
    single = dict(zip(parts, indexes, strict=True))
    shared: dict[str, list[int]] = {}
    if len(single) < len(parts):
        repeated = {part for part, n in counter(parts).items() if n > 1}
        for part, index in zip(parts, indexes, strict=True):
            if part in repeated:
                shared.setdefault(part, []).append(index)
    return single, shared


def _lookup(
    single: dict[str, int], shared: dict[str, list[int]], part: str, into: list[int]
) -> None:
    index = single.get(part)
    if index is not None:
        if part in shared:
            into += shared[part]
        else:
            into.append(index)


def _typos(new: list[tuple[str, str]], existing: list[str], keys: list[str]) -> dict[str, str]:
    """New names whose key is one edit from an existing key (see the module docstring)."""
    from rapidfuzz.distance import OSA

    by_length: dict[int, list[int]] = {}
    shortest = TYPO_MIN - 1
    for index, length in enumerate(map(len, keys)):
        if length >= shortest:
            by_length.setdefault(length, []).append(index)
    halves = {
        length: _Halves([keys[i] for i in indexes], indexes)
        for length, indexes in by_length.items()
    }
    distance = OSA.distance
    found: dict[str, str] = {}
    for name, key in new:
        size = len(key)
        candidates: list[int] = []
        for length in (size - 1, size, size + 1):
            parts = halves.get(length)
            if parts is not None:
                half = length // 2
                _lookup(parts.heads, parts.shared_heads, key[:half], candidates)
                tail = key[size - (length - half - 1) :]
                _lookup(parts.tails, parts.shared_tails, tail, candidates)
        if not candidates:
            continue
        marks = None
        for index in sorted(set(candidates)):  # oldest record first
            other = keys[index]
            if other[0] != key[0] or distance(key, other, score_cutoff=1) > 1:
                continue
            marks = _NOT_MARKS.sub("", key) if marks is None else marks
            if _NOT_MARKS.sub("", other) == marks:
                found[name] = existing[index]
                break
    return found


def warn_similar(
    model: type[Any],
    similar: dict[str, str],
    field: str | None = None,
    *,
    instance: Instance,
    stacklevel: int = 1,
) -> None:
    """One SimilarNameWarning naming the existing records (with their uids) new names are
    close to; nothing when `similar` is empty. `stacklevel` 1 points the warning at the
    caller, 2 at the caller's caller (e.g. the user's `save()` call)."""
    if not similar:
        return
    column = name_field(model, field)
    uids = _uids(model, column, sorted(set(similar.values())), instance)
    pairs = [
        f"{new!r} is close to {model.__name__} {old!r}"
        + (f" (uid {uids[old]})" if old in uids else "")
        for new, old in similar.items()
    ]
    warnings.warn(
        SimilarNameWarning(
            f"{len(pairs)} new {model.__name__} record(s) resemble existing ones: "
            f"{preview(pairs, 5)}".replace('"', "")
            + ". Use the existing record (or add the new name to its synonyms) unless they "
            "are different things"
        ),
        stacklevel=stacklevel + 1,
    )


def _uids(model: type[Any], column: Any, names: list[str], instance: Instance) -> dict[str, str]:
    from sqlalchemy import select

    uid = model.__table__.columns.get("uid")
    if uid is None or not names:
        return {}
    with instance.engine.connect() as conn:
        stmt = select(column, uid).where(one_param_in(column, names, conn.dialect.name))
        return {name: value for name, value in conn.execute(stmt)}


def check_new_names(
    model: type[Any],
    names: Iterable[str],
    field: str | None = None,
    *,
    instance: Instance,
    stacklevel: int = 1,
) -> dict[str, str]:
    """`similar_names` then `warn_similar` (`stacklevel` as there): what a registry's save
    path calls on a batch of new records of `instance`."""
    found = similar_names(model, names, field, instance=instance)
    warn_similar(model, found, field, instance=instance, stacklevel=stacklevel + 1)
    return found
