"""The real single-cell files in `../shared/data/` (never copied into the repository)."""

from __future__ import annotations

from pathlib import Path

from lakeline.testing import unavailable

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PBMC = "10x_pbmc68k_reduced.h5ad"
OLIGO = "oligodendroglioma.h5ad"
WU2020 = "wu2020_200.h5mu"


def shared(name: str) -> Path:
    """A file of ../shared/data; skips the test (fails it in CI) when it is not there."""
    path = DATA / name
    if not path.is_file():
        unavailable(f"real test data not found at {path}")
    return path
