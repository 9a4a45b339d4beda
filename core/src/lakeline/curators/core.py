"""Curators: a DataFrame, an AnnData or a MuData against a saved schema.

    curator = ll.curators.DataFrameCurator(df, schema)
    curator.validate()                     # every problem at once (CurationError + table)
    curator.standardize("cell_type")       # synonyms -> names, in the data
    curator.cat.add_new_from("cell_type")  # records for the values that name none
    artifact = curator.save_artifact(key="sc/obs.parquet")   # one transaction

The curator works on the object it is given: coercion and standardization change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakeline.errors import CurationError

if TYPE_CHECKING:
    from lakeline.curators.problems import Problem
    from lakeline.curators.table import TableCurator
    from lakeline.models import Artifact, Schema


class Curator:
    """Validate a dataset against a schema and save it with its annotations."""

    otype = ""

    def __init__(self, data: Any, schema: Schema, *, features: Mapping[str, Any] | None = None):
        from lakeline.models import Schema
        from lakeline.validation.lookup import require_extras

        require_extras()
        if not isinstance(schema, Schema):
            raise CurationError(f"a curator takes a saved Schema, got {schema!r}")
        if schema.id is None:
            raise CurationError(f"save schema {schema.name!r} before curating with it")
        if schema.otype is not None and schema.otype != self.otype:
            raise CurationError(
                f"schema {schema.name!r} describes a {schema.otype}, not a {self.otype}: use "
                f"the {schema.otype}Curator or a schema with otype={self.otype!r}"
            )
        self.data = data
        self.schema = schema
        self.instance = schema.instance  # the schema's: its features and registries are there
        self.features = dict(features or {})
        self.slots: dict[str, TableCurator] = {}
        self.problems: list[Problem] = []
        self._validated = False
        self.cat = CatManager(self)

    def __repr__(self) -> str:
        state = "validated" if self._validated else "not validated"
        return f"{type(self).__name__}(schema={self.schema.name!r}, {state})"

    def validate(self, *, show: bool = True) -> bool:
        """Check everything; True when the data fits the schema. Otherwise print every
        problem as one table (stderr; not with `show=False`) and raise CurationError listing
        them (`.problems`)."""
        from lakeline.curators.features import check_features

        problems: list[Problem] = []
        with self.instance.engine.connect() as conn:
            for table in self.slots.values():
                problems.extend(table.validate(conn))
        problems.extend(check_features(self.features, self.instance))
        self.problems = problems
        self._validated = not problems
        if problems:
            if show:
                self.print_problems()
            raise self.error()
        return True

    def error(self) -> CurationError:
        """The CurationError of the current problems."""
        from lakeline.curators.problems import error

        return error(self.problems, self._subject())

    def _subject(self) -> str:
        return f"{self.otype} does not fit schema {self.schema.name!r}"

    def problems_table(self) -> Any:
        """The problems as a rich Table."""
        from lakeline.curators.problems import table

        return table(self.problems, self._subject())

    def print_problems(self) -> None:
        """Print the problems table to stderr."""
        from rich.console import Console

        Console(stderr=True, highlight=False).print(self.problems_table())

    def _table(self, key: str, slot: str | None) -> TableCurator:
        if slot is not None:
            if slot not in self.slots:
                raise CurationError(
                    f"no slot {slot!r}; the schema has {', '.join(map(repr, self.slots))}"
                )
            return self.slots[slot]
        if len(self.slots) == 1:
            return next(iter(self.slots.values()))
        having = [s for s, t in self.slots.items() if key in t.frame.columns or key == "index"]
        if len(having) != 1:
            raise CurationError(
                f"say which slot {key!r} is in: slot= one of {', '.join(map(repr, self.slots))}"
            )
        return self.slots[having[0]]

    def standardize(self, key: str, *, slot: str | None = None) -> dict[str, str]:
        """Replace synonyms and case variants in categorical column `key` ("index": the
        index) by the registry's names, in the data; returns the mapping applied."""
        return self._table(key, slot).standardize(key)

    def save_artifact(self, *, key: str | None = None, description: str | None = None) -> Artifact:
        """Validate (if needed), then save the data as an artifact with its schema, feature
        values and labels in ONE transaction: a failure leaves no record and no bytes. A key
        without a suffix gets the object's (.parquet, .h5ad, .h5mu)."""
        from lakeline.curators.saving import save_curated

        if not self._validated:
            self.validate()
        return save_curated(self, key=key, description=description)


