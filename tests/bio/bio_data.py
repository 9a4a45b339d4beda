"""The real single-cell files in `../shared/data/` for lakeline-bio's tests (never copied)."""

from __future__ import annotations

from pathlib import Path

from lakeline.testing import unavailable

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def shared(name: str) -> Path:
    """A file of ../shared/data; skips the test (fails it in CI) when it is not there."""
    path = DATA / name
    if not path.is_file():
        unavailable(f"real test data not found at {path}")
    return path


def var_names(name: str) -> list[str]:
    import anndata

    adata = anndata.read_h5ad(shared(name), backed="r")
    try:
        return list(adata.var_names)
    finally:
        adata.file.close()


def obs_column(name: str, column: str) -> list[str]:
    import anndata

    adata = anndata.read_h5ad(shared(name), backed="r")
    try:
        return [str(v) for v in adata.obs[column]]
    finally:
        adata.file.close()
