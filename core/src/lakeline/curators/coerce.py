"""A column against its feature's dtype: checked, and cast when the schema says
`coerce_dtype` (pandas does the work; nulls are allowed and stay null)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeline.curators.problems import shown

if TYPE_CHECKING:
    import pandas as pd

    from lakeline.annotations.dtypes import DType

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass
class Fit:
    """The outcome for one column: the column (cast when coerced), and when it does not fit,
    what is wrong and a few of the values that do not fit."""

    series: pd.Series
    wrong: str | None = None
    bad: list[Any] | None = None
    changed: bool = False


def _bad(series: pd.Series, mask: Any) -> list[Any]:
    return list(dict.fromkeys(series[mask].tolist()))


def _values(series: pd.Series) -> pd.Series:
    """A categorical column's categories (what its values are), else the column."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        return pd.Series(series.cat.categories)
    return series


def fit(series: pd.Series, dtype: DType, coerce: bool) -> Fit:
    """Check `series` against `dtype`; cast it first when `coerce`."""
    import pandas as pd
    from pandas.api import types as pdt

    notna = series.notna()
    if dtype.is_list:
        listed = series[notna].map(lambda v: isinstance(v, (list, tuple)) or hasattr(v, "tolist"))
        if bool(listed.all()):
            return Fit(series)
        return Fit(series, "not lists", _bad(series[notna], ~listed))
    base = dtype.base
    if base in ("str", "cat"):
        values = _values(series)
        kind = pdt.infer_dtype(values, skipna=True)
        if kind in ("string", "empty"):
            return Fit(series)
        if coerce:
            if isinstance(series.dtype, pd.CategoricalDtype):
                return Fit(series.cat.rename_categories(lambda c: str(c)), changed=True)
            return Fit(series.where(~notna, series.astype(str)), changed=True)
        strings = values.map(lambda v: isinstance(v, str) or v is None or v != v)
        return Fit(series, f"{kind} values, not text", _bad(values, ~strings))
    if base == "dict":
        dicts = series[notna].map(lambda v: isinstance(v, dict))
        return (
            Fit(series)
            if bool(dicts.all())
            else Fit(series, "not dicts", _bad(series[notna], ~dicts))
        )
    if base == "bool":
        if pdt.is_bool_dtype(series.dtype):
            return Fit(series)
        if not coerce:
            return Fit(series, f"dtype {series.dtype}, not bool", _bad(series, notna)[:5])
        words = series[notna].map(lambda v: str(v).strip().lower())
        unknown = ~words.isin(_TRUE | _FALSE)
        if bool(unknown.any()):
            return Fit(series, "not true/false", _bad(series[notna], unknown))
        cast = pd.Series(pd.NA, index=series.index, dtype="boolean")
        cast[notna] = words.isin(_TRUE).to_numpy()
        return Fit(cast, changed=True)
    if base in ("int", "float", "num"):
        return _numbers(series, base, coerce, notna)
    return _dates(series, base, coerce, notna)


def _numbers(series: pd.Series, base: str, coerce: bool, notna: pd.Series) -> Fit:
    import pandas as pd
    from pandas.api import types as pdt

    numeric = pdt.is_numeric_dtype(series.dtype) and not pdt.is_bool_dtype(series.dtype)
    integer = numeric and pdt.is_integer_dtype(series.dtype)
    if integer or (numeric and base != "int" and (base == "num" or pdt.is_float_dtype(series))):
        return Fit(series)
    if not coerce:
        return Fit(series, f"dtype {series.dtype}, not {base}", _bad(series, notna)[:5])
    cast = pd.to_numeric(series, errors="coerce")
    failed = notna & cast.isna()
    if bool(failed.any()):
        return Fit(series, f"not {base} numbers", _bad(series, failed))
    if base == "int":
        fractional = cast.notna() & (cast % 1 != 0)
        if bool(fractional.any()):
            return Fit(series, "not whole numbers", _bad(series, fractional))
        return Fit(cast.astype("Int64"), changed=True)
    return Fit(cast.astype("float64"), changed=True)


def _dates(series: pd.Series, base: str, coerce: bool, notna: pd.Series) -> Fit:
    import datetime as dt

    import pandas as pd
    from pandas.api import types as pdt

    if pdt.is_datetime64_any_dtype(series.dtype):
        return Fit(series)
    if base == "date":
        dates = series[notna].map(lambda v: isinstance(v, dt.date))
        if len(dates) and bool(dates.all()):
            return Fit(series)
    if not coerce:
        return Fit(series, f"dtype {series.dtype}, not {base}", _bad(series, notna)[:5])
    cast = pd.to_datetime(series, errors="coerce", utc=base == "datetime")
    failed = notna & cast.isna()
    if bool(failed.any()):
        return Fit(series, f"not {base}s", _bad(series, failed))
    return Fit(cast, changed=True)


def describe_misfit(column: str, dtype: DType, result: Fit, coerce: bool) -> tuple[str, str]:
    """(detail, fix) for a column that does not fit its dtype."""
    detail = f"{result.wrong}: {shown(result.bad or [])}"
    if coerce:
        fix = f"fix these values (they cannot be cast to {dtype.text})"
    else:
        fix = f"cast the column to {dtype.text}, or save the schema with coerce_dtype=True"
    return detail, fix
