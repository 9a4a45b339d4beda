"""ULabel: a free label, typed (`type` is a ULabel with `is_type`) and hierarchical (parents)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.db.partial import partial_index
from lakeline.models.base import AUTOINCREMENT, Base, LongText, RecordMixin, Str
from lakeline.models.feature import join_synonyms
from lakeline.validation import CanValidate

if TYPE_CHECKING:
    from lakeline.query import QuerySet


class ULabel(RecordMixin, CanValidate, Base):
    """A label: `ULabel(name="T cell", type=cell_type, parents=[immune_cell])`.

    `ULabel.validate/inspect/standardize/from_values(values)` check values against the names
    (and synonyms) of all labels; `label.add_synonym()`, `label.set_abbr()` (CanValidate).

    A label type is a ULabel saved with `is_type=True`; names are unique within a type.
    """

    __tablename__ = "ulabels"
    search_fields = ("name", "synonyms", "abbr", "description")
    __table_args__ = (
        partial_index(
            "uq_ulabels_type_id_name",
            "type_id",
            "name",
            unique=True,
            where="type_id IS NOT NULL",
        ),
        partial_index(
            "uq_ulabels_name_untyped",
            "name",
            unique=True,
            where="type_id IS NULL",
        ),
        Index("ix_ulabels_name", "name"),
        AUTOINCREMENT,
    )

    name: Mapped[str] = mapped_column(Str(255))
    description: Mapped[str | None] = mapped_column(LongText)
    synonyms: Mapped[str | None] = mapped_column(LongText)
    abbr: Mapped[str | None] = mapped_column(Str(64))
    is_type: Mapped[bool] = mapped_column(default=False)
    type_id: Mapped[int | None] = mapped_column(ForeignKey("ulabels.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)

    if TYPE_CHECKING:  # given to the constructor, written by save; not columns
        _type: ULabel | None
        _parents: list[ULabel]

    def __init__(
        self,
        name: str,
        *,
        type: ULabel | None = None,
        is_type: bool = False,
        parents: Sequence[ULabel] = (),
        description: str | None = None,
        synonyms: str | list[str] | None = None,
        abbr: str | None = None,
    ) -> None:
        from lakeline.annotations.records import check_label_refs, check_name

        checked = check_name("ULabel", name)
        self._type, self._parents = check_label_refs(checked, type, parents)
        # straight into the instance dict (the ORM's per-attribute events cost 10x more; bulk
        # creation makes many): a new record is only ever INSERTed, from these values
        self.__dict__.update(
            name=checked,
            is_type=bool(is_type),
            description=description,
            synonyms=join_synonyms(synonyms),
            abbr=abbr,
            type_id=None if type is None else type.id,
        )

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "name", "is_type", "type_id")

    def save(self) -> ULabel:
        """Record the label; one of the same name and type is returned instead."""
        from lakeline.annotations.records import save_records

        return save_records([self], self.instance)[0]  # type: ignore[return-value]

    @property
    def type(self) -> ULabel | None:
        """The label's type (a ULabel with `is_type`), if any."""
        from lakeline.query import get_by_id

        if self.type_id is None:
            return getattr(self, "_type", None)
        return get_by_id(ULabel, self.type_id, self.instance)

    @property
    def parents(self) -> QuerySet[ULabel]:
        """The labels directly above this one."""
        from sqlalchemy import select

        from lakeline.query import QuerySet

        above = select(ULabelParent.parent_id).where(ULabelParent.child_id == self.id)
        return QuerySet(ULabel, self.instance).filter(ULabel.id.in_(above))

    @property
    def children(self) -> QuerySet[ULabel]:
        """The labels directly below this one."""
        from sqlalchemy import select

        from lakeline.query import QuerySet

        below = select(ULabelParent.child_id).where(ULabelParent.parent_id == self.id)
        return QuerySet(ULabel, self.instance).filter(ULabel.id.in_(below))

    @property
    def records(self) -> QuerySet[ULabel]:
        """For a label type: the labels of this type."""
        from lakeline.query import QuerySet

        return QuerySet(ULabel, self.instance).filter(type_id=self.id)


class ULabelParent(Base):
    """An edge of the label hierarchy (a DAG): `child` is below `parent`."""

    __tablename__ = "ulabel_parents"

    child_id: Mapped[int] = mapped_column(
        ForeignKey("ulabels.id", ondelete="CASCADE"), primary_key=True
    )
    parent_id: Mapped[int] = mapped_column(
        ForeignKey("ulabels.id", ondelete="CASCADE"), primary_key=True, index=True
    )
