"""`lakeline.save`: many records in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from lakeline.artifacts.save import Progress

R = TypeVar("R")


def save(records: Iterable[R], *, progress: Progress | None = None) -> list[R]:
    """Save many records at once, all or none.

    Artifacts: hashed in parallel, stored, then one transaction; either every record is
    written with its bytes, or none is (and the bytes this call stored are removed again).
    Features, ULabels and Schemas: one transaction; a record that duplicates an existing one
    (same name; a label: same name and type; a schema: same members) is returned instead.
    """
    from lakeline.models import Artifact, Feature, Schema, ULabel

    listed: list[Any] = list(records)
    for record in listed:
        if not isinstance(record, (Artifact, Feature, Schema, ULabel)):
            raise TypeError(
                "lakeline.save() takes Artifacts (or Features, ULabels and Schemas), got "
                f"{type(record).__name__}"
            )
    if listed and not any(isinstance(r, Artifact) for r in listed):
        from lakeline.annotations.records import save_records
        from lakeline.instance import current

        return save_records(listed, current())  # type: ignore[return-value]
    others = [r for r in listed if not isinstance(r, Artifact)]
    if others:
        from lakeline.errors import LakelineError

        raise LakelineError(
            f"cannot save {others[0]!r} with artifacts: save artifacts and other records in "
            "separate calls"
        )
    from lakeline.artifacts.save import save_artifacts
    from lakeline.instance import current

    return save_artifacts(listed, current(), progress=progress)  # type: ignore[return-value]
