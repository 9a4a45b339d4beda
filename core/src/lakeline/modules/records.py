"""Records of schema modules: `Record` (uid, creator, run, save, queries) and `LabelRecord`
(a record that annotates artifacts through a link table the core adds for it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, Table, select
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from lakeline.db.partial import is_partial, partial_index
from lakeline.errors import AnnotationError
from lakeline.models.base import RecordMixin, UTCDateTime

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.models import Artifact, Run, User
    from lakeline.query import QuerySet

LINK_SUFFIX = "_artifacts"


class Record(RecordMixin):
    """A module registry's record: `id`, `uid`, `created_at`, `created_by_id`, `run_id`,
    `save()` and the queries every registry has (`filter`, `get`, `search`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        from lakeline.models import load_all

        load_all()  # its foreign keys (and its link table's) may name any core table
        super().__init_subclass__(**kwargs)  # maps the class (DeclarativeBase)
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table):
            table.info["lakeline_module"] = True  # lakeline.db.migrate.include_object_for
            if issubclass(cls, LabelRecord):
                cls.__link_table__ = link_table(table.metadata, table.name)

    @declared_attr
    def run_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("runs.id"), index=True)

    def _repr_fields(self) -> tuple[str, ...]:
        name = getattr(type(self), "_name_field", "name")
        table: Table = getattr(type(self), "__table__")  # noqa: B009 (mapped subclasses have it)
        return ("uid", name) if name in table.c else ("uid",)

    @classmethod
    def filter(cls, *expressions: Any, **lookups: Any) -> QuerySet[Self]:
        """Records matching `field__op=value` lookups (and optional SQLAlchemy expressions)."""
        return cls._mounted().filter(*expressions, **lookups)

    @classmethod
    def get(cls, uid: str | None = None, /, **lookups: Any) -> Self:
        """The one record with this uid (or matching the lookups); raises if none or several."""
        if uid is not None:
            lookups["uid"] = uid
        return cls._mounted().get(**lookups)

    @classmethod
    def search(
        cls, text: str, *, limit: int | None = 20, exhaustive: bool = False
    ) -> QuerySet[Self]:
        """Records whose text fields match `text`, best matches first (`QuerySet.search`)."""
        return cls._mounted().search(text, limit=limit, exhaustive=exhaustive)

    @classmethod
    def _mounted(cls) -> QuerySet[Self]:
        """All records, of the current instance, which must mount the registry's module."""
        from lakeline.modules.mounting import check_mounted

        query = super().filter()
        check_mounted(cls, query.instance)
        return query

    def save(self) -> Self:
        """Record it (with the current user and run); when the registry's name field is
        unique, a record of the same name is returned instead."""
        saved: Self = save_records([self], self.instance)[0]
        return saved

    @property
    def created_by(self) -> User | None:
        """The user who created the record."""
        from lakeline.models import User
        from lakeline.query import get_by_id

        if self.created_by_id is None:
            return None
        return get_by_id(User, self.created_by_id, self.instance)

    @property
    def run(self) -> Run | None:
        """The run that was tracked when the record was created."""
        from lakeline.models import Run
        from lakeline.query import get_by_id

        return None if self.run_id is None else get_by_id(Run, self.run_id, self.instance)


class LabelRecord(Record):
    """A record that can label artifacts and be the value of a `cat[<module>.<Registry>]`
    feature; its link table `<table>_artifacts` is added to the metadata with the class."""

    __link_table__: ClassVar[Table]

    @property
    def artifacts(self) -> QuerySet[Artifact]:
        """The artifacts this record labels (plainly or as a feature's value)."""
        from lakeline.models import Artifact
        from lakeline.query import QuerySet

        if self.id is None:
            raise AnnotationError(f"save {self!r} before asking for its artifacts")
        link = type(self).__link_table__
        linked = select(link.c.artifact_id).where(link.c.record_id == self.id)
        return QuerySet(Artifact, self.instance).filter(Artifact.id.in_(linked))


