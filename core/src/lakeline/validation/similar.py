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
those few candidates are compared with rapidfuzz. Cost: linear in the number of names.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from typing import Any

from lakeline.errors import SimilarNameWarning
from lakeline.validation.lookup import name_field, one_param_in, preview

TYPO_MIN = 6  # shorter keys (e.g. gene symbols) differ by one letter on purpose too often
_DROP = re.compile(r"[^\w+]|_")  # whitespace and punctuation except '+'
_NOT_MARKS = re.compile(r"[^\d+]+")  # what is left: digits and '+', which a typo cannot change


def name_key(name: str) -> str:
    """The key two names that differ in case, whitespace or punctuation only share."""
    return _DROP.sub("", name.casefold())


def similar_names(
    model: type[Any], names: Iterable[str], field: str | None = None
) -> dict[str, str]:
    """{new name: existing name it is close to} for names the registry does not hold yet;
    names the registry holds exactly are left out (they are duplicates, not near ones)."""
    from sqlalchemy import select

    from lakeline.validation.lookup import engine

    column = name_field(model, field)
    new = [n for n in dict.fromkeys(names) if isinstance(n, str)]
    if not new:
        return {}
    pk = model.__table__.primary_key.columns.values()[0]
    with engine().connect() as conn:
        existing = [n for n in conn.execute(select(column).order_by(pk)).scalars() if n]
    return match_similar(new, existing)


def match_similar(new: list[str], existing: list[str]) -> dict[str, str]:
    """The matching of `similar_names` on lists in memory (oldest existing name first)."""
    held = set(existing)
    keys = [name_key(n) for n in existing]
    by_key: dict[str, str] = {}
    for name, key in zip(existing, keys, strict=True):
        by_key.setdefault(key, name)
    found: dict[str, str] = {}
    typo_candidates: list[tuple[str, str]] = []
    for name in new:
        if name in held:
            continue
        key = name_key(name)
        hit = by_key.get(key)
        if hit is not None:
            found[name] = hit
        elif len(key) >= TYPO_MIN:
            typo_candidates.append((name, key))
    if typo_candidates:
        found.update(_typos(typo_candidates, existing, keys))
    return found


def _typos(new: list[tuple[str, str]], existing: list[str], keys: list[str]) -> dict[str, str]:
    """New names whose key is one edit from an existing key (see the module docstring)."""
    from rapidfuzz.distance import OSA

    heads: dict[tuple[int, str], list[int]] = {}
    tails: dict[tuple[int, str], list[int]] = {}
    for index, key in enumerate(keys):
        length = len(key)
        if length < TYPO_MIN - 1:
            continue
        half = length // 2
        heads.setdefault((length, key[:half]), []).append(index)
        tails.setdefault((length, key[half + 1 :]), []).append(index)
    found: dict[str, str] = {}
    for name, key in new:
        size = len(key)
        candidates: set[int] = set()
        for length in (size - 1, size, size + 1):
            half = length // 2
            candidates.update(heads.get((length, key[:half]), ()))
            candidates.update(tails.get((length, key[size - (length - half - 1) :]), ()))
        if not candidates:
            continue
        marks = _NOT_MARKS.sub("", key)
        for index in sorted(candidates):  # oldest record first
            other = keys[index]
            if (
                other[0] == key[0]
                and _NOT_MARKS.sub("", other) == marks
                and OSA.distance(key, other, score_cutoff=1) <= 1
            ):
                found[name] = existing[index]
                break
    return found


def warn_similar(
    model: type[Any], similar: dict[str, str], field: str | None = None, *, stacklevel: int = 1
) -> None:
    """One SimilarNameWarning naming the existing records (with their uids) new names are
    close to; nothing when `similar` is empty. `stacklevel` 1 points the warning at the
    caller, 2 at the caller's caller (e.g. the user's `save()` call)."""
    if not similar:
        return
    column = name_field(model, field)
    uids = _uids(model, column, sorted(set(similar.values())))
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


def _uids(model: type[Any], column: Any, names: list[str]) -> dict[str, str]:
    from sqlalchemy import select

    from lakeline.validation.lookup import engine

    uid = model.__table__.columns.get("uid")
    if uid is None or not names:
        return {}
    with engine().connect() as conn:
        stmt = select(column, uid).where(one_param_in(column, names, conn.dialect.name))
        return {name: value for name, value in conn.execute(stmt)}


def check_new_names(
    model: type[Any], names: Iterable[str], field: str | None = None, *, stacklevel: int = 1
) -> dict[str, str]:
    """`similar_names` then `warn_similar` (`stacklevel` as there): what a registry's save
    path calls on a batch of new records."""
    found = similar_names(model, names, field)
    warn_similar(model, found, field, stacklevel=stacklevel + 1)
    return found
