"""Deleting artifacts from a catalog with many runs: the runs' references an artifact delete
follows (report, environment: ON DELETE SET NULL) read their indexes (0016), not every run.

    uv run python bench/delete.py [--db sqlite|postgres|both] [--runs 1000000] [--deletes 20]

Fills `runs` with `--runs` rows in one SQL statement (none of them names a report), saves
`--deletes` small files, then times `artifact.delete()` of each: once with the indexes and
once with them dropped (same catalog, same minute). Prints ms per delete. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from measure import make_files, start_postgres

INDEXES = ("ix_runs_report_id", "ix_runs_environment_id", "ix_runs_cached_from_id")


def _fill_runs(instance: Any, n: int) -> None:
    from lakeline.lineage.recorder import Recorder
    from sqlalchemy import text

    workflow = Recorder("bench").start_workflow(key="bench-delete", engine_run_id="bench-delete")
    series = (
        "generate_series(1, :n) AS s(i)"
        if instance.dialect == "postgresql"
        else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        "SELECT i FROM s) AS s"
    )
    with instance.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (uid, transform_id, status, engine, engine_ref, created_at) "
                f"SELECT 'bench' || i, :t, 'completed', 'bench', 'r' || i, CURRENT_TIMESTAMP "
                f"FROM {series}"
            ),
            {"n": n, "t": workflow.transform.id},
        )
        conn.execute(text("ANALYZE"))


def _deletes(instance: Any, folder: Path, count: int, tag: str) -> list[float]:
    import lakeline as ll

    paths, _ = make_files(folder / tag, count)
    saved = [ll.Artifact(p, key=f"{tag}/{p.name}").save() for p in paths]
    took = []
    for artifact in saved:
        started = time.perf_counter()
        artifact.delete()
        took.append(time.perf_counter() - started)
    return took


def run(db: str, url: str | None, runs: int, count: int) -> None:
    import lakeline as ll
    from sqlalchemy import text

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        folder = Path(tmp)
        os.environ["LAKELINE_HOME"] = str(folder / "home")
        instance = ll.init(storage=str(folder / "store"), db=url, name=f"delete-{db}")
        started = time.perf_counter()
        _fill_runs(instance, runs)
        print(f"{db}: {runs:,} runs filled in {time.perf_counter() - started:.1f} s")
        with_indexes = _deletes(instance, folder, count, "a")
        with instance.engine.begin() as conn:
            for name in INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
        without = _deletes(instance, folder, count, "b")
        for label, took in (("with the indexes", with_indexes), ("without them", without)):
            print(
                f"{db}: delete one artifact {label}: median {statistics.median(took) * 1e3:.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--deletes", type=int, default=20)
    args = parser.parse_args()
    if args.db in ("sqlite", "both"):
        run("sqlite", None, args.runs, args.deletes)
    if args.db in ("postgres", "both"):
        started = start_postgres("delete")
        if isinstance(started, str):
            print(f"postgres: skipped ({started})")
            return
        server, url = started
        try:
            run("postgres", url, args.runs, args.deletes)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