class CatManager:
    """`curator.cat`: the categorical columns and their registries."""

    def __init__(self, curator: Curator) -> None:
        self._curator = curator

    def __repr__(self) -> str:
        return f"<categoricals of {self._curator!r}>"

    @property
    def non_validated(self) -> dict[str, list[str]]:
        """{column (slot:column in composites): values that name no record} after validate."""
        slots = self._curator.slots
        out: dict[str, list[str]] = {}
        for slot, table in slots.items():
            for key, check in table.checks.items():
                if check.result.non_validated:
                    name = key if len(slots) == 1 else f"{slot}:{key}"
                    out[name] = list(check.result.non_validated)
        return out

    def add_new_from(self, key: str, *, slot: str | None = None) -> list[str]:
        """Create registry records (of the feature's label type) for the values of column
        `key` that name none; returns the values added."""
        return self._curator._table(key, slot).add_new_from(key, self._curator.instance)


class DataFrameCurator(Curator):
    """A pandas DataFrame against a schema's members (slot ""); `features`: artifact-level
    feature values saved with it."""

    otype = "DataFrame"

    def __init__(
        self, df: Any, schema: Schema, *, features: Mapping[str, Any] | None = None
    ) -> None:
        import pandas as pd

        from lakeline.curators.table import TableCurator, TableSpec, table_specs

        super().__init__(df, schema, features=features)
        if not isinstance(df, pd.DataFrame):
            raise CurationError(
                f"DataFrameCurator takes a pandas DataFrame, got {type(df).__name__}"
            )
        specs = table_specs(schema)
        other = sorted(s for s in specs if s)
        if other:
            raise CurationError(
                f"schema {schema.name!r} has slots {other}: it describes a composite object "
                "(use AnnDataCurator or MuDataCurator)"
            )
        spec = specs.get("", TableSpec(""))
        self.slots[""] = TableCurator(df, spec, schema, "DataFrame")


def _anndata_slots(
    curator: Curator, adata: Any, specs: Mapping[str, Any], prefix: str = ""
) -> None:
    """Table curators for an AnnData's obs and var (var names are always checked for
    duplicates: a var index with duplicates cannot be curated)."""
    from lakeline.curators.table import TableCurator, TableSpec

    for part in ("obs", "var"):
        slot = prefix + part
        spec = specs.get(slot)
        if spec is None and part == "obs":
            continue
        frame = getattr(adata, part)

        def set_index(index: Any, adata: Any = adata, part: str = part) -> None:
            setattr(adata, f"{part}_names", index)

        curator.slots[slot] = TableCurator(
            frame,
            spec or TableSpec(slot),
            curator.schema,
            slot,
            set_index=set_index,
            unique_index=part == "var",
        )


class AnnDataCurator(Curator):
    """An AnnData against a schema with slots `obs` and `var` (`var.index`: the registry
    field the var names must be in, e.g. a feature of dtype cat[Gene.symbol])."""

    otype = "AnnData"

    def __init__(
        self, adata: Any, schema: Schema, *, features: Mapping[str, Any] | None = None
    ) -> None:
        from lakeline.curators.table import table_specs

        super().__init__(adata, schema, features=features)
        if type(adata).__name__ != "AnnData":
            raise CurationError(f"AnnDataCurator takes an AnnData, got {type(adata).__name__}")
        specs = table_specs(schema)
        unknown = sorted(s for s in specs if s not in ("obs", "var"))
        if unknown:
            raise CurationError(
                f"schema {schema.name!r}: an AnnData has slots 'obs' and 'var' "
                f"(their indexes 'obs.index', 'var.index'), not {unknown}"
            )
        _anndata_slots(self, adata, specs)


class MuDataCurator(Curator):
    """A MuData against a schema with per-modality slots (`rna:obs`, `rna:var`,
    `rna:var.index`) and the global `obs`; each modality is curated on its own."""

    otype = "MuData"

    def __init__(
        self, mdata: Any, schema: Schema, *, features: Mapping[str, Any] | None = None
    ) -> None:
        from lakeline.curators.table import TableCurator, table_specs

        super().__init__(mdata, schema, features=features)
        if type(mdata).__name__ != "MuData":
            raise CurationError(f"MuDataCurator takes a MuData, got {type(mdata).__name__}")
        specs = table_specs(schema)
        modalities: dict[str, dict[str, Any]] = {}
        for slot, spec in specs.items():
            if slot == "obs":
                self.slots["obs"] = TableCurator(mdata.obs, spec, schema, "obs")
                continue
            modality, _, part = slot.partition(":")
            if part not in ("obs", "var"):
                raise CurationError(
                    f"schema {schema.name!r}: slot {slot!r} is not 'obs' or '<modality>:obs' "
                    "/ '<modality>:var'"
                )
            if modality not in mdata.mod:
                raise CurationError(
                    f"schema {schema.name!r} names modality {modality!r}, which the MuData "
                    f"lacks (it has {', '.join(map(repr, mdata.mod))})"
                )
            modalities.setdefault(modality, {})[slot] = spec
        for modality, mod_specs in modalities.items():
            _anndata_slots(self, mdata.mod[modality], mod_specs, prefix=f"{modality}:")