def link_table(metadata: MetaData, target: str) -> Table:
    """The link table of label registry `target` (layout 1: keep it, or add a layout 2 with
    a migration): one row per (artifact, record, feature or none)."""
    name = target + LINK_SUFFIX
    if name in metadata.tables:
        return metadata.tables[name]

    def fk(column: str, ondelete: str | None = None) -> ForeignKey:
        return ForeignKey(column, name=f"fk_{name}_{column.split('.')[0]}", ondelete=ondelete)

    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("artifact_id", Integer, fk("artifacts.id", "CASCADE"), nullable=False),
        Column("record_id", Integer, fk(f"{target}.id", "CASCADE"), nullable=False),
        Column("feature_id", Integer, fk("features.id", "CASCADE")),
        Column("run_id", Integer, fk("runs.id"), index=True),
        Column("created_by_id", Integer, fk("users.id")),
        Column("created_at", UTCDateTime(), nullable=False),
        partial_index(f"uq_{name}_feature", "artifact_id", "record_id", "feature_id",
                      unique=True, where="feature_id IS NOT NULL"),
        partial_index(f"uq_{name}_plain", "artifact_id", "record_id", unique=True,
                      where="feature_id IS NULL"),
        Index(f"ix_{name}_record_id", "record_id", "feature_id", "artifact_id"),
        info={"lakeline_module": True},
    )  # fmt: skip


def create_link_table(op: Any, target: str) -> None:
    """In a module's migration: create the link table of label registry `target`."""
    from lakeline.models.base import NAMING_CONVENTION

    bind = op.get_bind()
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    metadata.reflect(bind, only=[target, "artifacts", "features", "runs", "users"])
    link_table(metadata, target).create(bind)


def drop_link_table(op: Any, target: str) -> None:
    """In a module's migration: drop the link table of label registry `target`."""
    op.drop_table(target + LINK_SUFFIX)


def name_column(model: type[Any]) -> Any | None:
    """The registry's name field when it is unique (records of one name are one record)."""
    column = model.__table__.c.get(getattr(model, "_name_field", "name"))
    if column is None:
        return None
    if column.unique or any(
        ix.unique and list(ix.columns) == [column] and not is_partial(ix)
        for ix in model.__table__.indexes
    ):
        return column
    return None


def save_records(records: Sequence[Any], instance: Instance) -> list[Any]:
    """Save module records in one transaction, stamped with the current user and run; a new
    record whose unique name exists is that record. Registries are written in the order
    their records first appear (save a record before others point to it); new rows go in
    bulk (COPY on PostgreSQL, one executemany on SQLite), as labels do."""
    from lakeline.annotations.records import insert_records
    from lakeline.db.rows import chunks, one_of
    from lakeline.db.session import check_own, merge_edits
    from lakeline.lineage.context import current_run_in
    from lakeline.modules.mounting import check_mounted
    from lakeline.validation import CanValidate, check_new_names

    for record in records:
        if not isinstance(record, Record):
            raise AnnotationError(f"cannot save {record!r} with module records")
    run = current_run_in(instance)
    groups: dict[type[Any], list[Any]] = {}
    for record in records:
        groups.setdefault(type(record), []).append(record)
    for model in groups:
        check_mounted(model, instance)
    for model, group in groups.items():
        if issubclass(model, CanValidate):
            field = model._name_field
            names = [getattr(r, field) for r in group if r.id is None and getattr(r, field)]
            if names:
                check_new_names(model, names, instance=instance, stacklevel=3)
    saved: dict[int, Any] = {}
    with instance.sessions.write() as session:
        for model, group in groups.items():
            fresh = []
            for record in group:
                if record.id is not None:
                    check_own(record, instance)
                    saved[id(record)] = merge_edits(session, record)
                else:
                    fresh.append(record)
            column = name_column(model)
            known: dict[Any, Any] = {}
            if column is not None and fresh:
                names = sorted({getattr(r, column.key) for r in fresh})
                for chunk in chunks(names):
                    stmt = select(model).where(one_of(session, column, chunk))
                    known.update((getattr(row, column.key), row) for row in session.scalars(stmt))
            new = []
            for record in fresh:
                key = None if column is None else getattr(record, column.key)
                if key is not None and key in known:
                    saved[id(record)] = known[key]
                    continue
                record._ensure_uid()
                record.created_by_id = instance.user.id
                record.run_id = None if run is None else run.id
                if key is not None:
                    known[key] = record
                new.append(record)
            session.flush()  # edits merged above
            insert_records(session, model, new)
        session.expunge_all()
    return [saved.get(id(r), r) for r in records]


def bulk_insert(session: Any, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows of a module's table (each with a `uid`, same keys, no `id`) in bulk, in the
    session's transaction, and return their ids in order: the core's path for records (COPY on
    PostgreSQL, staged under row-level security; one statement on SQLite)."""
    from lakeline.db.rows import insert_rows

    return insert_rows(session, table, rows, unique="uid")


def new_record_stamp(instance: Instance) -> dict[str, Any]:
    """`created_at`, `created_by_id` and `run_id` (the instance's current run) of new records
    inserted in bulk, as `Record.save()` would set them."""
    from lakeline.annotations.values import new_stamp

    return new_stamp(instance)
