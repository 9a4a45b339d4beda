"""What `inspect()` returns: validated values, synonyms to standardize, close matches.

Close matches ("did you mean") come from rapidfuzz: `fuzz.ratio` (normalised Indel similarity,
0-100) on lowercased, punctuation-free text, against every name and synonym of the registry;
a match scores at least `CLOSE_SCORE`, best first, at most `CLOSE_LIMIT` per value. They are
computed in batches (`process.cdist`) when first asked for: the printed report computes them
for the values it shows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lakeline.validation.lookup import Snapshot, preview

if TYPE_CHECKING:
    from rich.console import RenderableType

CLOSE_SCORE = 80  # fuzz.ratio on processed text: one wrong letter in ten
CLOSE_LIMIT = 3
REPORT_LIMIT = 8  # values named per line of the printed report
_CHUNK = 256  # query rows per cdist call (a chunk's score matrix is rows x choices bytes)


class InspectResult:
    """The outcome of `Registry.inspect(values)`; distinct values, in first-seen order.

    `validated`: values that are names. `non_validated`: the others. `synonyms_mapper`:
    non-validated values that are a synonym (or, `case_only`, differ in case only) of a name,
    mapped to it. `suggestions`: close names for the rest (computed on first access).
    """

    def __init__(
        self,
        label: str,
        n_values: int,
        validated: list[str],
        non_validated: list[str],
        synonyms_mapper: dict[str, str],
        case_only: set[str],
        snapshot: Snapshot | None,
    ) -> None:
        self.label = label
        self.n_values = n_values
        self.validated = validated
        self.non_validated = non_validated
        self.synonyms_mapper = synonyms_mapper
        self.case_only = case_only
        self._snapshot = snapshot
        self._suggested: dict[str, list[str]] = {}

    @property
    def frac_validated(self) -> float:
        """Share of distinct values that validated (1.0 for no values)."""
        total = len(self.validated) + len(self.non_validated)
        return len(self.validated) / total if total else 1.0

    @property
    def not_found(self) -> list[str]:
        """Non-validated values that no synonym explains: to fix or to add."""
        return [v for v in self.non_validated if v not in self.synonyms_mapper]

    @cached_property
    def suggestions(self) -> dict[str, list[str]]:
        """{value: close names, best first} for every value in `not_found` with a match."""
        found = self._suggest(self.not_found)
        return {v: found[v] for v in self.not_found if found.get(v)}

    def _suggest(self, values: Sequence[str]) -> dict[str, list[str]]:
        todo = [v for v in values if v not in self._suggested]
        if todo and self._snapshot is not None:
            self._suggested.update(close_matches(self._snapshot, todo))
        return {v: self._suggested.get(v, []) for v in values}

    def __repr__(self) -> str:
        return (
            f"InspectResult({self.label}: {len(self.validated)} validated, "
            f"{len(self.non_validated)} not validated, {len(self.synonyms_mapper)} synonyms)"
        )

    def __rich__(self) -> RenderableType:
        from rich.text import Text

        total = len(self.validated) + len(self.non_validated)
        text = Text()
        text.append(
            f"{self.label}: {len(self.validated):,} of {total:,} distinct values validated "
            f"({self.frac_validated:.1%})",
            style="green" if not self.non_validated else "yellow",
        )
        if self.synonyms_mapper:
            pairs = [f"{v!r} → {n!r}" for v, n in list(self.synonyms_mapper.items())]
            fix = "case_sensitive=False" if self.case_only else ""
            text.append(
                f"\n  {len(self.synonyms_mapper):,} are synonyms"
                + (" or differ in case only" if self.case_only else "")
                + f": {preview(pairs, REPORT_LIMIT)}".replace('"', "")
                + f"\n    fix with .standardize(values{', ' + fix if fix else ''})",
            )
        missing = self.not_found
        if missing:
            shown = missing[:REPORT_LIMIT]
            close = self._suggest(shown)
            named = [
                f"{v!r}" + (f" (close: {', '.join(map(repr, close[v]))})" if close[v] else "")
                for v in shown
            ]
            hidden = len(missing) - len(shown)
            more = f", ... (+{hidden:,} more)" if hidden else ""
            text.append(
                f"\n  {len(missing):,} are not in the registry: {', '.join(named)}{more}"
                "\n    fix the values, or create records for them",
                style="red",
            )
        return text

    def print(self) -> None:
        """Print the short report to stderr."""
        from rich.console import Console

        Console(stderr=True, highlight=False, soft_wrap=True).print(self)


def close_matches(snapshot: Snapshot, values: Sequence[str]) -> dict[str, list[str]]:
    """{value: up to CLOSE_LIMIT names whose name or synonym is close to it}, batched."""
    import numpy as np
    from rapidfuzz import fuzz, process, utils

    choices, targets = snapshot.choices()
    found: dict[str, list[str]] = {v: [] for v in values}
    if not choices or not values:
        return found
    for start in range(0, len(values), _CHUNK):
        scores = process.cdist(
            values[start : start + _CHUNK],
            choices,
            scorer=fuzz.ratio,
            processor=utils.default_process,
            score_cutoff=CLOSE_SCORE,
            dtype=np.uint8,
            workers=1,
        )
        for offset, row in enumerate(scores):
            hits = np.flatnonzero(row)
            if not len(hits):
                continue
            best = hits[np.argsort(-row[hits], kind="stable")]
            close: list[str] = []
            for index in best:
                name = targets[int(index)]
                if name not in close:
                    close.append(name)
                if len(close) == CLOSE_LIMIT:
                    break
            found[values[start + offset]] = close
    return found


def summary_line(label: str, n_values: int, missing: list[str], n_missing_values: int) -> str:
    """The one line `validate()` logs when values do not validate."""
    return (
        f"{label}: {n_missing_values:,} of {n_values:,} values not validated "
        f"({len(missing):,} distinct: {preview(missing)}); .inspect(values) suggests fixes"
    )


def as_text(renderable: Any) -> str:
    """Plain text of a rich renderable (for logs and tests)."""
    from rich.console import Console

    console = Console(width=200, no_color=True, highlight=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()
