"""Lineage graph queries at 10k runs: median times upstream/downstream, depth 1, 5 and unlimited.

    uv run python bench/lineage.py                    # SQLite and PostgreSQL, 10k runs
    uv run python bench/lineage.py --db sqlite --runs 2000 --queries 10

The lineage is written straight into the database with SQLAlchemy Core bulk inserts: 100
workflow runs of 99 task runs each. A task uses 1-3 recent outputs of its workflow (chains and
fan-in) or, every tenth task, 1-2 raw files and sometimes an output of the previous workflow
(so unlimited queries cross workflows); each task produces 1-3 artifacts (fan-out). Figures
are medians over distinct start artifacts, measured at the Python API (`lineage()`), after one
warm-up. Prints figures only; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from measure import start_postgres  # bench/ is the script's folder, first on sys.path

SEED = 20260105
TASKS_PER_WORKFLOW = 99
N_RAW = 1000
N_TRANSFORMS = 40


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate(n_runs: int, storage_id: int, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of transforms, runs, artifacts and run_inputs, ids assigned here (from 1)."""
    from lakeline.ids import new_stem, new_uid, versioned_uid

    rng = random.Random(SEED)
    t0 = datetime(2025, 6, 1, tzinfo=UTC)
    rows: dict[str, list[dict[str, Any]]] = {
        "transforms": [],
        "runs": [],
        "artifacts": [],
        "run_inputs": [],
    }

    def transform(i: int, key: str, kind: str) -> None:
        stem = new_stem()
        rows["transforms"].append(
            {"id": i, "uid": versioned_uid(stem, 0), "stem": stem, "key": key, "kind": kind,
             "is_latest": True, "created_at": t0, "created_by_id": user_id}
        )  # fmt: skip

    transform(1, "pipeline.nf", "pipeline")
    for i in range(2, N_TRANSFORMS + 2):
        transform(i, f"step_{i:02d}", "process")

    def artifact(run_id: int | None) -> int:
        ident = len(rows["artifacts"]) + 1
        stem = new_stem()
        digest = f"{rng.getrandbits(256):064x}"
        rows["artifacts"].append(
            {"id": ident, "uid": versioned_uid(stem, 0), "stem": stem, "version": None,
             "is_latest": True, "key": f"lake/{ident:07d}.dat", "description": None,
             "suffix": ".dat", "kind": None, "otype": None, "size": rng.randint(1, 10**9),
             "hash": digest, "hash_type": "sha256", "n_files": None, "n_observations": None,
             "storage_id": storage_id, "store_key": f".lakeline/objects/{digest}.dat",
             "in_place": False, "run_id": run_id, "created_at": t0 + timedelta(seconds=ident),
             "created_by_id": user_id}
        )  # fmt: skip
        return ident

    def run(transform_id: int, parent: int | None) -> int:
        ident = len(rows["runs"]) + 1
        start = t0 + timedelta(minutes=ident)
        rows["runs"].append(
            {"id": ident, "uid": new_uid(), "transform_id": transform_id, "status": "completed",
             "started_at": start, "finished_at": start + timedelta(seconds=rng.randint(1, 900)),
             "parent_id": parent, "created_at": start, "created_by_id": user_id}
        )  # fmt: skip
        return ident

    raw = [artifact(None) for _ in range(N_RAW)]
    previous: list[int] = []
    while len(rows["runs"]) < n_runs:
        workflow = run(1, None)
        pool: list[int] = []
        for task in range(TASKS_PER_WORKFLOW):
            if len(rows["runs"]) >= n_runs:
                break
            ident = run(rng.randint(2, N_TRANSFORMS + 1), workflow)
            if not pool or task % 10 == 0:
                inputs = rng.sample(raw, rng.randint(1, 2))
                if previous and rng.random() < 0.3:
                    inputs.append(rng.choice(previous[-20:]))
            else:
                inputs = rng.sample(pool[-12:], min(len(pool[-12:]), rng.randint(1, 3)))
            for used in set(inputs):
                rows["run_inputs"].append(
                    {"run_id": ident, "artifact_id": used, "role": "", "used_at": t0}
                )
            pool.extend(artifact(ident) for _ in range(rng.randint(1, 3)))
        previous = pool or previous
    return rows


def populate(instance: Any, n_runs: int) -> dict[str, int]:
    """Bulk-insert the generated lineage; returns row counts."""
    from lakeline.models import Artifact, Run, RunInput, Transform
    from sqlalchemy import insert, text

    with instance.sessions.read() as session:
        storage_id = session.execute(text("SELECT min(id) FROM storages")).scalar_one()
        user_id = session.execute(text("SELECT min(id) FROM users")).scalar()
    rows = generate(n_runs, storage_id, user_id)
    tables = (
        ("transforms", Transform),
        ("runs", Run),
        ("artifacts", Artifact),
        ("run_inputs", RunInput),
    )
    with instance.engine.begin() as conn:
        for name, model in tables:
            for start in range(0, len(rows[name]), 5000):
                conn.execute(insert(model), rows[name][start : start + 5000])
        if conn.dialect.name == "postgresql":
            for name, _ in tables:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                )
    if instance.engine.dialect.name == "postgresql":
        with instance.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return {name: len(rows[name]) for name, _ in tables}


