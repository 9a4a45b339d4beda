"""`lakeline.save`: many records in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.artifacts.save import Progress
    from lakeline.models import Artifact


def save(records: Iterable[Artifact], *, progress: Progress | None = None) -> list[Artifact]:
    """Save many artifacts at once: hashed in parallel, stored, then one transaction.

    Either every record is written with its bytes, or none is (and the bytes this call
    stored are removed again).
    """
    from lakeline.artifacts.save import save_artifacts

    return save_artifacts(list(records), progress=progress)
