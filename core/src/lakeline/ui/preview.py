"""Previews (first rows of a table, AnnData shape and obs columns, text of a small file) and
the bytes of an artifact for download.

Bytes are read at the artifact's own location (its storage root joined with its `store_key`),
never at a path taken from the request, and never through `cache()`/`open()`: those record a
use when a run is current, and the UI writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lakeline.errors import ArtifactUnavailable, LakelineError
from lakeline.models import Artifact

TEXT_SUFFIXES = frozenset(
    [
        ".txt",
        ".md",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
        ".log",
        ".csv",
        ".tsv",
        ".fa",
        ".fasta",
        ".fastq",
        ".fq",
        ".vcf",
        ".bed",
        ".gtf",
        ".gff",
        ".sam",
        ".py",
        ".r",
        ".R",
        ".sh",
        ".nf",
        ".smk",
        ".cfg",
        ".ini",
        ".xml",
        ".html",
        ".sql",
        ".ipynb",
        ".tab",
    ]
)
TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".parquet"})
ANNDATA_SUFFIXES = frozenset({".h5ad", ".zarr"})
TEXT_BYTES = 64 * 1024
PREVIEW_ROWS = 20
REMOTE_TABLE_LIMIT = 64 * 1024 * 1024  # a remote table is read only up to this size
CHUNK = 1024 * 1024


@dataclass
class Preview:
    """What a preview shows: a table (columns, rows), a text, facts, or why there is none."""

    kind: str  # "table", "text", "anndata", "none"
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    text: str = ""
    facts: dict[str, str] = field(default_factory=dict)
    note: str = ""


def location(artifact: Artifact) -> tuple[Any, str, bool]:
    """(filesystem, path, is_local) of the artifact's own bytes; `ArtifactUnavailable` for a
    reference."""
    from lakeline.instance import current
    from lakeline.storage.roots import join, protocol_of, strip_protocol

    if not artifact.available:
        raise ArtifactUnavailable(
            f"artifact {artifact.uid} is a reference: lakeline holds no bytes"
        )
    instance = current()
    storage = instance.storage_by_id(artifact.storage_id)
    url = join(storage.root, artifact.store_key)
    if protocol_of(url) == "local":
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), url, True
    return instance.fs(storage), strip_protocol(url), False


def preview(artifact: Artifact) -> Preview:
    """A preview of the artifact; problems reading it become a note, never an error page."""
    if not artifact.available:
        return Preview("none", note="a reference: lakeline holds no bytes to preview")
    suffix = artifact.suffix.lower()
    try:
        if suffix in ANNDATA_SUFFIXES:
            return _anndata(artifact)
        if artifact.n_files is not None:
            return Preview("none", note=f"a folder of {artifact.n_files} files")
        if suffix in TABLE_SUFFIXES:
            return _table(artifact, suffix)
        if suffix in TEXT_SUFFIXES or (artifact.size or 0) <= TEXT_BYTES:
            return _text(artifact)
    except ImportError as exc:
        return Preview("none", note=f"no preview: {exc.name or exc} is not installed")
    except (LakelineError, OSError, ValueError, KeyError) as exc:
        return Preview("none", note=f"no preview: {type(exc).__name__}: {exc}")
    return Preview("none", note=f"no preview for {suffix or 'suffix-less'} files")


def _text(artifact: Artifact) -> Preview:
    fs, path, _ = location(artifact)
    with fs.open(path, "rb") as handle:
        data = handle.read(TEXT_BYTES + 1)
    if b"\0" in data[:8192]:
        return Preview("none", note="binary content: no text preview")
    text = data[:TEXT_BYTES].decode("utf-8", errors="replace")
    note = f"first {TEXT_BYTES // 1024} kB" if len(data) > TEXT_BYTES else ""
    return Preview("text", text=text, note=note)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _table(artifact: Artifact, suffix: str) -> Preview:
    fs, path, local = location(artifact)
    if not local and (artifact.size or 0) > REMOTE_TABLE_LIMIT:
        return Preview("none", note="a large remote table: download it to look inside")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            rows_total = parquet.metadata.num_rows
            batch = next(parquet.iter_batches(batch_size=PREVIEW_ROWS), None)
            columns = list(parquet.schema_arrow.names)
            data = batch.to_pylist() if batch is not None else []
        rows = [[_cell(r.get(c)) for c in columns] for r in data]
        return Preview(
            "table", columns=columns, rows=rows, facts={"rows": f"{rows_total:,}"}, note=""
        )
    import pandas as pd

    with fs.open(path, "rb") as handle:
        frame = pd.read_csv(handle, sep="\t" if suffix == ".tsv" else ",", nrows=PREVIEW_ROWS)
    columns = [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.astype(object).itertuples(index=False)]
    return Preview("table", columns=columns, rows=rows, note=f"first {PREVIEW_ROWS} rows")


def _anndata(artifact: Artifact) -> Preview:
    _, path, local = location(artifact)
    if not local:
        return Preview("none", note="a remote AnnData: download it to look inside")
    import anndata

    if artifact.suffix.lower() == ".h5ad":
        adata = anndata.read_h5ad(path, backed="r")
    else:
        adata = anndata.read_zarr(path)
    try:
        facts = {
            "shape": f"{adata.n_obs:,} observations x {adata.n_vars:,} variables",
            "obs columns": ", ".join(map(str, adata.obs.columns)) or "(none)",
            "var columns": ", ".join(map(str, adata.var.columns)) or "(none)",
            "layers": ", ".join(map(str, adata.layers.keys())) or "(none)",
            "obsm": ", ".join(map(str, adata.obsm.keys())) or "(none)",
        }
        columns = [str(c) for c in adata.obs.columns]
        head = adata.obs.head(PREVIEW_ROWS)
        pairs = zip(head.index, head.values, strict=True)
        rows = [[str(i), *(_cell(v) for v in r)] for i, r in pairs]
    finally:
        if getattr(adata, "isbacked", False):
            adata.file.close()
    return Preview("anndata", columns=["obs", *columns], rows=rows, facts=facts)


def download_name(artifact: Artifact) -> str:
    """The file name a download gets: the key's last part, else uid + suffix."""
    if artifact.key:
        return artifact.key.rstrip("/").rsplit("/", 1)[-1]
    return f"{artifact.uid}{artifact.suffix}"


def open_bytes(artifact: Artifact) -> tuple[Iterator[bytes], int | None]:
    """An iterator over the artifact's own bytes and their size.

    Opened before the response starts, so a missing object is an error page, not a cut
    download. Folders have no single file to send (`LakelineError`).
    """
    if artifact.n_files is not None:
        raise LakelineError(
            f"artifact {artifact.uid} is a folder of {artifact.n_files} files: "
            "fetch it with `lakeline get`"
        )
    fs, path, local = location(artifact)
    if local and not os.path.isfile(path):
        raise ArtifactUnavailable(f"the bytes of artifact {artifact.uid} are missing at {path}")
    handle = fs.open(path, "rb")

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(CHUNK):
                yield block

    return chunks(), artifact.size