def measure(n_queries: int) -> dict[str, dict[str, float]]:
    """Median ms (and median graph size) per direction and depth."""
    from lakeline.instance import current
    from lakeline.lineage.graph import lineage
    from lakeline.models import Artifact
    from sqlalchemy import func, select

    rng = random.Random(SEED + 1)
    with current().sessions.read() as session:
        n = session.execute(select(func.count()).select_from(Artifact)).scalar_one()
        produced = session.execute(
            select(Artifact).where(Artifact.run_id.is_not(None)).order_by(Artifact.id)
        ).scalars()
        artifacts = list(produced)
    late = artifacts[len(artifacts) // 2 :]  # upstream from the second half: long histories
    early = artifacts[: len(artifacts) // 2]  # downstream from the first half
    figures: dict[str, dict[str, float]] = {}
    for direction, pool in (("upstream", late), ("downstream", early)):
        starts = rng.sample(pool, n_queries + 1)
        for depth in (1, 5, None):
            times, sizes = [], []
            for i, start in enumerate(starts):
                began = time.perf_counter()
                graph = lineage(start, direction, depth)
                took = (time.perf_counter() - began) * 1000
                if i:  # the first is a warm-up
                    times.append(took)
                    sizes.append(len(graph.nodes))
            name = f"{direction} depth {'∞' if depth is None else depth}"
            figures[name] = {
                "median_ms": statistics.median(times),
                "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))],
                "nodes": statistics.median(sizes),
            }
            log(
                f"  {name:<22} {figures[name]['median_ms']:9.2f} ms  nodes {figures[name]['nodes']}"
            )
    graph = lineage(late[-1], "upstream", 5)
    graph.to_svg()  # warm-up: imports the renderer
    began = time.perf_counter()
    svg = graph.to_svg()
    figures["svg of upstream depth 5"] = {
        "median_ms": (time.perf_counter() - began) * 1000,
        "p90_ms": float("nan"),
        "nodes": len(graph.nodes),
    }
    figures["_artifacts"] = {"median_ms": float(n), "p90_ms": 0.0, "nodes": len(svg)}
    return figures


def bench_one(db: str, n_runs: int, n_queries: int, root: Path) -> dict[str, Any] | str:
    import lakeline.instance as li

    server = None
    try:
        url = None
        if db == "postgresql":
            started = start_postgres()
            if isinstance(started, str):
                return f"unavailable: {started}"
            server, url = started
        instance = li.init(str(root / f"storage-{db}"), db=url, name=f"lineage_{db[:6]}")
        log(f"[{db}] inserting {n_runs:,} runs")
        began = time.perf_counter()
        counts = populate(instance, n_runs)
        log(f"[{db}] {counts} in {time.perf_counter() - began:.1f} s; {n_queries} queries each")
        figures = measure(n_queries)
        li.disconnect()
        return {"counts": counts, "figures": figures}
    finally:
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=30, help="start artifacts per figure")
    args = parser.parse_args(argv)
    dbs = {"sqlite": ["sqlite"], "postgres": ["postgresql"]}.get(args.db, ["sqlite", "postgresql"])
    root = Path(tempfile.mkdtemp(prefix="lakeline-bench-lineage-"))
    os.environ["LAKELINE_HOME"] = str(root / "home")
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    results: dict[str, dict[str, Any] | str] = {}
    try:
        for db in dbs:
            results[db] = bench_one(db, args.runs, args.queries, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nlineage queries at {args.runs:,} runs (median ms over {args.queries} starts; nodes)")
    print(f"load average {os.getloadavg()[0]:.2f}")
    header = f"{'query':<26}" + "".join(f"{db:>26}" for db in results)
    print(header)
    names = next((list(r["figures"]) for r in results.values() if isinstance(r, dict)), [])
    for name in names:
        if name.startswith("_"):
            continue
        cells = []
        for result in results.values():
            if isinstance(result, str):
                cells.append(f"{result[:24]:>26}")
                continue
            fig = result["figures"][name]
            cells.append(f"{fig['median_ms']:>11.2f} ms {int(fig['nodes']):>7} nodes")
        print(f"{name:<26}" + "".join(cells))
    for db, result in results.items():
        if isinstance(result, dict):
            print(f"{db}: {result['counts']}")


if __name__ == "__main__":
    main()
