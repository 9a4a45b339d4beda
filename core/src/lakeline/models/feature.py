"""Feature: a named, typed dimension of data (a column, an annotation), with unit and synonyms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import AUTOINCREMENT, Base, LongText, RecordMixin, Str
from lakeline.validation import CanValidate

if TYPE_CHECKING:
    from lakeline.annotations.dtypes import DType


def join_synonyms(synonyms: str | list[str] | tuple[str, ...] | None) -> str | None:
    """Synonyms as stored: one text, `|`-separated (a list is joined; a `|` inside one is an
    error)."""
    from lakeline.errors import AnnotationError

    if synonyms is None or isinstance(synonyms, str):
        return synonyms or None
    for item in synonyms:
        if not isinstance(item, str) or "|" in item:
            raise AnnotationError(f"synonym {item!r} must be a string without '|'")
    return "|".join(synonyms) or None


class Feature(RecordMixin, CanValidate, Base):
    """A feature: `Feature(name="temperature", dtype=float, unit="°C")`.

    `Feature.validate/inspect/standardize/from_values(names)` check column names against the
    features' names and synonyms; `feature.add_synonym()`, `feature.set_abbr()` (CanValidate).

    `dtype`: str, int, float, num, bool, date, datetime, dict, cat, cat[ULabel],
    cat[ULabel[Type]], cat[Registry] / cat[Registry.field] (any registry with the validation
    mixin) or list[...] of those (a Python type works too).
    """

    __tablename__ = "features"
    __table_args__ = AUTOINCREMENT
    search_fields = ("name", "synonyms", "abbr", "description")

    name: Mapped[str] = mapped_column(Str(255), unique=True)
    dtype: Mapped[str] = mapped_column(Str(255))
    unit: Mapped[str | None] = mapped_column(Str(64))
    description: Mapped[str | None] = mapped_column(LongText)
    synonyms: Mapped[str | None] = mapped_column(LongText)
    abbr: Mapped[str | None] = mapped_column(Str(64))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)

    def __init__(
        self,
        name: str,
        dtype: Any,
        *,
        unit: str | None = None,
        description: str | None = None,
        synonyms: str | list[str] | None = None,
        abbr: str | None = None,
    ) -> None:
        from lakeline.annotations.dtypes import parse_dtype
        from lakeline.annotations.records import check_name
        from lakeline.annotations.registries import check_registry
        from lakeline.errors import InvalidDtype

        name = check_name("Feature", name)
        try:
            parsed = parse_dtype(dtype)
            check_registry(parsed, dtype)
        except InvalidDtype as exc:  # name the feature: which one of a batch is wrong
            raise InvalidDtype(f"feature {name!r}: {exc}") from None
        super().__init__(
            name=name,
            dtype=parsed.text,
            unit=unit,
            description=description,
            synonyms=join_synonyms(synonyms),
            abbr=abbr,
        )

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "name", "dtype", "unit")

    @property
    def parsed_dtype(self) -> DType:
        """The dtype, parsed."""
        from lakeline.annotations.dtypes import parse_dtype

        return parse_dtype(self.dtype)

    def save(self) -> Feature:
        """Record the feature; one of the same name is returned instead (an error when its
        dtype differs)."""
        from lakeline.annotations.records import save_records

        return save_records([self], self.instance)[0]  # type: ignore[return-value]
