"""One table (a DataFrame, an AnnData's obs or var) against the members of one schema slot:
required and unexpected columns, column order, dtypes (cast when the schema coerces),
categorical values against their registries, and the index (unique; in its registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeline.curators.problems import SHOWN, Problem, shown

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection

    from lakeline.annotations.dtypes import DType
    from lakeline.curators.categorical import CatCheck
    from lakeline.instance import Instance
    from lakeline.models import Feature, Schema


@dataclass
class Member:
    """A schema member as a curator uses it."""

    feature: Feature
    dtype: DType
    required: bool

    @property
    def name(self) -> str:
        return self.feature.name


@dataclass
class TableSpec:
    """What one table must hold: its columns (members of a slot) and its index."""

    slot: str
    members: list[Member] = field(default_factory=list)
    index: Member | None = None


def table_specs(schema: Schema) -> dict[str, TableSpec]:
    """{slot: spec} of a saved schema; the member of slot `index` (`<slot>.index`) is the
    index of slot "" (`<slot>`)."""
    from lakeline.errors import CurationError

    if schema.id is None:
        raise CurationError(f"save schema {schema.name!r} before curating with it")
    specs: dict[str, TableSpec] = {}
    for slot, feature, required in schema.members:
        member = Member(feature, feature.parsed_dtype, required)
        if slot == "index" or slot.endswith(".index"):
            owner = "" if slot == "index" else slot[: -len(".index")]
            specs.setdefault(owner, TableSpec(owner)).index = member
        else:
            specs.setdefault(slot, TableSpec(slot)).members.append(member)
    return specs


class TableCurator:
    """Checks one table against a spec; `standardize` and `add_new_from` change the table
    (in place) or the registries. `set_index` replaces the table's index (AnnData var names
    are set on the AnnData)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        spec: TableSpec,
        schema: Schema,
        label: str,
        *,
        set_index: Callable[[Any], None] | None = None,
        unique_index: bool = False,
    ) -> None:
        self.frame = frame
        self.spec = spec
        self.schema = schema
        self.label = label  # "DataFrame", "obs", "gex:var"
        self._set_index = set_index
        self.unique_index = unique_index or spec.index is not None
        self.checks: dict[str, CatCheck] = {}
        self.problems: list[Problem] = []
        self.index_changed = False

    def __repr__(self) -> str:
        return f"<TableCurator {self.label}: {len(self.spec.members)} features>"

    def _where(self, key: str) -> str:
        return f"{self.label} index" if key == "index" else f"{self.label} column {key!r}"

    def validate(self, conn: Connection) -> list[Problem]:
        """Every problem of the table (the data is cast where the schema coerces)."""
        self.problems = problems = self._columns()
        present = [m for m in self.spec.members if m.name in self.frame.columns]
        cats: list[tuple[str, Member, pd.Series]] = []
        for member in present:
            series = self._fit(member.name, member, self.frame[member.name])
            if series is not None and member.dtype.base == "cat":
                cats.append((member.name, member, series))
        index = self.frame.index
        if self.unique_index and index.has_duplicates:
            dupes = index[index.duplicated()].unique().tolist()
            fix = (
                "make them unique (adata.var_names_make_unique())"
                if self.label.endswith("var")
                else "make them unique"
            )
            problems.append(
                Problem(self._where("index"), "duplicate names",
                        f"{len(dupes)} names occur more than once: {shown(dupes)}", fix, dupes)
            )  # fmt: skip
        if self.spec.index is not None:
            import pandas as pd

            as_series = pd.Series(index, index=index)
            series = self._fit("index", self.spec.index, as_series)
            if series is not None and self.spec.index.dtype.base == "cat":
                cats.append(("index", self.spec.index, series))
        self.checks = {}
        for key, member, series in cats:
            self._check_cat(conn, key, member, series)
        return problems

    def _columns(self) -> list[Problem]:
        """Missing required columns, unexpected ones, the order."""
        from lakeline.curators.suggest import close_names

        problems: list[Problem] = []
        schema = self.schema
        columns = [str(c) for c in self.frame.columns]
        names = [m.name for m in self.spec.members]
        extra = [c for c in columns if c not in names]
        if schema.minimal_set:
            for member in self.spec.members:
                if member.required and member.name not in columns:
                    near = close_names(member.feature, extra)
                    hint = f"; column {near[0]!r} looks like it: rename it" if near else ""
                    problems.append(
                        Problem(self._where(member.name), "missing column",
                                f"feature {member.name!r} ({member.dtype.text}) is required"
                                + hint,
                                f"add column {member.name!r}, or make it optional in schema "
                                f"{schema.name!r}")
                    )  # fmt: skip
        if schema.maximal_set and extra:
            problems.append(
                Problem(f"{self.label} columns", "columns not in the schema",
                        f"{len(extra)} column(s) schema {schema.name!r} does not name: "
                        f"{shown(extra)}",
                        "drop them, or add their features to the schema (maximal_set)", extra)
            )  # fmt: skip
        if schema.ordered_set:
            present = [c for c in columns if c in names]
            expected = [n for n in names if n in present]
            if present != expected:
                problems.append(
                    Problem(f"{self.label} columns", "columns out of order",
                            f"order {shown(present, 8)}; the schema's: {shown(expected, 8)}",
                            f"reorder: frame[{expected!r}] (ordered_set)")
                )  # fmt: skip
        return problems

    def _fit(self, key: str, member: Member, series: pd.Series) -> pd.Series | None:
        """The column checked (and cast) against the member's dtype; None when it does not
        fit (a problem is added)."""
        from lakeline.curators.coerce import describe_misfit, fit

        coerce = self.schema.coerce_dtype
        result = fit(series, member.dtype, coerce)
        if result.wrong is not None:
            detail, fix = describe_misfit(key, member.dtype, result, coerce)
            self.problems.append(
                Problem(self._where(key),
                        f"values do not fit feature {member.name!r} ({member.dtype.text})",
                        detail, fix, [repr(v) for v in result.bad or []])
            )  # fmt: skip
            return None
        if result.changed:
            self._put(key, result.series)
        return result.series

    def _put(self, key: str, series: pd.Series) -> None:
        import pandas as pd

        if key != "index":
            self.frame[key] = series
            return
        self.index_changed = True
        index = pd.Index(series.to_numpy(), name=self.frame.index.name)
        if self._set_index is not None:
            self._set_index(index)
        else:
            self.frame.index = index

    def _check_cat(self, conn: Connection, key: str, member: Member, series: pd.Series) -> None:
        from lakeline.annotations.registries import target_of
        from lakeline.curators.categorical import (
            CatCheck,
            distinct_texts,
            inspect_values,
            other_types,
            problem_of,
        )
        from lakeline.errors import AnnotationError, InvalidDtype

        try:
            target = target_of(conn, member.name, member.dtype)
        except (AnnotationError, InvalidDtype) as error:
            self.problems.append(
                Problem(self._where(key), "registry not available", str(error),
                        "create the type or import the module that defines the registry")
            )  # fmt: skip
            return
        values = distinct_texts(series, member.dtype.is_list)
        check = CatCheck(key, target, inspect_values(conn, target, values))
        check.other_types = other_types(conn, target, check.result.not_found[:SHOWN])
        self.checks[key] = check
        if not check.ok:
            self.problems.append(
                problem_of(check, self._where(key), member.name, member.dtype.text)
            )

    def column(self, key: str) -> pd.Series:
        """A column, or the index as a Series (key "index")."""
        import pandas as pd

        if key == "index":
            return pd.Series(self.frame.index, index=self.frame.index)
        return self.frame[key]

    def check_of(self, key: str) -> CatCheck:
        """The categorical check of `key` (run validate() first)."""
        from lakeline.errors import CurationError

        if key not in self.checks:
            cats = [m.name for m in self.spec.members if m.dtype.base == "cat"]
            if self.spec.index is not None and self.spec.index.dtype.base == "cat":
                cats.append("index")
            if key in cats:
                raise CurationError(
                    f"{self._where(key)} was not checked yet: run curator.validate() first"
                )
            raise CurationError(
                f"{self.label} has no categorical column {key!r}; categoricals: "
                f"{', '.join(map(repr, cats)) or 'none'}"
            )
        return self.checks[key]

    def standardize(self, key: str) -> dict[str, str]:
        """Replace synonyms and case variants in `key` by the names they stand for; returns
        the mapping applied."""
        from lakeline.curators.categorical import replace

        check = self.check_of(key)
        mapper = dict(check.mapper)
        if mapper:
            self._put(key, replace(self.column(key), mapper))
            result = check.result
            result.validated += [v for v in result.non_validated if v in mapper]
            result.non_validated = [v for v in result.non_validated if v not in mapper]
            result.synonyms_mapper = {}
        return mapper

    def add_new_from(self, key: str, instance: Instance) -> list[str]:
        """Create records for the values of `key` that name none (synonyms excepted: they
        are standardized, not added); returns the names added."""
        from lakeline.curators.categorical import create_records

        check = self.check_of(key)
        new = list(check.result.not_found)
        create_records(check.target, new, instance)
        result = check.result
        result.validated += new
        result.non_validated = [v for v in result.non_validated if v not in set(new)]
        return new

    def categoricals(self) -> dict[str, tuple[Member, list[str]]]:
        """{column: (member, distinct values)} of the categorical columns (not the index)."""
        from lakeline.curators.categorical import distinct_texts

        found: dict[str, tuple[Member, list[str]]] = {}
        for member in self.spec.members:
            if member.dtype.base == "cat" and member.name in self.frame.columns:
                series = self.frame[member.name]
                found[member.name] = (member, distinct_texts(series, member.dtype.is_list))
        return found
