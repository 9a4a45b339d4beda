"""Many tabular artifacts as one: a pyarrow dataset over parquet/csv artifacts, and DuckDB SQL
over it.

`open_tables(artifacts)` never reads data: it reads one file's schema and lists the files; each
row of the dataset carries the artifact's key in the column `artifact_key` (a constant
partition expression per file, filled in by pyarrow's scanner). Local files are read in place,
remote ones through the storage's fsspec filesystem (no download, no cache).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lakeline.errors import IncompatibleMembers, LakelineError, QueryError, UnsupportedObject

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.models import Artifact

KEY_COLUMN = "artifact_key"
_TABLE_FORMATS = ("parquet", "csv")


def _format_of(artifacts: list[Artifact]) -> str:
    from lakeline.formats.registry import for_suffix

    names: dict[str | None, str | None] = {}
    for artifact in artifacts:
        fmt = for_suffix(artifact.suffix or "")
        name = fmt.name if fmt is not None else None
        if name not in _TABLE_FORMATS or artifact.n_files is not None:
            raise UnsupportedObject(
                f"artifact {artifact.uid} ({artifact.key}) is not a parquet or csv file: only "
                "tabular files open as one dataset"
            )
        names.setdefault(name, artifact.key)
    if len(names) > 1:
        shown = ", ".join(f"{n} ({k})" for n, k in names.items())
        raise IncompatibleMembers(f"mixed table formats cannot be one dataset: {shown}")
    return str(next(iter(names)))


def _arrow_fs(fs: Any) -> Any:
    import pyarrow.fs as pafs

    from lakeline.formats.registry import is_local

    if is_local(fs):
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def open_tables(artifacts: Iterable[Artifact], instance: Instance | None = None) -> Any:
    """One lazy pyarrow dataset over the artifacts' rows, with their key in `artifact_key`.
    `instance`: the one the artifacts belong to (default: the instance of the first)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakeline.artifacts.access import require_bytes
    from lakeline.db.session import check_own
    from lakeline.lineage.usage import note_use
    from lakeline.storage.roots import join, strip_protocol

    members = list(artifacts)
    if not members:
        raise LakelineError("no artifacts to open: the query matched none")
    name = _format_of(members)
    file_format = ds.ParquetFileFormat() if name == "parquet" else ds.CsvFileFormat()
    instance = instance or members[0].instance
    by_storage: dict[int, list[Artifact]] = {}
    for artifact in members:
        check_own(artifact, instance)
        require_bytes(artifact, instance)
        by_storage.setdefault(artifact.storage_id, []).append(artifact)
    schema = None
    children = []
    for storage_id, group in by_storage.items():
        storage = instance.storage_by_id(storage_id)
        fs = _arrow_fs(instance.fs(storage))
        paths = [strip_protocol(join(storage.root, a.store_key)) for a in group]
        if schema is None:
            try:
                first = file_format.inspect(paths[0], filesystem=fs)
            except (OSError, pa.ArrowException) as exc:
                raise LakelineError(
                    f"cannot read the schema of artifact {group[0].uid} ({group[0].key}): {exc}"
                ) from exc
            if KEY_COLUMN in first.names:
                raise IncompatibleMembers(
                    f"artifact {group[0].key} has a column {KEY_COLUMN!r} of its own"
                )
            schema = first.append(pa.field(KEY_COLUMN, pa.string()))
        keys = [ds.field(KEY_COLUMN) == pa.scalar(a.key or a.uid, pa.string()) for a in group]
        children.append(
            ds.FileSystemDataset.from_paths(
                paths, schema=schema, format=file_format, filesystem=fs, partitions=keys
            )
        )
    for artifact in members:
        note_use(artifact, instance)
    return children[0] if len(children) == 1 else ds.UnionDataset(schema, children)


def duckdb(artifacts: Iterable[Artifact] | Any, name: str = "artifacts") -> Any:
    """A DuckDB connection with a view `name` over the artifacts' rows (see `open_tables`):
    `ll.duckdb(qs).sql("SELECT artifact_key, count(*) FROM artifacts GROUP BY 1")`."""
    from lakeline.formats.registry import require

    duck = require("duckdb", "duckdb")
    dataset = artifacts if _is_dataset(artifacts) else open_tables(artifacts)
    connection = duck.connect()
    connection.register(name, dataset)
    return ArtifactsConnection(connection, duck.Error)


class ArtifactsConnection:
    """The DuckDB connection `ll.duckdb` returns: `sql`, `execute` and `query` turn DuckDB's
    errors about a query (a missing column or table, bad syntax) into one-line `QueryError`s;
    everything else is the connection's own (`.connection` is the DuckDB object)."""

    def __init__(self, connection: Any, error: type[Exception]) -> None:
        self.connection = connection
        self._error = error

    def _run(self, method: str, query: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.connection, method)(query, *args, **kwargs)
        except self._error as exc:
            message = str(exc).split("\n\n", 1)[0].replace("\n", " ")
            raise QueryError(f"DuckDB query over artifacts failed: {message}") from exc

    def sql(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return self._run("sql", query, *args, **kwargs)

    def query(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return self._run("query", query, *args, **kwargs)

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return self._run("execute", query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    def __enter__(self) -> ArtifactsConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


def _is_dataset(value: Any) -> bool:
    import pyarrow.dataset as ds

    return isinstance(value, ds.Dataset)
