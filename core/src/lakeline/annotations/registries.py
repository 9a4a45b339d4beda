"""The registry a categorical dtype names, found generically: `cat[ULabel[CellType]]`,
`cat[Feature]`, `cat[Gene.symbol]` resolve through the mapped classes that use the validation
mixin (ULabel, Feature, and any registry a module defines), `cat[lab.Biosample]` through its
schema module (`dtypes.registry_model`), never through per-class code.

A `Target` is what a categorical's values are checked against: a registry, its text field and,
for a typed label dtype, the records of that type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeline.errors import AnnotationError, InvalidDtype

if TYPE_CHECKING:
    from sqlalchemy import Column
    from sqlalchemy.engine import Connection

    from lakeline.annotations.dtypes import DType


def registries(*, modules: bool = False) -> dict[str, list[type[Any]]]:
    """{class name: mapped classes of that name} of every registry with the validation mixin
    outside schema modules (`modules=True`: only schema modules' registries, which dtypes
    name as `module.Registry`)."""
    from lakeline.models import load_all
    from lakeline.modules.records import Record
    from lakeline.validation import CanValidate

    load_all()  # ULabel and Feature join the subclasses
    found: dict[str, list[type[Any]]] = {}
    todo = list(CanValidate.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if getattr(cls, "__table__", None) is None or issubclass(cls, Record) != modules:
            continue
        if cls not in found.get(cls.__name__, []):
            found.setdefault(cls.__name__, []).append(cls)
    return found


def find_registry(name: str, dtype_text: str | None = None) -> type[Any]:
    """The registry class called `name` (not a schema module's); InvalidDtype when there is
    none or several."""
    known = registries()
    where = f" in dtype {dtype_text!r}" if dtype_text else ""
    classes = known.get(name, [])
    if not classes:
        for model in registries(modules=True).get(name, []):
            from lakeline.modules.spec import module_of

            home = getattr(model, "_lakeline_module", None) or module_of(model)
            module = home if isinstance(home, str) else getattr(home, "name", "<module>")
            raise InvalidDtype(
                f"registry {name!r}{where} belongs to schema module {module!r}: spell it "
                f"cat[{module}.{name}]"
            )
        raise InvalidDtype(
            f"unknown registry {name!r}{where}; registries with the validation mixin: "
            f"{', '.join(sorted(known))} (import the module that defines {name!r})"
        )
    if len(classes) > 1:
        raise InvalidDtype(
            f"registry name {name!r}{where} is ambiguous: "
            f"{', '.join(f'{c.__module__}.{c.__qualname__}' for c in classes)}"
        )
    return classes[0]


def check_registry(dtype: DType, given: Any) -> None:
    """A categorical dtype's registry, field and type exist (Feature creation checks it)."""
    from lakeline.annotations.dtypes import registry_model
    from lakeline.validation import CanValidate
    from lakeline.validation.lookup import name_field

    if dtype.base != "cat" or dtype.registry is None:
        return
    model = registry_model(dtype)
    if not dtype.is_label and not issubclass(model, CanValidate):
        raise InvalidDtype(
            f"dtype {given!r}: {dtype.registry} is not a label registry (LabelRecord) and has "
            "no validation mixin (CanValidate), so its records cannot be feature values"
        )
    if dtype.field is not None:
        from lakeline.errors import QueryError

        try:
            name_field(model, dtype.field)
        except QueryError as error:
            raise InvalidDtype(f"dtype {given!r}: {error}") from None
    columns = model.__table__.columns
    if dtype.type_name is not None and ("type_id" not in columns or "is_type" not in columns):
        raise InvalidDtype(
            f"dtype {given!r}: {dtype.registry} records have no type; cat[Registry[Type]] "
            "is for typed registries (type_id and is_type fields) such as ULabel"
        )


@dataclass
class Target:
    """The records a categorical's values must name: `model.column`, within `type_id`."""

    model: type[Any]
    column: Column[Any]
    type_id: int | None = None
    type_name: str | None = None

    @property
    def label(self) -> str:
        """`ULabel[CellType].name`, `lab.Biosample.name` for messages."""
        typed = f"[{self.type_name}]" if self.type_name else ""
        module = getattr(self.model, "_lakeline_module", None)
        registry = f"{module}.{self.model.__name__}" if module else self.model.__name__
        return f"{registry}{typed}.{self.column.key}"

    @property
    def where(self) -> Any:
        """The condition selecting the target's records (None: all of the registry's)."""
        if self.type_id is None:
            return None
        return self.model.__table__.c.type_id == self.type_id

    def found(self, conn: Connection, values: list[str]) -> set[str]:
        """The values that name a record of the target (one query)."""
        from lakeline.validation.lookup import names_in

        return names_in(conn, self.column, values, self.where)


def target_of(conn: Connection, feature: str, dtype: DType) -> Target:
    """The target of a categorical feature's values; AnnotationError when its label type is
    gone."""
    from sqlalchemy import select

    from lakeline.annotations.dtypes import registry_model
    from lakeline.validation.lookup import name_field

    assert dtype.base == "cat" and dtype.registry is not None
    model = registry_model(dtype)
    column = name_field(model, dtype.field)
    if dtype.type_name is None:
        return Target(model, column)
    table = model.__table__
    stmt = select(table.c.id).where(
        table.c[name_field(model, None).key] == dtype.type_name, table.c.is_type.is_(True)
    )
    type_id = conn.execute(stmt).scalar()
    if type_id is None:
        raise AnnotationError(
            f"feature {feature!r} takes {dtype.type_name!r} records, and that type does not "
            f"exist: create it with ll.{model.__name__}(name={dtype.type_name!r}, "
            "is_type=True).save()"
        )
    return Target(model, column, type_id, dtype.type_name)


def check_records(session: Any, feature: Any, dtype: DType, values: list[Any]) -> None:
    """Every value of a categorical feature of a registry other than ULabel names one of its
    records; AnnotationError naming the value, the feature and the fix."""
    from lakeline.validation.lookup import preview

    target = target_of(session.connection(), feature.name, dtype)
    texts = [v for v in values if isinstance(v, str)]
    missing = sorted(set(texts) - target.found(session.connection(), sorted(set(texts))))
    if missing:
        raise AnnotationError(
            f"{preview(missing)} not in {target.label}, as feature {feature.name!r} "
            f"({dtype.text}) requires: create the records or fix the values"
        )
