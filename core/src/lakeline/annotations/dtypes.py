"""Feature dtypes: parsed from strings or Python types, and values checked against them.

A dtype is one of `str int float num bool date datetime dict`, a categorical `cat`,
`cat[Registry]`, `cat[Registry.field]`, `cat[Registry[Type]]`, `cat[module.Registry]`,
`cat[module.Registry.field]` (values are records of the registry, named by its name field or
`field`, of that type), or `list[...]` of any of those but `dict`. A dotted first part that
names an installed schema module is the module (docs/modules.md); otherwise it is a registry
and the second part its field. Label registries (ULabel, a module's `LabelRecord`s) store
links; other registries (Feature, a module's `Record`s with the validation mixin) store the
field's text in value_str. `Registry` resolves in `annotations/registries`.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lakeline.errors import AnnotationError, InvalidDtype, ModuleError

SIMPLE = ("str", "int", "float", "num", "bool", "date", "datetime", "dict")
MAX_STR = 512  # characters of a str value (indexed: fits a PostgreSQL btree entry)
_PYTHON = {str: "str", int: "int", float: "float", bool: "bool", dict: "dict"}
_PYTHON_DATES = {date: "date", datetime: "datetime"}
_CAT = re.compile(r"cat(?:\[\s*(\w+)(?:\.(\w+))?(?:\.(\w+))?\s*(?:\[\s*([^\[\]]+?)\s*\])?\s*\])?")
_KNOWN = (
    "str, int, float, num, bool, date, datetime, dict, cat, cat[Registry], "
    "cat[Registry.field], cat[ULabel[Type]], cat[module.Registry], "
    "cat[module.Registry.field], list[...]"
)
# which value column each dtype fills (cat values are label links, not values)
COLUMNS = {
    "str": "value_str",
    "int": "value_int",
    "float": "value_float",
    "num": "value_float",
    "bool": "value_bool",
    "date": "value_datetime",
    "datetime": "value_datetime",
    "dict": "value_json",
}


@dataclass(frozen=True)
class DType:
    """A parsed dtype: its base (`str` ... `dict` or `cat`), whether it is a list, and for
    categoricals the registry, its field (None: the registry's name field) and the type."""

    base: str
    is_list: bool = False
    registry: str | None = None
    type_name: str | None = None
    field: str | None = None

    @property
    def text(self) -> str:
        """The canonical spelling, as stored."""
        inner = self.base
        if self.base == "cat":
            typed = f"[{self.type_name}]" if self.type_name else ""
            field = f".{self.field}" if self.field else ""
            inner = f"cat[{self.registry}{field}{typed}]"
        return f"list[{inner}]" if self.is_list else inner

    @property
    def is_label(self) -> bool:
        """A categorical of a label registry (ULabel, a module's LabelRecord): its values are
        links, not values."""
        if self.base != "cat":
            return False
        if self.registry == "ULabel":
            return True
        if self.registry is None or "." not in self.registry:
            return False
        from lakeline.modules.records import LabelRecord

        return issubclass(registry_model(self), LabelRecord)

    @property
    def column(self) -> str | None:
        """The feature_values column of this dtype (None for label categoricals; records of
        other registries are stored by the text of their field)."""
        if self.base == "cat":
            return None if self.is_label else "value_str"
        return COLUMNS.get(self.base)


def parse_dtype(value: Any) -> DType:
    """Parse a dtype string or Python type (`float`, `datetime`, `list[int]`); InvalidDtype
    names what is wrong and what is known."""
    if isinstance(value, type):
        if value in _PYTHON_DATES:
            return DType(_PYTHON_DATES[value])
        if value in _PYTHON:
            return DType(_PYTHON[value])
        if value is list:
            raise InvalidDtype("dtype list needs an element dtype, e.g. list[int] or list[cat]")
        raise InvalidDtype(f"unknown dtype {value.__name__!r}; known: {_KNOWN}")
    args = getattr(value, "__args__", None)
    if getattr(value, "__origin__", None) is list and args and len(args) == 1:
        inner = parse_dtype(args[0])
        return _listed(inner, value)
    if not isinstance(value, str):
        raise InvalidDtype(f"unknown dtype {value!r}; known: {_KNOWN}")
    text = value.strip()
    listed = re.fullmatch(r"list\[\s*(.+?)\s*\]", text)
    if listed:
        return _listed(parse_dtype(listed.group(1)), value)
    if text in SIMPLE:
        return DType(text)
    match = _CAT.fullmatch(text)
    if match:
        return _categorical(match, value)
    close = difflib.get_close_matches(text.lower(), [*SIMPLE, "cat"], n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise InvalidDtype(f"unknown dtype {value!r}; {hint}known: {_KNOWN}")


def _categorical(match: re.Match[str], given: Any) -> DType:
    """`cat[...]` from its parts: `a`, `a.b`, `a.b.c` and a type."""
    first, second, third, type_name = match.groups()
    if second is None:
        return DType("cat", registry=first or "ULabel", type_name=type_name)
    if third is not None or _is_module(first):
        if third is not None and not _is_module(first):
            from lakeline.modules.spec import get

            try:
                get(first)
            except ModuleError as exc:
                raise InvalidDtype(f"dtype {given!r}: {exc}") from None
        return DType("cat", registry=f"{first}.{second}", type_name=type_name, field=third)
    return DType("cat", registry=first, type_name=type_name, field=second)


def _is_module(name: str) -> bool:
    """Whether `name` is an installed schema module (`cat[name.Registry]`). Module names are
    lowercase: a capitalized name (`cat[Gene.symbol]`) is a registry without calling the
    modules hook, so a core-only instance never does."""
    if not name[:1].islower():
        return False
    from lakeline.modules.spec import installed

    return name in installed()


def registry_model(dtype: DType) -> type[Any]:
    """The model whose records a categorical dtype takes: ULabel, a module's registry, or
    the registry with the validation mixin of that name; InvalidDtype when there is none."""
    if dtype.registry is None or dtype.registry == "ULabel":
        from lakeline.models import ULabel

        return ULabel
    if "." in dtype.registry:
        from lakeline.modules.spec import registry

        try:
            return registry(dtype.registry)
        except ModuleError as exc:
            raise InvalidDtype(f"dtype {dtype.text!r}: {exc}") from None
    from lakeline.annotations.registries import find_registry

    try:
        return find_registry(dtype.registry, dtype.text)
    except InvalidDtype as exc:
        if dtype.field is None or not dtype.registry[:1].islower():
            raise
        from lakeline.modules.spec import installed

        modules = ", ".join(sorted(installed())) or "none"
        raise InvalidDtype(
            f"{exc}; nor is it a module: no installed schema module is named "
            f"{dtype.registry!r} (installed: {modules})"
        ) from None


def _listed(inner: DType, given: Any) -> DType:
    if inner.is_list or inner.base == "dict":
        raise InvalidDtype(
            f"dtype {given!r}: a list holds str, int, float, num, bool, dates or cat"
        )
    return DType(inner.base, True, inner.registry, inner.type_name, inner.field)


def _fail(feature: str, dtype: DType, value: Any, fix: str) -> AnnotationError:
    return AnnotationError(
        f"value {value!r} ({type(value).__name__}) does not fit feature {feature!r} of dtype "
        f"{dtype.text}: {fix}"
    )


def convert(feature: str, dtype: DType, value: Any) -> Any:
    """One (non-list, non-categorical) value as stored in its column; AnnotationError naming
    the value, the feature and the fix when it does not fit."""
    base = dtype.base
    if value is None:
        raise _fail(feature, dtype, value, "leave the feature out instead of passing None")
    if base == "str" or (base == "cat" and not dtype.is_label):
        if not isinstance(value, str):
            raise _fail(feature, dtype, value, "pass a string")
        if len(value) > MAX_STR:
            raise _fail(
                feature, dtype, value[:40] + "...", f"str values hold at most {MAX_STR} characters"
            )
        return value
    if base == "bool":
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return bool(value)
        raise _fail(feature, dtype, value, "pass True or False")
    if base in ("int", "float", "num"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _fail(feature, dtype, value, "pass a number")
        if base == "int":
            if not isinstance(value, numbers.Integral):
                fix = "pass an integer, or make the feature's dtype float or num"
                raise _fail(feature, dtype, value, fix)
            number = int(value)
            if not -(2**63) <= number < 2**63:
                raise _fail(feature, dtype, value, "integers are stored as 64-bit")
            return number
        number_f = float(value)
        if not math.isfinite(number_f):
            raise _fail(feature, dtype, value, "pass a finite number (no NaN or infinity)")
        return number_f
    if base == "date":
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise _fail(feature, dtype, value, "pass a date or 'YYYY-MM-DD'") from None
        if isinstance(value, datetime) or not isinstance(value, date):
            raise _fail(feature, dtype, value, "pass a date (datetime.date or 'YYYY-MM-DD')")
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if base == "datetime":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise _fail(
                    feature, dtype, value, "pass a datetime or an ISO 8601 string"
                ) from None
        if not isinstance(value, datetime):
            raise _fail(feature, dtype, value, "pass a timezone-aware datetime")
        if value.tzinfo is None:
            raise _fail(feature, dtype, value, "pass a timezone-aware datetime (tzinfo set)")
        return value.astimezone(UTC)
    if base == "dict":
        if not isinstance(value, dict):
            raise _fail(feature, dtype, value, "pass a dict")
        return value
    raise _fail(feature, dtype, value, "categorical values are labels")  # pragma: no cover


def values_of(feature: str, dtype: DType, value: Any) -> list[Any]:
    """The values a feature takes from `value`: one, or each element of a list dtype's list
    (a categorical may take one label name/record or a list of them)."""
    if dtype.is_list or dtype.base == "cat":
        if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ in (
            "ndarray",
            "Series",
            "Index",
            "Categorical",
        ):
            items = list(value)
        elif dtype.is_list and dtype.base != "cat":
            raise _fail(feature, dtype, value, "pass a list")
        else:
            items = [value]
    else:
        items = [value]
    if dtype.is_label:
        return items
    return [convert(feature, dtype, item) for item in items]


def read_back(dtype: DType, stored: Any) -> Any:
    """A stored value as the user gave it (a date for `date`)."""
    if dtype.base == "date" and isinstance(stored, datetime):
        return stored.date()
    if dtype.base == "int" and stored is not None:
        return int(stored)
    return stored
