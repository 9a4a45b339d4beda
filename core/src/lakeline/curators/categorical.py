"""A categorical column (or index) against its registry: which values name records, which are
synonyms of a name (standardize fixes them), close matches for the rest, and new records
for values that belong in the registry (`add_new_from`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeline.curators.problems import Problem, shown

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection

    from lakeline.annotations.registries import Target
    from lakeline.instance import Instance
    from lakeline.validation.inspecting import InspectResult


def distinct_texts(series: pd.Series, is_list: bool) -> list[str]:
    """The distinct non-null values of a column (list elements for a list dtype), as text
    where they are text (others are reported by the dtype check)."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        used = series.cat.remove_unused_categories().cat.categories
        return [v for v in used.tolist() if isinstance(v, str)]
    values = series.dropna()
    if is_list:
        values = values.explode().dropna()
    return [v for v in pd.unique(values.to_numpy()) if isinstance(v, str)]


@dataclass
class CatCheck:
    """The outcome of checking one categorical column: the registry target and the
    inspection of its distinct values."""

    key: str  # column name, or "index"
    target: Target
    result: InspectResult
    other_types: dict[str, str] = field(default_factory=dict)  # value -> the type it has

    @property
    def ok(self) -> bool:
        return not self.result.non_validated

    @property
    def mapper(self) -> dict[str, str]:
        """{value: the name it stands for} for synonyms and case variants."""
        return self.result.synonyms_mapper


def inspect_values(conn: Connection, target: Target, values: list[str]) -> InspectResult:
    """Like `Registry.inspect(values)`, within the target's records: one query for the
    names, one for the synonyms when some values are not names."""
    from lakeline.validation.inspecting import InspectResult
    from lakeline.validation.lookup import snapshot

    sendable = [v for v in values if "\x00" not in v]
    found = target.found(conn, sendable)
    missing = [v for v in values if v not in found]
    registry = None
    mapper: dict[str, str] = {}
    case_only: set[str] = set()
    if missing:
        registry = snapshot(conn, target.model, target.column, all_names=True, where=target.where)
        hits, case_only = registry.resolve(missing, case_sensitive=False)
        mapper = {v: hits[v][0] for v in missing if v in hits}
    validated = [v for v in values if v in found]
    return InspectResult(target.label, len(values), validated, missing, mapper, case_only, registry)


def other_types(conn: Connection, target: Target, values: list[str]) -> dict[str, str]:
    """{value: type name} for values that name a record of another type of a typed
    registry (a label of the wrong type), one query."""
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from lakeline.validation.lookup import name_field, one_param_in

    if target.type_id is None or not values:
        return {}
    table = target.model.__table__
    kind = aliased(target.model)
    name = target.column
    stmt = (
        select(name, getattr(kind, name_field(target.model, None).key))
        .join(kind, kind.id == table.c.type_id)
        .where(one_param_in(name, values, conn.dialect.name), table.c.type_id != target.type_id)
    )
    found: dict[str, str] = {}
    for value, type_name in conn.execute(stmt):
        found.setdefault(value, type_name)
    return found


def problem_of(check: CatCheck, where: str, feature: str, dtype_text: str) -> Problem:
    """The problem a categorical column with values outside its registry makes."""
    result = check.result
    parts = []
    fixes = []
    key = check.key
    if check.mapper:
        pairs = [f"{v!r} → {n!r}" for v, n in list(check.mapper.items())[:5]]
        more = len(check.mapper) - len(pairs)
        parts.append(
            f"{len(check.mapper)} synonym or case variant of a name: {', '.join(pairs)}"
            + (f", ... (+{more} more)" if more > 0 else "")
        )
        fixes.append(f"curator.standardize({key!r})")
    missing = result.not_found
    if missing:
        close = result.suggestions
        named = [
            repr(v)
            + (f" (close: {', '.join(map(repr, close[v]))})" if close.get(v) else "")
            + (f" (a label of type {check.other_types[v]!r})" if v in check.other_types else "")
            for v in missing[:5]
        ]
        more = len(missing) - len(named)
        parts.append(
            f"{len(missing)} not in {check.target.label}: {', '.join(named)}"
            + (f", ... (+{more} more)" if more > 0 else "")
        )
        fixes.append(f"fix the values or curator.cat.add_new_from({key!r})")
    return Problem(
        where,
        f"values not in the registry (feature {feature!r}, {dtype_text})",
        "; ".join(parts),
        " / ".join(fixes),
        values=list(result.non_validated),
    )


def replace(series: pd.Series, mapper: dict[str, str]) -> pd.Series:
    """The column with values replaced through `mapper` (a categorical stays categorical;
    list elements are replaced too)."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = [mapper.get(c, c) for c in series.cat.categories]
        values = pd.Categorical(
            series.astype(object).map(lambda v: mapper.get(v, v) if isinstance(v, str) else v),
            categories=list(dict.fromkeys(categories)),
        )
        return pd.Series(values, index=series.index, name=series.name)
    return series.map(
        lambda v: (
            mapper.get(v, v)
            if isinstance(v, str)
            else ([mapper.get(x, x) for x in v] if isinstance(v, list) else v)
        )
    )


def create_records(target: Target, names: list[str], instance: Instance) -> int:
    """Create a record of the target registry (of its type) for each name, in one
    transaction; returns how many were created."""
    from lakeline.errors import CurationError
    from lakeline.models import Feature, ULabel

    if not names:
        return 0
    if target.model is Feature:
        raise CurationError(
            f"cannot create features {shown(names)} from values: a feature needs a dtype; "
            "create them with ll.Feature(name=..., dtype=...).save()"
        )
    if target.model is ULabel:
        from lakeline.annotations.records import save_records
        from lakeline.query import get_by_id

        kind = None if target.type_id is None else get_by_id(ULabel, target.type_id, instance)
        save_records([ULabel(name=name, type=kind) for name in names], instance)
        return len(names)
    return _insert_generic(target, names, instance)


def _insert_generic(target: Target, names: list[str], instance: Instance) -> int:
    """Records of another registry (a schema module's): its constructor with the field set,
    one transaction."""
    from lakeline.errors import CurationError

    field = target.column.key
    try:
        records: list[Any] = [target.model(**{field: name}) for name in names]
    except TypeError as error:
        raise CurationError(
            f"cannot create {target.model.__name__} records from values alone ({error}): "
            "create them with the registry's own API"
        ) from None
    from lakeline.modules.records import Record, save_records

    if issubclass(target.model, Record):  # a schema module's: uid, creator, run, mounted
        save_records(records, instance)
        return len(records)
    with instance.sessions.write() as session:
        session.add_all(records)
    return len(records)
