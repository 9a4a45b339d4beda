"""`lakeline.save`: many records in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from lakeline.errors import LakelineError

if TYPE_CHECKING:
    from lakeline.artifacts.save import Progress

R = TypeVar("R")


def save(records: Iterable[R], *, progress: Progress | None = None) -> list[R]:
    """Save many records at once, all or none.

    Artifacts: hashed in parallel, stored, then one transaction; either every record is
    written with its bytes, or none is (and the bytes this call stored are removed again);
    edits of loaded artifacts among them are part of that transaction.
    Artifacts of another instance (a `using()` query) are transferred: same uids, bytes left
    where they are, one transaction. Features, ULabels and Schemas: one transaction; a record
    that duplicates an existing one (same name; a label: same name and type; a schema: same
    members) is returned instead.
    """
    from lakeline.models import Artifact, Feature, Schema, ULabel

    listed: list[Any] = list(records)
    if listed and _module_records(listed):
        from lakeline.instance import current
        from lakeline.modules.records import save_records as save_module_records

        return save_module_records(listed, current())
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
        raise LakelineError(
            f"cannot save {others[0]!r} with artifacts: save artifacts and other records in "
            "separate calls"
        )
    from lakeline.artifacts.save import save_artifacts
    from lakeline.instance import current

    target = current()
    foreign = [a for a in listed if a.id is not None and a.instance.uid != target.uid]
    if foreign:
        if len(foreign) != len(listed):
            raise LakelineError(
                "cannot save records of another instance with records of this one: transfer "
                "them in a call of their own"
            )
        from lakeline.transfers import transfer

        return transfer(listed, target)  # type: ignore[return-value]
    return save_artifacts(listed, target, progress=progress)  # type: ignore[return-value]


def _module_records(records: list[Any]) -> bool:
    """Whether these are records of schema modules (all of them; a mix is an error)."""
    from lakeline.modules.spec import models_loaded

    if not models_loaded():
        return False
    from lakeline.modules.records import Record

    found = [isinstance(r, Record) for r in records]
    if any(found) and not all(found):
        raise LakelineError(
            "cannot save records of schema modules with other records: save them in a call "
            "of their own"
        )
    return all(found)
