"""Label links of schema modules' label registries (`LabelRecord`): each registry has a link
table `<table>_artifacts` (artifact, record, feature or none), used as `artifact_ulabels` is
for ULabels: `artifact.labels.add(record)`, `cat[module.Registry]` feature values, lookups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, insert, select

from lakeline.errors import AnnotationError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.orm import Session

    from lakeline.annotations.dtypes import DType
    from lakeline.models import Feature


def link_of(model: type[Any]) -> Table:
    """The link table of a label registry."""
    table: Table = model.__link_table__
    return table


def name_of(model: type[Any]) -> Any:
    """The registry's name column (`_name_field`, default `name`)."""
    return getattr(model, getattr(model, "_name_field", "name"))


def field_of(model: type[Any], dtype: DType) -> Any:
    """The column naming records in values of `dtype` (`cat[m.Registry.field]`: `field`)."""
    return getattr(model, dtype.field) if dtype.field else name_of(model)


def resolve_records(
    session: Session, feature: Feature, model: type[Any], values: Sequence[Any], column: Any
) -> list[Any]:
    """The records of `model` that categorical `values` (texts of `column`, or records)
    stand for."""
    names = {v for v in values if isinstance(v, str)}
    by_name: dict[str, list[Any]] = {}
    if names:
        for record in session.scalars(select(model).where(column.in_(names))):
            by_name.setdefault(getattr(record, column.key), []).append(record)
    records = []
    for value in values:
        if isinstance(value, model):
            check_fits(value, feature, model)
            records.append(value)
        elif isinstance(value, str):
            found = by_name.get(value, [])
            if len(found) != 1:
                problem = "is not a" if not found else f"names {len(found)} records of"
                raise AnnotationError(
                    f"{value!r} {problem} {model.__name__} record, as feature {feature.name!r} "
                    f"requires: save it first ({model.__name__}(...).save()), pass the record, "
                    "or fix the value"
                )
            records.append(found[0])
        else:
            raise AnnotationError(
                f"value {value!r} ({type(value).__name__}) does not fit feature "
                f"{feature.name!r} of dtype {feature.dtype}: pass {model.__name__} names or "
                "records"
            )
    return records


def check_fits(record: Any, feature: Feature, model: type[Any]) -> None:
    """A record given for a `cat[module.Registry]` feature must be a saved `model` record."""
    if not isinstance(record, model):
        raise AnnotationError(
            f"feature {feature.name!r} takes {model.__name__} records, got {record!r}"
        )
    if record.id is None:
        raise AnnotationError(f"save {record!r} before annotating with it")


def link(
    session: Session,
    artifact_id: int,
    pairs: Sequence[tuple[Any, int | None]],
    stamp: dict[str, Any],
) -> None:
    """Insert the (module record, feature id) links the artifact lacks."""
    by_model: dict[type[Any], list[tuple[Any, int | None]]] = {}
    for record, feature_id in pairs:
        by_model.setdefault(type(record), []).append((record, feature_id))
    for model, items in by_model.items():
        table = link_of(model)
        have = select(table.c.record_id, table.c.feature_id).where(
            table.c.artifact_id == artifact_id
        )
        existing = {(r, f) for r, f in session.execute(have)}
        rows = []
        for record, feature_id in items:
            if (record.id, feature_id) not in existing:
                existing.add((record.id, feature_id))
                rows.append({"artifact_id": artifact_id, "record_id": record.id,
                             "feature_id": feature_id, **stamp})  # fmt: skip
        if rows:
            session.execute(insert(table), rows)


def linked_ids(model: type[Any], artifact_id: int, feature: Any = None) -> Select[Any]:
    """The ids of `model` records linked to the artifact (as values of `feature`, a select
    of its id, when given)."""
    table = link_of(model)
    stmt = select(table.c.record_id).where(table.c.artifact_id == artifact_id)
    return stmt if feature is None else stmt.where(table.c.feature_id == feature)


def artifacts_linked(model: type[Any], feature_id: int, ids: Any) -> Select[Any]:
    """The artifacts linked to records `ids` of `model` as values of feature `feature_id`."""
    table = link_of(model)
    return select(table.c.artifact_id).where(
        table.c.feature_id == feature_id, table.c.record_id.in_(ids)
    )


def any_linked(model: type[Any], feature_id: int) -> Select[Any]:
    """The artifacts with a value of feature `feature_id` (a `model` record)."""
    table = link_of(model)
    return select(table.c.artifact_id).where(table.c.feature_id == feature_id)


def collect(
    session: Session, artifact_ids: Sequence[int], listed: dict[tuple[int, str], list[str]]
) -> set[str]:
    """Add the names of module records that are feature values of these artifacts to
    `listed[(artifact id, feature name)]`; returns the names of non-list features."""
    from lakeline.annotations.dtypes import parse_dtype, registry_model
    from lakeline.db.rows import one_of
    from lakeline.models import Feature

    single: set[str] = set()
    features = session.execute(
        select(Feature.id, Feature.name, Feature.dtype).where(Feature.dtype.contains("."))
    ).all()
    by_field: dict[tuple[type[Any], str | None], list[tuple[int, str, DType]]] = {}
    for feature_id, name, text in features:
        dtype = parse_dtype(text)
        if not dtype.is_label or dtype.registry == "ULabel":
            continue
        key = (registry_model(dtype), dtype.field)
        by_field.setdefault(key, []).append((feature_id, name, dtype))
    for (model, _), items in by_field.items():
        table, names = link_of(model), {fid: (n, d) for fid, n, d in items}
        column = field_of(model, items[0][2])
        stmt = (
            select(table.c.artifact_id, table.c.feature_id, column)
            .join(model, model.id == table.c.record_id)
            .where(one_of(session, table.c.artifact_id, artifact_ids))
            .where(table.c.feature_id.in_(list(names)))
            .order_by(table.c.artifact_id, column)
        )
        for artifact_id, feature_id, value in session.execute(stmt):
            name, dtype = names[feature_id]
            listed.setdefault((artifact_id, name), []).append(value)
            if not dtype.is_list:
                single.add(name)
    return single


def plain_labels(session: Session, artifact_id: int) -> list[tuple[str, str]]:
    """(registry as `module.Registry`, record name) of the module records labelling the
    artifact without a feature, for the label registries of the modules the instance mounts."""
    from lakeline.modules.mounting import read_mounted
    from lakeline.modules.records import LabelRecord
    from lakeline.modules.spec import installed, load_models, models_loaded

    if not models_loaded():
        return []
    found: list[tuple[str, str]] = []
    modules = installed()
    for module_name in sorted(read_mounted(session.connection())):
        if module_name not in modules:
            continue
        for class_name, model in sorted(load_models(modules[module_name]).items()):
            if not issubclass(model, LabelRecord):
                continue
            table, column = link_of(model), name_of(model)
            stmt = (
                select(column)
                .join(table, table.c.record_id == model.id)
                .where(table.c.artifact_id == artifact_id, table.c.feature_id.is_(None))
                .order_by(column)
            )
            found.extend((f"{module_name}.{class_name}", name) for name in session.scalars(stmt))
    return found
