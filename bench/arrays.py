"""Figures for array stores and collections (issue 15). Prints one line per figure.

    uv run --frozen python bench/arrays.py                 # 256 MB h5ad on moto S3, 1,000 parquet
    uv run --frozen python bench/arrays.py --h5ad-mb 1024  # the 1 GB figure

    uv run --frozen python bench/arrays.py --only mapped --synthetic /tmp/mapped-synth \
        --obs-key cell_type        # vs: python bench/lamindb_mapped.py --data /tmp/mapped-synth ...

- mapped(): samples/s over the *.h5ad files of --mapped-data (../shared/data) or of
  --synthetic (4 x 25,000 cells written by this script), plain random access and a torch
  DataLoader (batch 256, 2 workers, shuffled) when torch is importable;
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


def write_mapped_data(folder: Path, n_files: int = 4, n_obs: int = 25_000) -> None:
    """Synthetic h5ad files for the mapped() comparison (written by today's anndata, so LaminDB
    reads them too): CSR X, 2,000 genes of which 1,800 shared, 10% non-zero, a cell_type."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        path = folder / f"synthetic{i}.h5ad"
        if path.exists():
            continue
        rng = np.random.default_rng(i)
        genes = [f"g{j}" for j in range(1800)] + [f"f{i}_{j}" for j in range(200)]
        x = sp.random(n_obs, len(genes), density=0.1, format="csr", dtype="float32", rng=rng)
        obs = pd.DataFrame(
            {"cell_type": pd.Categorical(rng.choice(["T", "B", "NK", "Mono"], n_obs))},
            index=[f"c{i}_{k}" for k in range(n_obs)],
        )
        ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(path)


def bench_mapped(ll: object, data: Path, join: str, obs_key: str | None, epochs: int) -> None:
    import numpy as np

    lake = ll  # type: ignore[assignment]
    files = sorted(data.resolve().glob("*.h5ad"))
    arts = [lake.Artifact(str(f), key=f"real/{f.name}").save() for f in files]  # type: ignore[attr-defined]
    collection = lake.Collection(arts, key="real").save()  # type: ignore[attr-defined]
    ds = collection.mapped(join=join, obs_keys=[obs_key] if obs_key else [])
    order = np.random.default_rng(0).permutation(len(ds))[:20_000]
    t = time.perf_counter()
    for i in order:
        ds[int(i)]
    rate = len(order) / (time.perf_counter() - t)
    shape = f"{ds.shape[0]}x{ds.shape[1]}"
    line(f"mapped(join={join!r}) random access, {shape}, one process", f"{rate:,.0f} samples/s")
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
    t = time.perf_counter()
    n = sum(batch["X"].shape[0] for _ in range(epochs) for batch in loader)
    rate = n / (time.perf_counter() - t)
    line(f"mapped() {shape} + DataLoader(batch 256, 2 workers, shuffle)", f"{rate:,.0f} samples/s")


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
        "--mapped-data", type=Path, default=DATA, help="folder whose *.h5ad files mapped() reads"
    )
    parser.add_argument(
        "--synthetic", type=Path, help="write synthetic h5ad files here and use them for mapped()"
    )
    parser.add_argument("--join", choices=["inner", "outer"], default="inner")
    parser.add_argument("--obs-key", help="an obs column to encode as labels in mapped()")
    parser.add_argument("--epochs", type=int, default=10)
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
            data = args.mapped_data
            if args.synthetic is not None:
                write_mapped_data(args.synthetic)
                data = args.synthetic
            bench_mapped(ll, data, args.join, args.obs_key, args.epochs)
        if args.only in (None, "census"):
            bench_census(ll, tmp)
        if args.only in (None, "duckdb"):
            bench_duckdb(ll, args.parquet)
        if args.only in (None, "s3"):
            bench_h5ad_s3(ll, args.h5ad_mb, tmp)


if __name__ == "__main__":
    main()
