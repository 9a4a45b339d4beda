"""Which unexpected column a missing feature probably is: one of the feature's synonyms, or
a name close to it (rapidfuzz, as `inspect()` suggests close matches)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.models import Feature


def close_names(feature: Feature, columns: list[str]) -> list[str]:
    """Columns that are a synonym of `feature` or close to its name, best first."""
    from rapidfuzz import fuzz, process, utils

    from lakeline.validation.inspecting import CLOSE_LIMIT, CLOSE_SCORE
    from lakeline.validation.lookup import split_synonyms

    if not columns:
        return []
    synonyms = set(split_synonyms(feature.synonyms)) | {feature.abbr} - {None}
    exact = [c for c in columns if c in synonyms or c.casefold() == feature.name.casefold()]
    close = process.extract(
        feature.name,
        columns,
        scorer=fuzz.ratio,
        processor=utils.default_process,
        score_cutoff=CLOSE_SCORE,
        limit=CLOSE_LIMIT,
    )
    return list(dict.fromkeys([*exact, *(match for match, _, _ in close)]))
