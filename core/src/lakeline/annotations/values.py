"""Feature values and labels on an artifact: `artifact.features` and `artifact.labels`.

Each call is one transaction. Values are checked against their feature's dtype before
anything is written; categorical values are labels of the feature's type, stored as label
links with the feature. Inside a tracked run every row records that run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from lakeline.db.rows import insert_many
from lakeline.db.session import check_own
from lakeline.errors import AnnotationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.annotations.dtypes import DType
    from lakeline.instance import Instance
    from lakeline.models import Artifact, Feature, Schema, ULabel
    from lakeline.query import QuerySet


def _saved(artifact: Artifact) -> int:
    if artifact.id is None:
        raise AnnotationError("save the artifact before annotating it")
    return artifact.id


def new_stamp(instance: Instance) -> dict[str, Any]:
    """run_id (the instance's current run), created_by_id and created_at of new rows."""
    from lakeline.lineage.context import current_run_in
    from lakeline.models.base import utcnow

    run = current_run_in(instance)
    return {
        "run_id": None if run is None else run.id,
        "created_by_id": instance.user.id,
        "created_at": utcnow(),
    }


def features_named(session: Session, names: Sequence[str]) -> dict[str, Feature]:
    """The features of these names; AnnotationError naming the first missing one."""
    from lakeline.models import Feature

    found = {f.name: f for f in session.scalars(select(Feature).where(Feature.name.in_(names)))}
    for name in names:
        if name not in found:
            raise AnnotationError(
                f"no feature named {name!r}: create it with "
                f"ll.Feature(name={name!r}, dtype=...).save()"
            )
    return found


def label_type_id(session: Session, feature: Feature, dtype: DType) -> int | None:
    """The id of the label type a categorical feature takes (None: any label)."""
    from lakeline.models import ULabel

    if dtype.type_name is None:
        return None
    stmt = select(ULabel.id).where(ULabel.name == dtype.type_name, ULabel.is_type.is_(True))
    found = session.scalars(stmt).first()
    if found is None:
        raise AnnotationError(
            f"feature {feature.name!r} takes {dtype.type_name!r} labels, and that label type "
            f"does not exist: create it with ll.ULabel(name={dtype.type_name!r}, "
            "is_type=True).save()"
        )
    return found


def resolve_labels(
    session: Session, feature: Feature, dtype: DType, values: Sequence[Any]
) -> list[ULabel]:
    """The labels categorical `values` (names or ULabels) stand for, of the feature's type
    (for `cat[module.Registry]`: records of that registry)."""
    from lakeline.annotations.dtypes import registry_model
    from lakeline.models import ULabel

    model = registry_model(dtype)
    if model is not ULabel:
        from lakeline.annotations.links import field_of, resolve_records

        return resolve_records(session, feature, model, values, field_of(model, dtype))

    type_id = label_type_id(session, feature, dtype)
    kind = dtype.type_name or "ULabel"
    records: list[ULabel] = []
    names = [v for v in values if isinstance(v, str)]
    by_name: dict[str, list[ULabel]] = {}
    if names:
        stmt = select(ULabel).where(ULabel.name.in_(set(names)))
        if type_id is not None:
            stmt = stmt.where(ULabel.type_id == type_id)
        for label in session.scalars(stmt):
            by_name.setdefault(label.name, []).append(label)
    for value in values:
        if isinstance(value, ULabel):
            check_label_fits(session, value, feature, type_id)
            records.append(value)
        elif isinstance(value, str):
            found = by_name.get(value, [])
            if not found:
                make = f"ll.ULabel(name={value!r}" + (", type=<the type>" if type_id else "")
                raise AnnotationError(
                    f"{value!r} is not a {kind} label, as feature {feature.name!r} requires: "
                    f"create it with {make}).save() or fix the value"
                )
            if len(found) > 1:
                raise AnnotationError(
                    f"{value!r} names {len(found)} labels of different types for feature "
                    f"{feature.name!r}: pass the ULabel, or give the feature a typed dtype "
                    "cat[ULabel[Type]]"
                )
            records.append(found[0])
        else:
            raise AnnotationError(
                f"value {value!r} ({type(value).__name__}) does not fit feature "
                f"{feature.name!r} of dtype {dtype.text}: pass label names or ULabels"
            )
    return records


def check_label_fits(
    session: Session, label: ULabel, feature: Feature, type_id: int | None
) -> None:
    """A label given for a typed categorical feature must be of the feature's type."""
    from lakeline.models import ULabel

    if label.id is None:
        raise AnnotationError(f"save label {label.name!r} before annotating with it")
    if type_id is None or label.type_id == type_id:
        return
    kind = None if label.type_id is None else session.get(ULabel, label.type_id)
    has = "has no type" if kind is None else f"is of type {kind.name!r}"
    wanted = feature.parsed_dtype.type_name
    raise AnnotationError(
        f"label {label.name!r} {has}; feature {feature.name!r} takes {wanted!r} labels: "
        f"pass a {wanted} label"
    )


def _link_labels(
    session: Session,
    artifact_id: int,
    pairs: Sequence[tuple[ULabel, int | None]],
    stamp: dict[str, Any],
) -> None:
    """Insert the (label, feature id) links the artifact lacks (module records: into their
    registry's link table)."""
    from lakeline.models import ArtifactULabel, ULabel

    others = [(r, f) for r, f in pairs if not isinstance(r, ULabel)]
    if others:
        from lakeline.annotations.links import link

        link(session, artifact_id, others, stamp)
        pairs = [(r, f) for r, f in pairs if isinstance(r, ULabel)]

    have = select(ArtifactULabel.ulabel_id, ArtifactULabel.feature_id).where(
        ArtifactULabel.artifact_id == artifact_id
    )
    existing = {(u, f) for u, f in session.execute(have)}
    rows = []
    for label, feature_id in pairs:
        if (label.id, feature_id) not in existing:
            existing.add((label.id, feature_id))
            rows.append({"artifact_id": artifact_id, "ulabel_id": label.id,
                         "feature_id": feature_id, **stamp})  # fmt: skip
    insert_many(session, ArtifactULabel.__table__, rows)  # type: ignore[arg-type]


def write_values(
    session: Session, artifact_id: int, values: Mapping[str, Any], stamp: dict[str, Any]
) -> None:
    """Check every value against its feature's dtype, then write them in `session`: a value
    replaces the feature's previous one; a label categorical's values are label links added
    to the artifact's; other registries' records are stored by the text of their field."""
    from lakeline.annotations.dtypes import values_of
    from lakeline.annotations.registries import check_records
    from lakeline.models import FeatureValue

    features = features_named(session, list(values))
    rows: list[dict[str, Any]] = []
    links: list[tuple[ULabel, int | None]] = []
    replaced: list[int] = []
    for name, value in values.items():
        feature = features[name]
        dtype = feature.parsed_dtype
        items = values_of(name, dtype, value)
        if dtype.base == "cat" and not dtype.is_label:
            check_records(session, feature, dtype, items)
        if dtype.is_label:
            labels = resolve_labels(session, feature, dtype, items)
            links.extend((label, feature.id) for label in labels)
            continue
        replaced.append(feature.id)
        column = dtype.column
        assert column is not None
        rows.extend(
            {"artifact_id": artifact_id, "feature_id": feature.id, "position": i,
             column: item, **stamp}
            for i, item in enumerate(items)
        )  # fmt: skip
    if replaced:
        session.execute(
            delete(FeatureValue).where(
                FeatureValue.artifact_id == artifact_id,
                FeatureValue.feature_id.in_(replaced),
            )
        )
    for column_set in _by_columns(rows):
        insert_many(session, FeatureValue.__table__, column_set)  # type: ignore[arg-type]
    _link_labels(session, artifact_id, links, stamp)


def link_schema(
    session: Session, artifact_id: int, schema_id: int, slot: str, stamp: dict[str, Any]
) -> None:
    """Link a saved schema to the artifact in `slot`, replacing that slot's schema."""
    from lakeline.models import ArtifactSchema

    session.execute(
        delete(ArtifactSchema).where(
            ArtifactSchema.artifact_id == artifact_id, ArtifactSchema.slot == slot
        )
    )
    row = {"artifact_id": artifact_id, "slot": slot, "schema_id": schema_id,
           "run_id": stamp["run_id"], "created_at": stamp["created_at"]}  # fmt: skip
    session.execute(insert(ArtifactSchema), [row])


class FeatureManager:
    """`artifact.features`: add and read the artifact's feature values."""

    def __init__(self, artifact: Artifact, instance: Instance) -> None:
        self._artifact = artifact
        self._instance = instance  # the artifact's

    def __repr__(self) -> str:
        return f"<features of {self._artifact!r}>"

    def add_values(self, values: Mapping[str, Any]) -> None:
        """Set feature values, checked against each feature's dtype (one transaction).

        A value replaces the feature's previous value (a list feature's whole list); the
        values of a categorical feature are labels, added to the ones it has.
        """

        artifact_id = _saved(self._artifact)
        if not isinstance(values, Mapping):
            raise AnnotationError(
                f"add_values takes a dict of feature name -> value, got {values!r}"
            )
        stamp = new_stamp(self._instance)
        with self._instance.sessions.write() as session:
            write_values(session, artifact_id, values, stamp)

    def add_schema(self, schema: Schema, slot: str = "") -> None:
        """Link the saved `schema` (the artifact's feature set; `slot`: the part of a
        composite artifact it describes, e.g. "obs"), replacing that slot's schema."""
        from lakeline.models import Schema

        artifact_id = _saved(self._artifact)
        if not isinstance(schema, Schema) or schema.id is None:
            raise AnnotationError(f"add_schema takes a saved Schema, got {schema!r}")
        check_own(schema, self._instance)
        stamp = new_stamp(self._instance)
        with self._instance.sessions.write() as session:
            link_schema(session, artifact_id, schema.id, slot, stamp)

    def get_values(self) -> dict[str, Any]:
        """{feature name: value}: a list for list features, label names for categoricals
        (one name, or a sorted list when there are several)."""

        artifact_id = _saved(self._artifact)
        with self._instance.sessions.read() as session:
            return collect_values(session, [artifact_id]).get(artifact_id, {})


def collect_values(session: Session, artifact_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """{artifact id: {feature name: value}} for these artifacts (as `get_values` gives them)."""
    from lakeline.annotations.dtypes import COLUMNS, parse_dtype, read_back
    from lakeline.db.rows import chunks, one_of
    from lakeline.models import ArtifactULabel, Feature, FeatureValue, ULabel

    out: dict[int, dict[str, Any]] = {}
    listed: dict[tuple[int, str], list[str]] = {}
    single: set[str] = set()
    several: set[tuple[int, str]] = set()
    columns = sorted(set(COLUMNS.values()))
    for chunk in chunks(list(artifact_ids)):
        stmt = (
            select(
                FeatureValue.artifact_id,
                Feature.name,
                Feature.dtype,
                *(getattr(FeatureValue, c) for c in columns),
            )
            .join(Feature, Feature.id == FeatureValue.feature_id)
            .where(one_of(session, FeatureValue.artifact_id, chunk))
            .order_by(FeatureValue.artifact_id, Feature.name, FeatureValue.position)
        )
        for artifact_id, name, dtype_text, *stored in session.execute(stmt):
            dtype = parse_dtype(dtype_text)
            value = read_back(dtype, stored[columns.index(dtype.column or "")])
            values = out.setdefault(artifact_id, {})
            if dtype.is_list or dtype.base == "cat":  # records of a registry: one or more
                values.setdefault(name, []).append(value)
                if not dtype.is_list:
                    several.add((artifact_id, name))
            else:
                values[name] = value
        labels = (
            select(ArtifactULabel.artifact_id, Feature.name, Feature.dtype, ULabel.name)
            .select_from(ArtifactULabel)
            .join(Feature, Feature.id == ArtifactULabel.feature_id)
            .join(ULabel, ULabel.id == ArtifactULabel.ulabel_id)
            .where(one_of(session, ArtifactULabel.artifact_id, chunk))
            .order_by(ArtifactULabel.artifact_id, Feature.name, ULabel.name)
        )
        for artifact_id, name, dtype_text, label in session.execute(labels):
            listed.setdefault((artifact_id, name), []).append(label)
            if not parse_dtype(dtype_text).is_list:
                single.add(name)
        if modules_mapped():
            from lakeline.annotations.links import collect

            single |= collect(session, chunk, listed)
    for artifact_id, name in several:
        found = out[artifact_id]
        if len(found[name]) == 1:
            found[name] = found[name][0]
    for (artifact_id, name), names in listed.items():
        value = names[0] if name in single and len(names) == 1 else names
        out.setdefault(artifact_id, {})[name] = value
    return {key: dict(sorted(values.items())) for key, values in out.items()}


def modules_mapped() -> bool:
    """Whether a schema module's label registry is mapped in this process (else no feature
    of this instance can take module records)."""
    from lakeline.modules.spec import models_loaded

    return models_loaded()


def _by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by their set of keys (one executemany per group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.values())


class LabelManager:
    """`artifact.labels`: add and read the artifact's labels."""

    def __init__(self, artifact: Artifact, instance: Instance) -> None:
        self._artifact = artifact
        self._instance = instance  # the artifact's

    def __repr__(self) -> str:
        return f"<labels of {self._artifact!r}>"

    def add(self, labels: Any, feature: Feature | str | None = None) -> None:
        """Link saved labels (ULabels, or records of a module's label registry) to the
        artifact (one transaction); with `feature`, as values of that categorical feature
        (they must be of its label type, or its registry)."""
        from lakeline.models import ULabel
        from lakeline.modules.records import LabelRecord

        artifact_id = _saved(self._artifact)
        kinds = (ULabel, LabelRecord)
        single = isinstance(labels, kinds) or not hasattr(labels, "__iter__")
        listed = [labels] if single else list(labels)
        for label in listed:
            if not isinstance(label, kinds):
                raise AnnotationError(
                    f"labels.add takes ULabels or label registry records, got {label!r}"
                )
            if label.id is None:
                what = f"label {label.name!r}" if isinstance(label, ULabel) else repr(label)
                raise AnnotationError(f"save {what} before annotating with it")
            check_own(label, self._instance)
        stamp = new_stamp(self._instance)
        with self._instance.sessions.write() as session:
            from lakeline.annotations.dtypes import registry_model

            feature_id = None
            if feature is not None:
                name = feature if isinstance(feature, str) else feature.name
                record = features_named(session, [name])[name]
                dtype = record.parsed_dtype
                if not dtype.is_label:
                    raise AnnotationError(
                        f"feature {name!r} has dtype {dtype.text}, not a categorical of labels: "
                        "add its values with artifact.features.add_values"
                    )
                model = registry_model(dtype)
                if model is ULabel:
                    type_id = label_type_id(session, record, dtype)
                    for label in listed:
                        if not isinstance(label, ULabel):
                            raise AnnotationError(f"feature {name!r} takes ULabels, got {label!r}")
                        check_label_fits(session, label, record, type_id)
                else:
                    from lakeline.annotations.links import check_fits

                    for label in listed:
                        check_fits(label, record, model)
                feature_id = record.id
            _link_labels(session, artifact_id, [(label, feature_id) for label in listed], stamp)

    def get(
        self, feature: Feature | str | None = None, *, registry: type[Any] | None = None
    ) -> QuerySet[Any]:
        """The artifact's labels (all, or those that are values of `feature`): ULabels, or
        records of `registry` (a module's label registry; a feature's dtype implies it)."""
        from lakeline.models import ArtifactULabel, Feature, ULabel
        from lakeline.query import QuerySet

        artifact_id = _saved(self._artifact)
        feature_id = None
        if feature is not None:
            if registry is None:
                from lakeline.annotations.dtypes import registry_model

                record = (
                    QuerySet(Feature, self._instance).filter(name=feature).one_or_none()
                    if isinstance(feature, str)
                    else feature
                )
                if record is not None and record.parsed_dtype.is_label:
                    registry = registry_model(record.parsed_dtype)
            name = feature if isinstance(feature, str) else feature.name
            feature_id = select(Feature.id).where(Feature.name == name).scalar_subquery()
        if registry is not None and registry is not ULabel:
            from lakeline.annotations.links import linked_ids, name_of

            ids = linked_ids(registry, artifact_id, feature_id)
            records = QuerySet(registry, self._instance).filter(registry.id.in_(ids))
            return records.order_by(name_of(registry).key)
        linked = select(ArtifactULabel.ulabel_id).where(ArtifactULabel.artifact_id == artifact_id)
        if feature_id is not None:
            linked = linked.where(ArtifactULabel.feature_id == feature_id)
        return QuerySet(ULabel, self._instance).filter(ULabel.id.in_(linked)).order_by("name")
