"""lakeline in two minutes: an instance, files and tables, versions, queries, search, the CLI,
and lineage: a tracked script and a Snakemake workflow, drawn as one picture.

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

    step("8. Lineage: a tracked script records what it read and what it wrote")
    workflow = base / "workflow"  # a project folder: its files are registered where they are
    (workflow / "data").mkdir(parents=True, exist_ok=True)
    instance.register_storage(workflow)
    script = base / "normalize.py"
    script.write_text(NORMALIZE)
    env = {**os.environ, "LAKELINE_INSTANCE": "demo"}
    console.print(f"[bold]$ python {script.name}[/]  (calls ll.track() and ll.finish())")
    subprocess.run([sys.executable, str(script)], check=True, env=env, cwd=base)
    normalized = ll.Artifact.get(key="data/normalized.parquet")
    run = normalized.run
    console.print(
        f"{normalized.key} was made by run {run.uid} of {run.transform.key!r}, "
        f"which read {sorted(a.key for a in run.inputs.all())}"
    )

    final = normalized
    if _has("snakemake") and _has("snakemake_logger_plugin_lakeline"):
        step("9. A Snakemake workflow, recorded job by job (snakemake --logger lakeline)")
        (workflow / "Snakefile").write_text(SNAKEFILE)
        command = [sys.executable, "-m", "snakemake", "--cores", "2", "--logger", "lakeline"]
        console.print("[bold]$ snakemake --cores 2 --logger lakeline")
        subprocess.run([*command, "--quiet", "all"], check=True, env=env, cwd=workflow)
        final = ll.Artifact.get(key="results/report.txt")
        for job in final.run.parent.children.order_by("started_at").all():
            outputs = sorted(a.key for a in job.outputs.all())
            console.print(f"  rule {job.transform.key:<8} {job.status:<10} -> {outputs}")
    else:
        console.print("(Snakemake and its lakeline plugin are not installed: no workflow step)")

    step("10. The picture: everything upstream of the final result")
    graph = final.lineage(direction="upstream")
    picture = graph.write(base / "lineage.svg")
    console.print(
        f"{len(graph.runs)} runs and {len(graph.artifacts)} artifacts upstream of {final.key}"
    )
    console.print(f"[bold]lineage picture: {picture}[/]  (open it in a browser)")
    console.print(f"[bold]$ lakeline lineage {final.key} --format mermaid")
    subprocess.run(
        [sys.executable, "-m", "lakeline.cli", "lineage", final.key, "--format", "mermaid"],
        check=True,
    )

    console.rule("[bold green]done")
    console.print(f"Everything is in {base}: the lake in lake/, settings in home/.")
    venv = Path(sys.executable).parent
    console.print(
        f"To use the `lakeline` command yourself: `source {venv}/activate` puts it on your PATH"
        f" (then `LAKELINE_HOME={base / 'home'} lakeline ls` shows this demo's catalog)."
    )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


NORMALIZE = """\
import lakeline as ll
import pandas as pd

ll.track(params={"scale": 1000})
frames = [ll.Artifact.get(key=f"raw/{s}_counts.csv").load() for s in ("s1", "s2", "s3")]
merged = pd.concat(frames).groupby("gene", as_index=False)["count"].sum()
merged["per_thousand"] = merged["count"] * 1000 / merged["count"].sum()
merged.to_parquet("workflow/data/normalized.parquet")  # in a storage folder: kept in place
ll.Artifact("workflow/data/normalized.parquet").save()  # key: data/normalized.parquet
ll.finish()
"""

SNAKEFILE = """\
rule all:
    input: "results/report.txt"

rule top:
    input: "data/normalized.parquet"
    output: "results/top.csv"
    run:
        import pandas as pd
        table = pd.read_parquet(input[0]).nlargest(10, "count")
        table.to_csv(output[0], index=False)

rule report:
    input: "results/top.csv"
    output: "results/report.txt"
    shell: "echo top genes: $(tail -n +2 {input} | cut -d, -f1 | paste -sd' ') > {output}"
"""


if __name__ == "__main__":
    main()
