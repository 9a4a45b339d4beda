"""Figures for array stores and collections (issue 15). Prints one line per figure.

    uv run --frozen python bench/arrays.py                 # 256 MB h5ad on moto S3, 1,000 parquet
    uv run --frozen python bench/arrays.py --h5ad-mb 1024  # the 1 GB figure

- mapped(): samples/s over the real h5ad files (../shared/data), plain random access and a
  torch DataLoader (batch 256, 2 workers, shuffled) when torch is importable;
- a large dense h5ad on a moto S3 server: open() + a 256-row slice (time, bytes fetched)
  against load() (time, bytes downloaded), and the same open locally;
- DuckDB: `ll.duckdb(qs)` + GROUP BY over N parquet artifacts;
- census-style: a SOMA store built from the real files, value-filter query to AnnData.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def line(name: str, value: str) -> None:
    print(f"{name:<58} {value}", flush=True)


def remote_bytes(location: str) -> int:
    from fsspec.spec import AbstractBufferedFile

    files = [
        o
        for o in gc.get_objects()
        if isinstance(o, AbstractBufferedFile) and str(o.path) == location
    ]
    return sum(int(f.cache.total_requested_bytes) for f in files)


def bench_mapped(ll: object, data: Path) -> None:
    import numpy as np

    lake = ll  # type: ignore[assignment]
    arts = [
        lake.Artifact(str(data / n), key=f"real/{n}").save()  # type: ignore[attr-defined]
        for n in ("10x_pbmc68k_reduced.h5ad", "oligodendroglioma.h5ad")
    ]
    ds = lake.Collection(arts, key="real").save().mapped(join="outer")  # type: ignore[attr-defined]
    order = np.random.default_rng(0).permutation(len(ds))
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        for i in order:
            ds[int(i)]
    rate = reps * len(ds) / (time.perf_counter() - t)
    line(
        f"mapped() random access, {ds.shape[0]}x{ds.shape[1]} outer join", f"{rate:,.0f} samples/s"
    )
    try:
        import torch
    except ImportError:
        line("mapped() + torch DataLoader", "skipped: torch is not installed")
        return
    loader = torch.utils.data.DataLoader(
        ds, batch_size=256, num_workers=2, shuffle=True, persistent_workers=True
    )
    for _ in loader:  # warm-up epoch: starts the workers, opens their handles
        pass
    epochs = 10
    t = time.perf_counter()
    n = sum(batch["X"].shape[0] for _ in range(epochs) for batch in loader)
    rate = n / (time.perf_counter() - t)
    line("mapped() + DataLoader(batch 256, 2 workers, shuffle)", f"{rate:,.0f} samples/s")


def bench_h5ad_s3(ll: object, mb: int, tmp: Path) -> None:
    import anndata as ad
    import numpy as np
    from lakeline.testing_servers import S3Server

    lake = ll  # type: ignore[assignment]
    n_vars = 2000
    n_obs = mb * 1024 * 1024 // (4 * n_vars)
    rng = np.random.default_rng(0)
    adata = ad.AnnData(X=rng.random((n_obs, n_vars), dtype="float32"))
    path = tmp / "big.h5ad"
    adata.write_h5ad(path)
    del adata
    size = path.stat().st_size
    local = lake.Artifact(str(path), key="big/local.h5ad").save()  # type: ignore[attr-defined]
    t = time.perf_counter()
    backed = local.open()
    assert backed[1000:1256].X.shape == (256, n_vars)
    backed.file.close()
    line(
        f"local h5ad {size / 2**20:,.0f} MB: open() + 256-row slice",
        f"{time.perf_counter() - t:.3f} s",
    )

    server = S3Server().start()
    try:
        server.create_bucket("bench-arrays")
        s3 = lake.init(  # type: ignore[attr-defined]
            storage="s3://bench-arrays/lake",
            name="bench-s3",
            storage_options=server.storage_options,
        )
        art = lake.Artifact(str(path), key="big/remote.h5ad").save()  # type: ignore[attr-defined]
        location = art.location.removeprefix("s3://")
        t = time.perf_counter()
        backed = art.open()
        opened = time.perf_counter() - t
        assert backed[1000:1256].X.shape == (256, n_vars)
        sliced = time.perf_counter() - t
        fetched = remote_bytes(location)
        backed.file.close()
        line(f"moto S3 h5ad {size / 2**20:,.0f} MB: open()", f"{opened:.3f} s")
        line(
            "moto S3 h5ad: open() + 256-row slice",
            f"{sliced:.3f} s, {fetched / 2**20:.1f} MB fetched ({100 * fetched / size:.2f}%)",
        )
        t = time.perf_counter()
        loaded = art.load()
        line(
            "moto S3 h5ad: load() (download, verify, read)",
            f"{time.perf_counter() - t:.3f} s, {size / 2**20:,.0f} MB read, shape {loaded.shape}",
        )
        del loaded, s3
    finally:
        server.stop()


def bench_duckdb(ll: object, n: int) -> None:
    import pandas as pd

    lake = ll  # type: ignore[assignment]
    arts = [
        lake.Artifact.from_dataframe(  # type: ignore[attr-defined]
            pd.DataFrame({"sample": [f"s{i % 7}"] * 100, "value": range(100)}),
            key=f"tables/{i:05d}.parquet",
        )
        for i in range(n)
    ]
    t = time.perf_counter()
    lake.save(arts)  # type: ignore[attr-defined]
    line(f"save {n:,} parquet artifacts (one batch)", f"{time.perf_counter() - t:.2f} s")
    qs = lake.Artifact.filter(key__startswith="tables/", suffix=".parquet")  # type: ignore[attr-defined]
    t = time.perf_counter()
    con = lake.duckdb(qs)  # type: ignore[attr-defined]
    built = time.perf_counter() - t
    rows = con.sql("SELECT sample, count(*) FROM artifacts GROUP BY sample").fetchall()
    total = time.perf_counter() - t
    line(f"ll.duckdb over {n:,} parquet artifacts: build view", f"{built:.2f} s")
    line(f"  + GROUP BY sample ({sum(r[1] for r in rows):,} rows)", f"{total:.2f} s in all")


def bench_census(ll: object, tmp: Path) -> None:
    import anndata as ad
    import tiledbsoma
    import tiledbsoma.io as soma_io

    lake = ll  # type: ignore[assignment]

    def slim(name: str, column: str) -> ad.AnnData:
        a = ad.read_h5ad(DATA / name)
        obs = a.obs[[column]].rename(columns={column: "cell_type"}).astype(str)
        obs.index.name = "obs_id"
        var = a.var[[]].copy()
        var.index.name = "var_id"
        return ad.AnnData(X=a.X, obs=obs, var=var)

    uri = str(tmp / "atlas.tiledbsoma")
    soma_io.from_anndata(
        uri, slim("10x_pbmc68k_reduced.h5ad", "bulk_labels"), measurement_name="RNA"
    )
    other = slim("oligodendroglioma.h5ad", "cell_type")
    mapping = soma_io.register_anndatas(
        uri, [other], measurement_name="RNA", obs_field_name="obs_id", var_field_name="var_id"
    )
    mapping.prepare_experiment(uri)
    soma_io.from_anndata(uri, other, measurement_name="RNA", registration_mapping=mapping)
    art = lake.Artifact.from_tiledbsoma(uri, key="atlas.tiledbsoma").save()  # type: ignore[attr-defined]
    t = time.perf_counter()
    with art.open() as exp:
        query = exp.axis_query(
            "RNA",
            obs_query=tiledbsoma.AxisQuery(value_filter="cell_type == 'Microglia/Macrophage'"),
        )
        result = query.to_anndata("data")
    line(
        "census-style: open + value-filter query -> AnnData",
        f"{time.perf_counter() - t:.3f} s, {result.shape}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h5ad-mb", type=int, default=256)
    parser.add_argument("--parquet", type=int, default=1000)
    parser.add_argument(
        "--mapped-data", type=Path, default=DATA, help="folder with the two h5ad files for mapped()"
    )
    parser.add_argument("--only", choices=["mapped", "census", "duckdb", "s3"])
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    with tempfile.TemporaryDirectory(prefix="lakeline-bench-arrays-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["LAKELINE_HOME"] = str(tmp / "home")
        os.environ["LAKELINE_LOAD_PLUGINS"] = ""
        import lakeline as ll

        ll.init(storage=str(tmp / "data"), name="bench")
        if args.only in (None, "mapped"):
            bench_mapped(ll, args.mapped_data)
        if args.only in (None, "census"):
            bench_census(ll, tmp)
        if args.only in (None, "duckdb"):
            bench_duckdb(ll, args.parquet)
        if args.only in (None, "s3"):
            bench_h5ad_s3(ll, args.h5ad_mb, tmp)


if __name__ == "__main__":
    main()
