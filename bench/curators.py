"""DataFrameCurator figures: validate and save_artifact on a 100k x 10 DataFrame with three
categorical columns. Prints figures; asserts nothing about time.

    uv run python bench/curators.py [--db sqlite|postgres|both] [--rows 100000] [--repeats 5]

The frame: `cell_type` (50 labels of a type), `tissue` (20), `donor` (2,000) as pandas
Categoricals of typed ULabels; four float columns, two int columns, one str column. The
schema names all ten (maximal_set). Figures, each the best of `--repeats` runs:

- validate: a new curator and `validate()` (columns, dtypes, the three categoricals against
  their registries: one query each for the distinct values);
- validate, coercing: the same with two float columns given as text (`coerce_dtype=True`),
  cast by the curator (a fresh copy of the frame each run, copying outside the timing);
- validate, 1% bad labels: 3 values per categorical not in the registry, the problem table
  built with close matches (printing to a buffer);
- save_artifact: a new curator's validate(), the frame written as parquet, hashed, stored,
  and the artifact, schema link and 2,070 label links written in one transaction (each run a
  new version: one value changes); `to_parquet` alone is timed for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import start_postgres  # bench/ is first on sys.path

CATS = {"cell_type": 50, "tissue": 20, "donor": 2_000}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def best_ms(fn: Callable[[], Any], repeats: int, before: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def frame(rows: int, seed: int = 7) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for name, n in CATS.items():
        names = [f"{name} {i}" for i in range(n)]
        data[name] = pd.Categorical.from_codes(rng.integers(0, n, rows), categories=names)
    for i in range(4):
        data[f"x{i}"] = rng.normal(size=rows)
    data["n_genes"] = rng.integers(0, 5_000, rows)
    data["n_counts"] = rng.integers(0, 50_000, rows)
    data["barcode"] = [f"AAAC{i:08d}-1" for i in range(rows)]
    return pd.DataFrame(data)


def setup() -> Any:
    import lakeline as ll

    features = []
    for name, n in CATS.items():
        kind = ll.ULabel(name=f"{name}_type", is_type=True).save()
        ll.save([ll.ULabel(name=f"{name} {i}", type=kind) for i in range(n)])
        features.append(ll.Feature(name=name, dtype=f"cat[ULabel[{name}_type]]"))
    features += [ll.Feature(name=f"x{i}", dtype=float) for i in range(4)]
    features += [ll.Feature(name="n_genes", dtype=int), ll.Feature(name="n_counts", dtype=int)]
    features.append(ll.Feature(name="barcode", dtype=str))
    ll.save(features)
    names = [f.name for f in features]
    plain = ll.Schema(name="bench", features=names, maximal_set=True).save()
    coerced = ll.Schema(name="bench-coerce", features=names, maximal_set=True,
                        coerce_dtype=True).save()  # fmt: skip
    return plain, coerced


def run(db: str, base: Path, args: argparse.Namespace) -> dict[str, float]:
    import lakeline as ll
    from lakeline.errors import CurationError

    server = None
    url = None
    try:
        if db == "postgres":
            started = start_postgres("bench_curators")
            if isinstance(started, str):
                log(f"[postgres] skipped: {started}")
                return {}
            server, url = started
        ll.init(storage=base / f"data-{db}", db=url, name=f"bench-{db}")
        plain, coerced = setup()
        df = frame(args.rows)
        out: dict[str, float] = {}
        curators = ll.curators

        out["validate"] = best_ms(
            lambda: curators.DataFrameCurator(df, plain).validate(), args.repeats
        )
        texts: dict[str, Any] = {}

        def copy_as_text() -> None:
            texts["df"] = df.copy()
            for column in ("x0", "x1"):
                texts["df"][column] = texts["df"][column].astype(str)

        out["validate, coercing 2 float columns from text"] = best_ms(
            lambda: curators.DataFrameCurator(texts["df"], coerced).validate(),
            args.repeats,
            copy_as_text,
        )
        bad = df.copy()
        for column in CATS:
            extra = [f"{column} new {i}" for i in range(3)] + [f"{column} 1x"]
            series = bad[column].cat.add_categories(extra)
            series.iloc[:3] = [f"{column} new {i}" for i in range(3)]
            series.iloc[3] = f"{column} 1x"  # a typo: close match
            bad[column] = series

        def failing() -> None:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(CurationError):
                curators.DataFrameCurator(bad, plain).validate()

        out["validate, bad labels (problem table)"] = best_ms(failing, args.repeats)
        out["to_parquet alone"] = best_ms(
            lambda: df.to_parquet(base / "alone.parquet"), args.repeats
        )
        counter = iter(range(10**6))

        def change() -> None:
            df.loc[0, "x0"] = float(next(counter))

        out["save_artifact"] = best_ms(
            lambda: curators.DataFrameCurator(df, plain).save_artifact(key="bench/obs.parquet"),
            args.repeats,
            change,
        )
        versions = ll.Artifact.filter(key="bench/obs.parquet", is_latest=None).count()
        labels = ll.Artifact.get(key="bench/obs.parquet").labels.get().count()
        log(f"[{db}] {versions} versions saved; the latest has {labels} labels")
        ll.disconnect()
        return out
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-curators-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    os.environ.setdefault("LAKELINE_CACHE_DIR", str(base / "cache"))
    load = os.getloadavg()[0]
    results: dict[str, dict[str, float]] = {}
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            log(f"[{db}] running ...")
            results[db] = run(db, base, args)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"DataFrameCurator, {args.rows:,} rows x 10 columns (3 categorical), "
          f"best of {args.repeats}; load {load:.2f} -> {os.getloadavg()[0]:.2f}")  # fmt: skip
    dbs = list(results)
    print(f"{'figure':<48}" + "".join(f"{db:>12}" for db in dbs))
    for figure in next(iter(results.values()), {}):
        cells = "".join(f"{results[db].get(figure, float('nan')):>9.0f} ms" for db in dbs)
        print(f"{figure:<48}{cells}")


if __name__ == "__main__":
    main()
