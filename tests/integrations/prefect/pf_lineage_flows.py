"""A three-step flow of the kind new users write: normalize (mapped) -> merge -> report."""

from __future__ import annotations

from pathlib import Path

from lakeline_prefect import flow, task


@task
def normalize(path: Path) -> Path:
    """Scale every number of a CSV sample into out/<name>.norm.csv."""
    values = [float(x) for x in path.read_text().split(",")]
    top = max(values)
    target = path.parent.parent / "out" / f"{path.stem}.norm.csv"
    target.parent.mkdir(exist_ok=True)
    target.write_text(",".join(f"{v / top:.3f}" for v in values))
    return target


@task
def merge(parts: list[Path]) -> Path:
    """Concatenate the normalized samples."""
    target = parts[0].parent / "merged.csv"
    target.write_text("\n".join(p.read_text() for p in parts))
    return target


@task
def report(merged: Path) -> Path:
    """Count the merged rows."""
    target = merged.parent / "report.txt"
    target.write_text(f"{len(merged.read_text().splitlines())} samples\n")
    return target


@flow
def pipeline() -> Path:
    """normalize.map -> merge -> report over the samples in data/ (found by the flow body,
    so no flow parameter registers them before the tasks read them)."""
    paths = sorted(Path("data").resolve().glob("s*.csv"))
    return report(merge(normalize.map(paths)))
