"""Artifact lookups on annotations, compiled to index lookups on the value and link tables.

`Artifact.filter(temperature__gt=30, cell_type="T cell")`: a lookup whose first part is not a
field or relation of Artifact but a Feature name becomes `id IN (SELECT artifact_id FROM
feature_values WHERE feature_id = ... AND value_float > 30)` (categoricals: the label links),
read through the partial index on (feature_id, value, artifact_id). `ulabels__...` and
`schemas__...` filter the linked labels and schemas with their own lookups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lakeline.errors import QueryError

if TYPE_CHECKING:
    import pandas as pd

    from lakeline.annotations.dtypes import DType
    from lakeline.query import QuerySet

_ORDERED = ("exact", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "range", "isnull")
OPERATORS_BY_DTYPE = {
    "int": _ORDERED,
    "float": _ORDERED,
    "num": _ORDERED,
    "date": _ORDERED,
    "datetime": _ORDERED,
    "bool": ("exact", "ne", "isnull"),
    "dict": ("isnull",),
}
_NEGATED = {"ne": "exact", "not_in": "in"}
INLINE_IDS = 1000  # matching labels (schemas) up to this many are inlined as literal ids


def _dtype(query: QuerySet[Any], name: str) -> tuple[int, DType] | None:
    """(id, dtype) of the feature `name`, cached on the query (None: no such feature)."""
    from lakeline.annotations.dtypes import parse_dtype
    from lakeline.models import Feature

    cache = query._annotations
    if name not in cache:
        with query._session() as session:
            row = session.execute(
                select(Feature.id, Feature.dtype).where(Feature.name == name)
            ).first()
        cache[name] = None if row is None else (row[0], parse_dtype(row[1]))
    found: tuple[int, DType] | None = cache[name]
    return found


def annotation_condition(
    query: QuerySet[Any], lookup: str, parts: list[str], op: str, value: Any, dialect: str
) -> Any | None:
    """The condition of a lookup on annotations, or None when `parts[0]` names none."""
    from lakeline.models import Artifact, ArtifactSchema, ArtifactULabel, Schema, ULabel

    if query.model is not Artifact:
        return None
    head, rest = parts[0], parts[1:]
    if head in ("ulabels", "schemas"):
        target, link, column = (
            (ULabel, ArtifactULabel, ArtifactULabel.ulabel_id)
            if head == "ulabels"
            else (Schema, ArtifactSchema, ArtifactSchema.schema_id)
        )
        ids = _matching(query, target, rest, op, value)
        return Artifact.id.in_(select(link.artifact_id).where(column.in_(ids)))
    found = _dtype(query, head)
    if found is None:
        return None
    feature_id, dtype = found
    if dtype.is_label:
        return _cat_condition(query, feature_id, dtype, rest, op, value)
    if rest:
        raise QueryError(
            f"unknown operator {'__'.join(rest)!r} in lookup {lookup!r} on feature {head!r}"
        )
    return _value_condition(head, feature_id, dtype, lookup, op, value, dialect)


def _matching(query: QuerySet[Any], target: type[Any], rest: list[str], op: str, value: Any) -> Any:
    """The ids of the `target` records the rest of the lookup matches (the target's own
    lookups): read first and inlined when they are few, so the planner sees which labels (a
    label of 20k links among 10k labels is not an average one); else a subquery."""
    from sqlalchemy import bindparam

    from lakeline.query import QuerySet
    from lakeline.query_conditions import _record_id

    field = "__".join(rest) if rest else "id"
    if not rest:
        value = _record_id(value)
    suffix = "" if op == "exact" else f"__{op}"
    inner = QuerySet(target, query.instance).filter(**{field + suffix: value})
    statement = inner._statement(select(target.id), ordered=False)
    with query._session() as session:
        ids = list(session.scalars(statement.limit(INLINE_IDS + 1)))
    if len(ids) > INLINE_IDS:
        return statement
    return bindparam(None, ids, expanding=True, literal_execute=True)


def _cat_condition(
    query: QuerySet[Any], feature_id: int, dtype: DType, rest: list[str], op: str, value: Any
) -> Any:
    from lakeline.annotations.dtypes import registry_model
    from lakeline.models import Artifact, ArtifactULabel, ULabel

    model = registry_model(dtype)
    if model is ULabel:
        links = select(ArtifactULabel.artifact_id).where(ArtifactULabel.feature_id == feature_id)
    else:
        from lakeline.annotations.links import any_linked, artifacts_linked, field_of

        links = any_linked(model, feature_id)
    if op == "isnull":
        if not isinstance(value, bool):
            raise QueryError(f"isnull expects True or False, got {value!r}")
        return Artifact.id.not_in(links) if value else Artifact.id.in_(links)
    positive = _NEGATED.get(op, op)
    records = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    by_record = bool(records) and all(isinstance(v, model) for v in records)
    name = "name" if model is ULabel else field_of(model, dtype).key
    ids = _matching(query, model, rest if rest or by_record else [name], positive, value)
    if model is ULabel:
        matched = links.where(ArtifactULabel.ulabel_id.in_(ids))
    else:
        matched = artifacts_linked(model, feature_id, ids)
    return Artifact.id.not_in(matched) if op in _NEGATED else Artifact.id.in_(matched)


def _value_condition(
    name: str, feature_id: int, dtype: DType, lookup: str, op: str, value: Any, dialect: str
) -> Any:
    from lakeline.annotations.dtypes import convert
    from lakeline.errors import AnnotationError
    from lakeline.models import Artifact, FeatureValue
    from lakeline.query_conditions import OPERATORS, _condition

    allowed = OPERATORS_BY_DTYPE.get(dtype.base, tuple(sorted(OPERATORS)))
    if op not in allowed:
        raise QueryError(
            f"lookup {lookup!r}: feature {name!r} of dtype {dtype.text} takes the operators "
            f"{', '.join(allowed)}"
        )
    assert dtype.column is not None
    column = getattr(FeatureValue, dtype.column)
    rows = select(FeatureValue.artifact_id).where(FeatureValue.feature_id == feature_id)
    if op == "isnull":
        if not isinstance(value, bool):
            raise QueryError(f"{lookup} expects True or False, got {value!r}")
        return Artifact.id.not_in(rows) if value else Artifact.id.in_(rows)
    positive = _NEGATED.get(op, op)
    plain = dtype.base not in ("str", "cat") or positive in (
        "exact",
        "in",
        "range",
        "gt",
        "gte",
        "lt",
        "lte",
    )

    def fit(item: Any) -> Any:
        try:
            return convert(name, dtype, item) if plain else item
        except AnnotationError as error:
            raise QueryError(f"lookup {lookup!r}: {error}") from None

    if positive in ("in", "range") and isinstance(value, (list, tuple, set, frozenset)):
        value = (
            type(value)(fit(v) for v in value) if positive == "range" else [fit(v) for v in value]
        )
    elif positive not in ("in", "range"):
        value = fit(value)
    spec = FeatureValue.__table__.c[dtype.column]
    condition = _condition(column, spec, lookup, positive, value, dialect)
    matched = rows.where(column.is_not(None), condition)
    return Artifact.id.not_in(matched) if op in _NEGATED else Artifact.id.in_(matched)


def with_features(query: QuerySet[Any], frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (artifacts indexed by uid) with one column per feature the artifacts have."""
    from lakeline.annotations.values import collect_values
    from lakeline.db.rows import chunks, one_of
    from lakeline.models import Artifact

    if query.model is not Artifact:
        raise QueryError(f"{query.model.__name__} records have no features: features=True "
                         "is for artifacts")  # fmt: skip
    uids = list(frame.index)
    with query._session() as session:
        ids: dict[int, str] = {}
        for chunk in chunks(uids):
            stmt = select(Artifact.id, Artifact.uid).where(one_of(session, Artifact.uid, chunk))
            ids.update(session.execute(stmt).tuples().all())
        values = collect_values(session, list(ids))
    by_uid = {ids[artifact_id]: found for artifact_id, found in values.items()}
    names = sorted({name for found in by_uid.values() for name in found})
    for name in names:
        frame[name] = [by_uid.get(uid, {}).get(name) for uid in uids]
    return frame
