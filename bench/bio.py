"""lakeline-bio figures: importing public ontologies and genes, validating real gene symbols,
searching the public ontologies.

    uv run python bench/bio.py [--db sqlite|postgres|both] [--repeats 3]

Per database, a fresh instance mounting `bio` (SQLite in a temporary folder, PostgreSQL on a
throwaway cluster on /dev/shm):

- read: parsing a source into its DataFrame, once per process (cold; what the first
  `public()` or import of a release pays);
- import: `import_source()` of CL, UBERON, MONDO and the human genes (GENCODE 48), each one
  transaction, the source already read;
- validate the 9,450 oligodendroglioma symbols (`Gene.validate(..., organism="human")`, one
  query), standardize them (synonyms of the 79k human genes), inspect the 765 pbmc68k symbols;
- public (no database): first `search` of CL (builds the index), then the median of 50
  searches; validate the 9,450 symbols against the public gene table.

Best of `--repeats` for the repeatable figures; asserts nothing about time. Needs
../shared/data for the symbol figures (skipped without it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUERIES = ["T cell", "Tregs", "monocyte", "CD14+ Monocyte", "natural killer", "B lymphocyte",
           "dendritic", "hepatocyte", "neuron", "oligodendrocyte"]  # fmt: skip


def best_ms(fn: Callable[[], Any], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs) * 1000


def symbols(name: str) -> list[str] | None:
    path = DATA / name
    if not path.is_file():
        return None
    import anndata

    adata = anndata.read_h5ad(path, backed="r")
    try:
        return list(adata.var_names)
    finally:
        adata.file.close()


def reads() -> dict[str, float]:
    """Cold reads of the sources the imports use (this process's first read of each)."""
    from lakeline_bio.catalog import find_source

    out = {}
    for label, source in (
        ("CL", find_source("CellType")),
        ("UBERON", find_source("Tissue")),
        ("MONDO", find_source("Disease")),
        ("genes human", find_source("Gene", organism="human")),
    ):
        start = time.perf_counter()
        frame = source.read()
        out[f"read {label} ({len(frame):,} rows)"] = (time.perf_counter() - start) * 1000
    return out


def run(db: str, base: Path, args: argparse.Namespace) -> dict[str, float]:
    import lakeline as ll
    from lakeline_bio.models import CellType, Disease, Gene, Tissue

    server = None
    url = None
    try:
        if db == "postgres":
            from lakeline.testing_servers import PostgresServer

            shm = os.access("/dev/shm", os.W_OK)
            server = PostgresServer(parent_dir="/dev/shm" if shm else None).start()
            url = server.create_database("bench_bio")
        ll.init(storage=base / f"data-{db}", db=url, name=f"bench-{db}", modules=["bio"])
        out: dict[str, float] = {}
        for label, do in (
            ("import CL", CellType.import_source),
            ("import UBERON", Tissue.import_source),
            ("import MONDO", Disease.import_source),
            ("import human genes", lambda: Gene.import_source(organism="human")),
        ):
            start = time.perf_counter()
            created = do()
            out[f"{label} ({created:,} records)"] = (time.perf_counter() - start) * 1000
        oligo = symbols("oligodendroglioma.h5ad")
        pbmc = symbols("10x_pbmc68k_reduced.h5ad")
        if oligo is not None and pbmc is not None:
            out[f"validate {len(oligo):,} oligodendroglioma symbols"] = best_ms(
                lambda: Gene.validate(oligo, organism="human", mute=True), args.repeats
            )
            out[f"standardize {len(oligo):,} oligodendroglioma symbols"] = best_ms(
                lambda: Gene.standardize(oligo, organism="human"), args.repeats
            )
            out[f"inspect {len(pbmc):,} pbmc68k symbols"] = best_ms(
                lambda: Gene.inspect(pbmc, organism="human", mute=True).suggestions,
                args.repeats,
            )
        return out
    finally:
        from lakeline.instance import disconnect

        disconnect()
        if server is not None:
            server.stop()


def public_figures(args: argparse.Namespace) -> dict[str, float]:
    import lakeline_bio as bio

    out: dict[str, float] = {}
    cl = bio.CellType.public()
    start = time.perf_counter()
    cl.search("T cell")
    out["public CL: first search (builds the index)"] = (time.perf_counter() - start) * 1000
    samples = []
    for _ in range(5):
        for query in QUERIES:
            start = time.perf_counter()
            cl.search(query)
            samples.append(time.perf_counter() - start)
    out["public CL: search, median of 50"] = statistics.median(samples) * 1000
    mondo = bio.Disease.public()
    mondo.search("diabetes")
    out["public MONDO: search 'type 2 diabetes'"] = best_ms(
        lambda: mondo.search("type 2 diabetes"), args.repeats
    )
    genes = bio.Gene.public("human")
    start = time.perf_counter()
    genes.search("TP53")
    out["public genes: first search (builds the index)"] = (time.perf_counter() - start) * 1000
    out["public genes: search 'TP53'"] = best_ms(lambda: genes.search("TP53"), args.repeats)
    oligo = symbols("oligodendroglioma.h5ad")
    if oligo is not None:
        out[f"public genes: validate {len(oligo):,} symbols"] = best_ms(
            lambda: genes.validate(oligo, mute=True), args.repeats
        )
        out[f"public genes: standardize {len(oligo):,} symbols"] = best_ms(
            lambda: genes.standardize(oligo), args.repeats
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-bio-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, float]] = {}
    try:
        print("[read] parsing sources ...", file=sys.stderr)
        read = reads()
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            print(f"[{db}] running ...", file=sys.stderr)
            results[db] = run(db, base, args)
        public = public_figures(args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"load average (1 min): {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} now")
    print(f"{'source read (cold, once per process)':<58}{'ms':>12}")
    for label, ms in read.items():
        print(f"{label:<58}{ms:>12.0f}")
    dbs = list(results)
    print(f"\n{'figure':<58}" + "".join(f"{db + ' ms':>12}" for db in dbs))
    for label in results[dbs[0]]:
        print(f"{label:<58}" + "".join(f"{results[db].get(label, 0):>12.0f}" for db in dbs))
    print(f"\n{'public (no database)':<58}{'ms':>12}")
    for label, ms in public.items():
        print(f"{label:<58}{ms:>12.1f}")


if __name__ == "__main__":
    main()
