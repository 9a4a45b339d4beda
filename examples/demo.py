"""lakeline in two minutes: an instance, files and tables, versions, queries, search, the CLI.

Runs on the embedded default (SQLite + local storage) in a fresh folder:
    ./scripts/demo                 # or: uv run python examples/demo.py [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def show(records: list, columns: tuple[str, ...] = ("key", "uid", "size", "is_latest")) -> None:
    table = Table(*columns, header_style="bold")
    for record in records:
        table.add_row(*(str(getattr(record, c)) for c in columns))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, help="where to put the demo (default: a temp folder)")
    args = parser.parse_args()
    base = (args.dir or Path(tempfile.mkdtemp(prefix="lakeline-demo-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    # Keep the demo's settings inside its folder: your own ~/.lakeline stays untouched.
    os.environ["LAKELINE_HOME"] = str(base / "home")

    import anndata as ad
    import lakeline as ll
    import numpy as np
    import pandas as pd

    step("1. Create an instance: SQLite database + a local storage folder")
    instance = ll.init(storage=base / "lake", name="demo")
    console.print(f"{instance}\n  database: {instance.config.db}")

    step("2. Register raw files: one transaction for the whole batch")
    raw = base / "incoming"
    raw.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    for sample in ("s1", "s2", "s3"):
        counts = pd.DataFrame({"gene": [f"G{i}" for i in range(200)], "count": rng.poisson(9, 200)})
        counts.to_csv(raw / f"{sample}_counts.csv", index=False)
    artifacts = ll.save(
        [
            ll.Artifact(p, key=f"raw/{p.name}", description=f"gene counts of sample {p.name[:2]}")
            for p in sorted(raw.glob("*.csv"))
        ]
    )
    show(artifacts)

    step("3. Save objects: a DataFrame as parquet, an AnnData as h5ad")
    merged = pd.concat(
        {a.key.split("/")[1][:2]: a.load().set_index("gene")["count"] for a in artifacts}, axis=1
    )
    table = ll.Artifact.from_dataframe(
        merged, key="tables/counts.parquet", description="merged counts"
    ).save()
    adata = ad.AnnData(X=merged.T.to_numpy(dtype="float32"))
    adata.obs_names, adata.var_names = list(merged.columns), list(merged.index)
    matrix = ll.Artifact.from_anndata(
        adata, key="sc/counts.h5ad", description="samples x genes"
    ).save()
    show([table, matrix], ("key", "otype", "n_observations", "size"))

    step("4. Same content is recognised; new content under a key is a new version")
    again = ll.Artifact(raw / "s1_counts.csv", key="raw/s1_counts.csv").save()
    console.print(
        f"re-saving s1 unchanged -> same record: {again.uid} (created now: {again.created})"
    )
    (raw / "s1_counts.csv").write_text((raw / "s1_counts.csv").read_text() + "G200,3\n")
    v2 = ll.Artifact(raw / "s1_counts.csv", key="raw/s1_counts.csv").save()
    show(v2.versions.all(), ("key", "uid", "size", "is_latest", "description"))

    step("5. Query: field__op=value lookups, compiled to SQL from a whitelist")
    big = ll.Artifact.filter(key__startswith="raw/", suffix=".csv", size__gt=1000)
    console.print('Artifact.filter(key__startswith="raw/", suffix=".csv", size__gt=1000)')
    show(big.order_by("key").all(), ("key", "size", "hash"))
    console.print(f"search 'merged' -> {[a.key for a in ll.Artifact.search('merged')]}")
    console.print(f"search 'sample s2' -> {[a.key for a in ll.Artifact.search('sample s2')]}")

    step("6. Read back: load into memory, or open lazily without loading")
    console.print(ll.Artifact.get(key="tables/counts.parquet").load().head(3))
    backed = ll.Artifact.get(key="sc/counts.h5ad").open()
    console.print(f"backed AnnData: {backed.shape}, on disk: {backed.isbacked}")
    backed.file.close()

    step("7. The same catalog from the command line")
    for command in (["info"], ["ls", "raw/"], ["search", "counts"]):
        console.print(f"[bold]$ lakeline {' '.join(command)}")
        subprocess.run([sys.executable, "-m", "lakeline.cli", *command], check=True)

    console.rule("[bold green]done")
    console.print(f"Everything is in {base}: the lake in lake/, settings in home/.")


if __name__ == "__main__":
    main()
