"""Artifact: a file, folder or array store with its hash, storage location and producing run."""

from collections.abc import Callable
from functools import cache
from os import PathLike
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, true
from sqlalchemy.orm import Mapped, mapped_column

from lakeline.db.partial import partial_index
from lakeline.models.base import (
    AUTOINCREMENT,
    Base,
    KeyString,
    LongText,
    RecordMixin,
    Str,
    VersionedMixin,
)

if TYPE_CHECKING:
    from pathlib import Path

    from lakeline.annotations.values import FeatureManager, LabelManager
    from lakeline.lineage.graph import LineageGraph
    from lakeline.lineage.render import SVGView
    from lakeline.models.run import Run
    from lakeline.models.storage import Storage
    from lakeline.query import QuerySet


@cache
def _describing() -> tuple[Callable[..., None], Callable[[], Any]]:
    """`describe.prepare` and `instance.current`, imported on first use (they import the
    models) and once: two import statements per `Artifact()` cost ~1.2 us."""
    from lakeline.artifacts.describe import prepare
    from lakeline.instance import current

    return prepare, current


KIND_LENGTH = 64  # artifacts.kind


class Artifact(RecordMixin, VersionedMixin, Base):
    """A file, folder or serialized object registered in the catalog.

    `Artifact(path_or_object, key=...)` describes; `.save()` hashes, stores and records it.
    """

    __tablename__ = "artifacts"
    search_fields = ("key", "description")
    __table_args__ = (
        partial_index(
            "uq_artifacts_latest_key",
            "key",
            unique=True,
            where="is_latest AND key IS NOT NULL",
        ),
        partial_index(
            "uq_artifacts_latest_stem",
            "stem",
            unique=True,
            where="is_latest",
        ),
        Index("ix_artifacts_key", "key"),
        Index("ix_artifacts_storage_id_store_key", "storage_id", "store_key"),
        partial_index(
            "ix_artifacts_unavailable",
            "storage_id",
            "store_key",
            where="NOT available",
        ),
        AUTOINCREMENT,
    )

    key: Mapped[str | None] = mapped_column(KeyString(1024))
    description: Mapped[str | None] = mapped_column(LongText)
    suffix: Mapped[str] = mapped_column(Str(64), default="")
    kind: Mapped[str | None] = mapped_column(Str(KIND_LENGTH))
    otype: Mapped[str | None] = mapped_column(Str(64))
    size: Mapped[int | None] = mapped_column(BigInteger, index=True)
    hash: Mapped[str | None] = mapped_column(Str(128), index=True)
    hash_type: Mapped[str | None] = mapped_column(Str(32))
    n_files: Mapped[int | None] = mapped_column()
    n_observations: Mapped[int | None] = mapped_column(BigInteger)
    storage_id: Mapped[int] = mapped_column(ForeignKey("storages.id"))
    store_key: Mapped[str] = mapped_column(KeyString(2048))
    in_place: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    # False for references: data lakeline knows of (a URL, maybe a hash) but holds no bytes for
    available: Mapped[bool] = mapped_column(default=True, server_default=true())
    # the stored bytes as written at save time (`m:<mtime_ns>` locally, `e:<etag>` in object
    # stores): with `size`, what every read checks before trusting them (None: size only)
    store_tag: Mapped[str | None] = mapped_column(Str(128))
    # True: recorded in place through a symlink (its key the link's path, its place the
    # target's: it stands for the link, never for the file there, `keying.may_be`); False: not;
    # None: recorded before migration 0028 (the file system tells, as it can)
    through_link: Mapped[bool | None] = mapped_column(nullable=True)

    if TYPE_CHECKING:  # set by describe.prepare on new artifacts; not columns
        _source: str
        _source_is_dir: bool
        _staged: bool
        _source_size: int  # local sources: the size when described (a hint for the save)
        _created: bool
        _reference: bool
        _used_only: bool  # recorded as only used by a step (no producer): `keying.may_be`

    def __init__(
        self,
        data: str | PathLike[str] | Any,
        *,
        key: str | None = None,
        description: str | None = None,
        kind: str | None = None,
        version: str | None = None,
        format: str | None = None,
        run: "Run | None" = None,
    ) -> None:
        prepare, current = _describing()  # no super().__init__(): it only sets keywords
        prepare(
            self,
            data,
            key=key,
            description=description,
            kind=kind,
            version=version,
            format=format,
            run=run,
            instance=current,
        )

    def _repr_fields(self) -> tuple[str, ...]:
        return ("uid", "key", "suffix", "size", "version", "is_latest")

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_dataframe(cls, df: Any, *, key: str | None = None, **kwargs: Any) -> "Artifact":
        """Describe a pandas DataFrame, stored as parquet unless `key` or `format` says csv."""
        kwargs.setdefault("format", "csv" if key and key.endswith(".csv") else "parquet")
        return cls(df, key=key, **kwargs)

    @classmethod
    def from_anndata(cls, adata: Any, *, key: str | None = None, **kwargs: Any) -> "Artifact":
        """Describe an AnnData object, stored as h5ad (or `format="zarr"`)."""
        kwargs.setdefault("format", "zarr" if key and key.endswith(".zarr") else "h5ad")
        return cls(adata, key=key, **kwargs)

    @classmethod
    def from_mudata(cls, mdata: Any, *, key: str | None = None, **kwargs: Any) -> "Artifact":
        """Describe a MuData object, stored as h5mu (needs `lakeline[mudata]`)."""
        kwargs.setdefault("format", "h5mu")
        return cls(mdata, key=key, **kwargs)

    @classmethod
    def from_tiledbsoma(
        cls, store: str | PathLike[str] | Any, *, key: str | None = None, **kwargs: Any
    ) -> "Artifact":
        """Describe a TileDB-SOMA store (a folder, `.tiledbsoma`) by its URI or an open
        `tiledbsoma.Experiment`; saving it again after appending data makes a new version."""
        uri = getattr(store, "uri", store)
        if not isinstance(uri, (str, PathLike)):
            raise TypeError(f"from_tiledbsoma takes a store URI or a SOMA object, got {store!r}")
        text = str(uri).removeprefix("file://").rstrip("/")
        if not text.endswith(".tiledbsoma"):
            from lakeline.errors import InvalidKey

            raise InvalidKey(
                f"a SOMA store is saved from a folder named *.tiledbsoma: rename {text}"
            )
        return cls(text, key=key, **kwargs)

    @classmethod
    def reference(
        cls,
        location: str | PathLike[str],
        *,
        key: str | None = None,
        hash: str | None = None,
        hash_type: str | None = None,
        size: int | None = None,
        description: str | None = None,
        kind: str | None = None,
        run: "Run | None" = None,
    ) -> "Artifact":
        """Describe data lakeline knows of but holds no bytes for: a table, a `lid://` output,
        an object known by its checksum. Nothing is read; `.save()` records it unavailable.

        `location`: a URL of any scheme or a local path. The same location with the same hash
        (or both without one) is the same record; a new hash under a key is a new version.
        A `hash` needs its `hash_type`. Saving a file with that hash later (same location or
        key, same hash type) makes the record available instead of adding a duplicate.
        """
        from sqlalchemy.orm.instrumentation import manager_of_class

        from lakeline.artifacts.reference import describe_reference

        artifact: Artifact = manager_of_class(cls).new_instance()
        describe_reference(
            artifact,
            location,
            key=key,
            hash=hash,
            hash_type=hash_type,
            size=size,
            description=description,
            kind=kind,
            run=run,
        )
        return artifact

    # -- persistence ----------------------------------------------------------------------------

    def save(self) -> "Artifact":
        """Hash, store and record this artifact atomically; return the saved record.

        Identical content under the same key returns the existing record; new content under
        an existing key becomes its new version. A record of another instance (`using()`) is
        transferred into the current one: same uid, bytes left where they are.
        """
        from lakeline.artifacts.save import save_artifacts
        from lakeline.instance import current

        target = current()
        if self.id is not None and self.instance.uid != target.uid:  # of another instance
            from lakeline.transfers import transfer

            return transfer([self], target)[0]
        return save_artifacts([self], self.instance)[0]

    def delete(self, *, permanent_bytes: bool = True) -> None:
        """Delete the record; its stored bytes go too when nothing else references them.

        Files registered in place (inside a storage root) are never removed from disk.
        """
        from lakeline.artifacts.delete import delete_artifact

        delete_artifact(self, self.instance, delete_bytes=permanent_bytes)

    @property
    def created(self) -> bool:
        """Whether the last `save()` of this object wrote a new record (False: it existed)."""
        return bool(getattr(self, "_created", False))

    # -- access ---------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """Where the bytes live: a local path or an fsspec URL (`ArtifactUnavailable` for a
        reference: see `location`)."""
        from lakeline.artifacts.locate import artifact_path

        return artifact_path(self, self.instance)

    @property
    def location(self) -> str:
        """Where the data is: the bytes' path or URL, or the location a reference names."""
        from lakeline.artifacts.locate import artifact_url

        return artifact_url(self, self.instance)

    def cache(self) -> str:
        """Return a local path to the bytes, downloading (and verifying) remote ones once."""
        from lakeline.artifacts.access import cache

        return cache(self, self.instance)

    def load(self, **kwargs: Any) -> Any:
        """Load the artifact into memory with its format plugin (DataFrame, AnnData, ...)."""
        from lakeline.artifacts.access import load

        return load(self, self.instance, **kwargs)

    def open(self, **kwargs: Any) -> Any:
        """Open a lazy, backed handle (pyarrow dataset, backed AnnData, zarr group, file)."""
        from lakeline.artifacts.access import open_artifact

        return open_artifact(self, self.instance, **kwargs)

    # -- relations ------------------------------------------------------------------------------

    @property
    def versions(self) -> "QuerySet[Artifact]":
        """All versions of this artifact, oldest first."""
        from lakeline.query import QuerySet

        return (
            QuerySet(Artifact, self.instance).filter(stem=self.stem, is_latest=None).order_by("uid")
        )

    @property
    def storage(self) -> "Storage":
        """The storage this artifact's bytes live in."""
        from lakeline.models.storage import Storage
        from lakeline.query import get_by_id

        return get_by_id(Storage, self.storage_id, self.instance)

    @property
    def run(self) -> "Run | None":
        """The run that produced this artifact, if known."""
        from lakeline.models.run import Run
        from lakeline.query import get_by_id

        return None if self.run_id is None else get_by_id(Run, self.run_id, self.instance)

    # -- annotations ----------------------------------------------------------------------------

    @property
    def features(self) -> "FeatureManager":
        """The artifact's feature values: `.add_values({...})`, `.get_values()`."""
        from lakeline.annotations.values import FeatureManager

        return FeatureManager(self, self.instance)

    @property
    def labels(self) -> "LabelManager":
        """The artifact's labels: `.add(label_or_list, feature=None)`, `.get()`."""
        from lakeline.annotations.values import LabelManager

        return LabelManager(self, self.instance)

    def describe(self) -> None:
        """Print the artifact as a tree: key, version, storage, run, features, labels,
        schemas (`lakeline describe KEY` prints the same)."""
        from lakeline.annotations.describe import describe

        describe(self, self.instance)

    # -- lineage --------------------------------------------------------------------------------

    def lineage(
        self,
        direction: str = "upstream",
        depth: int | None = None,
        *,
        include_parents: bool = False,
        collapse_workflows: bool = False,
    ) -> "LineageGraph":
        """Runs and artifacts this one came from (upstream) or led to (downstream), or both.

        `depth` counts runs: 1 = the producing run and its inputs (upstream); None = no limit.
        """
        from lakeline.lineage.graph import lineage

        return lineage(
            self,
            direction,
            depth,
            include_parents=include_parents,
            collapse_workflows=collapse_workflows,
        )

    def view_lineage(
        self,
        path: str | PathLike[str] | None = None,
        format: str = "svg",
        *,
        direction: str = "upstream",
        depth: int | None = None,
        include_parents: bool = False,
        collapse_workflows: bool = False,
    ) -> "Path | SVGView":
        """Draw the lineage: inline SVG in a notebook; elsewhere write a file and return its path.

        Without `path`, the file goes to `<cache>/lineage/<uid>-<direction>.<ext>`.
        """
        from lakeline.lineage.render import view

        graph = self.lineage(
            direction,
            depth,
            include_parents=include_parents,
            collapse_workflows=collapse_workflows,
        )
        return view(graph, path, format)
