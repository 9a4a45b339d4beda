"""Schema: a feature set (identity = hash of its members), with otype, flags and slots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.models.base import AUTOINCREMENT, Base, LongText, RecordMixin, Str
from lakeline.models.feature import Feature  # mapped first: a foreign key's target

if TYPE_CHECKING:
    from lakeline.query import QuerySet

    Members = Sequence[Feature | str]


class Schema(RecordMixin, Base):
    """A feature set: `Schema(name="sc-obs", features=[...], otype="DataFrame")`.

    `optional`: members that may be absent (the others are required). `slots`: the member
    sets of a composite object, e.g. `{"obs": [...], "var": [...]}` for an AnnData
    (`"rna:obs"` for a MuData modality). `index`: a categorical feature the row index must
    take its values from (`cat[Gene.symbol]`), stored as the member of slot `index`; a slot's
    index is the member of slot `<slot>.index` (`{"var.index": [gene_symbol]}`).
    `minimal_set`: every required member must be present; `maximal_set`: nothing else may be;
    `ordered_set`: in this order; `coerce_dtype`: values are cast to the features' dtypes.
    Saving the same members and settings again returns the existing schema.
    """

    __tablename__ = "schemas"
    __table_args__ = AUTOINCREMENT
    search_fields = ("name", "description")

    name: Mapped[str] = mapped_column(Str(255), unique=True)
    description: Mapped[str | None] = mapped_column(LongText)
    otype: Mapped[str | None] = mapped_column(Str(64))
    hash: Mapped[str] = mapped_column(Str(64), unique=True)
    n_members: Mapped[int] = mapped_column(default=0)
    minimal_set: Mapped[bool] = mapped_column(default=True)
    maximal_set: Mapped[bool] = mapped_column(default=False)
    ordered_set: Mapped[bool] = mapped_column(default=False)
    coerce_dtype: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)

    if TYPE_CHECKING:  # given to the constructor, resolved by save; not columns
        _members: list[tuple[str, Feature | str, bool]]

    def __init__(
        self,
        features: Members = (),
        *,
        name: str,
        description: str | None = None,
        otype: str | None = None,
        optional: Members = (),
        slots: Mapping[str, Members] | None = None,
        index: Feature | str | None = None,
        minimal_set: bool = True,
        maximal_set: bool = False,
        ordered_set: bool = False,
        coerce_dtype: bool = False,
    ) -> None:
        from lakeline.annotations.records import check_name, schema_members

        super().__init__(
            name=check_name("Schema", name),
            description=description,
            otype=otype,
            minimal_set=bool(minimal_set),
            maximal_set=bool(maximal_set),
            ordered_set=bool(ordered_set),
            coerce_dtype=bool(coerce_dtype),
        )
        if index is not None:
            slots = {**(slots or {}), "index": [index]}
        self._members = schema_members(self.name, features, optional, slots)

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "name", "otype", "n_members")

    def save(self) -> Schema:
        """Record the schema and its members; the same members and settings return the
        existing schema (a schema of the same name with other members is an error)."""
        from lakeline.annotations.records import save_records

        return save_records([self], self.instance)[0]  # type: ignore[return-value]

    @property
    def features(self) -> QuerySet[Feature]:
        """The member features (of every slot)."""
        from sqlalchemy import select

        from lakeline.query import QuerySet

        ids = select(SchemaFeature.feature_id).where(SchemaFeature.schema_id == self.id)
        return QuerySet(Feature, self.instance).filter(Feature.id.in_(ids))

    @property
    def members(self) -> list[tuple[str, Feature, bool]]:
        """(slot, feature, required) per member, in position order ("" = no slot)."""
        from sqlalchemy import select

        from lakeline.models.feature import Feature

        stmt = (
            select(SchemaFeature.slot, Feature, SchemaFeature.required)
            .join(Feature, Feature.id == SchemaFeature.feature_id)
            .where(SchemaFeature.schema_id == self.id)
            .order_by(SchemaFeature.slot, SchemaFeature.position)
        )
        with self.instance.sessions.read() as session:
            return [(slot, feature, required) for slot, feature, required in session.execute(stmt)]


class SchemaFeature(Base):
    """A member of a schema: a feature in a slot, at a position, required or optional."""

    __tablename__ = "schema_features"

    schema_id: Mapped[int] = mapped_column(
        ForeignKey("schemas.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[str] = mapped_column(Str(64), primary_key=True, default="")
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    required: Mapped[bool] = mapped_column(default=True)
