"""`curator.save_artifact()`: the data's bytes, the artifact record, its schema link, feature
values and label links in ONE transaction (the artifact save's `also` callback), so a failure
anywhere leaves no row and no stored bytes (the save removes bytes it wrote)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakeline import checkpoints

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.artifacts.save import Plan
    from lakeline.curators.core import Curator
    from lakeline.models import Artifact

# distinct values of a categorical column of a registry other than ULabel stored as feature
# values up to this many (label categoricals are always linked)
MAX_RECORD_VALUES = 1000
SUFFIXES = {"DataFrame": ".parquet", "AnnData": ".h5ad", "MuData": ".h5mu"}


def annotations_of(curator: Curator) -> dict[str, Any]:
    """{feature name: values} the artifact gets: the curator's `features`, and per
    categorical column its distinct values (merged across slots)."""
    values: dict[str, Any] = dict(curator.features)
    for table in curator.slots.values():
        for column, (member, distinct) in table.categoricals().items():
            if column in curator.features:
                continue
            if not member.dtype.is_label and len(distinct) > MAX_RECORD_VALUES:
                continue
            listed = values.setdefault(column, [])
            seen = set(listed)
            listed.extend(v for v in distinct if v not in seen)
    return {k: v for k, v in values.items() if not (isinstance(v, list) and not v)}


def save_curated(curator: Curator, *, key: str | None, description: str | None) -> Artifact:
    """Save the curated data and its annotations atomically; returns the artifact."""
    from lakeline.annotations.values import link_schema, new_stamp, write_values
    from lakeline.artifacts.save import save_artifacts
    from lakeline.artifacts.transfer import remove_local
    from lakeline.models import Artifact

    data = curator.data
    if type(data).__name__ == "MuData" and any(t.index_changed for t in curator.slots.values()):
        import warnings

        with warnings.catch_warnings():  # mudata 0.3 announces a change of update()'s default
            warnings.simplefilter("ignore", FutureWarning)
            data.update()  # a modality's names were standardized: the MuData takes them
    if key is not None and "." not in key.rsplit("/", 1)[-1]:
        key += SUFFIXES[curator.otype]
    instance = curator.instance
    artifact = Artifact(data, key=key, description=description)
    values = annotations_of(curator)
    schema_id = curator.schema.id

    def annotate(session: Session, plans: Sequence[Plan]) -> None:
        result = plans[0].result
        assert result is not None and result.id is not None
        stamp = new_stamp(instance)
        write_values(session, result.id, values, stamp)
        link_schema(session, result.id, schema_id, "", stamp)
        checkpoints.reach("curator.annotated")

    try:
        save_artifacts([artifact], instance, also=annotate)
    except BaseException:
        if artifact._staged:
            from pathlib import Path

            remove_local(Path(artifact._source))
        raise
    return artifact
