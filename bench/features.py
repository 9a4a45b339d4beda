"""Feature values and labels: filter artifacts by a feature value at 100k and 1M annotated
artifacts, and create 10k labels (with the duplicate check). Prints figures; asserts nothing.

    uv run python bench/features.py                         # SQLite and PostgreSQL, 100k and 1M
    uv run python bench/features.py --db sqlite --sizes 100000 --queries 20
    uv run python bench/features.py --explain               # also print each query's plan

Every artifact (rows from `workload.py`) gets three feature values: `n_cells` (int, distinct
per artifact), `temperature` (float, uniform 20-40), `donor` (str, 50k donors: ~20 artifacts
each) and one `cell_type` label of 50 (cat[ULabel[CellType]]). Rows go in with Core bulk
inserts (COPY on PostgreSQL), outside the timing; the catalog is filled to each size in turn.
Figures are medians over distinct parameters, each query the best of 3, after a warm-up, at
the Python API (`Artifact.filter(...)`: lookup compiling, the query, records built).
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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from measure import start_postgres  # bench/ is the script's folder, first on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SEED = 20261205
N_LABELS = 50
N_DONORS = 50_000
BATCH = 20_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _bulk(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows: COPY on PostgreSQL, one executemany on SQLite."""
    from sqlalchemy import insert

    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    names = list(rows[0])
    raw = conn.connection.driver_connection
    columns = ", ".join(names)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[n] for n in names])


def fill(instance: Any, start: int, stop: int, ids: dict[str, int]) -> None:
    """Artifacts start..stop-1 with their feature values and labels."""
    import workload
    from lakeline.models import Artifact, ArtifactULabel, FeatureValue

    now = datetime.now(UTC)
    with instance.engine.begin() as conn:
        for batch in workload.rows(start, stop, storage_id=ids["storage"], user_id=ids["user"]):
            first = start
            for offset, row in enumerate(batch):
                row["id"] = first + offset + 1
            start += len(batch)
            _bulk(conn, Artifact.__table__, batch)
            rng = random.Random(SEED + first)
            values: list[dict[str, Any]] = []
            links: list[dict[str, Any]] = []
            for row in batch:
                i, artifact_id = row["id"] - 1, row["id"]
                base = {"artifact_id": artifact_id, "position": 0, "created_at": now}
                values.append({**base, "feature_id": ids["n_cells"], "value_int": i})
                temperature = 20 + 20 * rng.random()
                values.append(
                    {**base, "feature_id": ids["temperature"], "value_float": temperature}
                )
                values.append(
                    {**base, "feature_id": ids["donor"], "value_str": f"donor-{i % N_DONORS}"}
                )
                label = ids[f"label {i % N_LABELS}"]
                links.append({"artifact_id": artifact_id, "ulabel_id": label,
                              "feature_id": ids["cell_type"], "created_at": now})  # fmt: skip
            for column in ("value_int", "value_float", "value_str"):
                _bulk(conn, FeatureValue.__table__, [v for v in values if column in v])
            _bulk(conn, ArtifactULabel.__table__, links)
        if conn.dialect.name == "postgresql":
            for name in ("artifacts", "feature_values", "artifact_ulabels"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {name}))"
                )
    if instance.engine.dialect.name == "postgresql":
        with instance.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with instance.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def registries() -> dict[str, int]:
    """The features and labels every artifact is annotated with; their ids by name."""
    import lakeline as ll
    from lakeline.instance import current
    from sqlalchemy import text

    cell_type = ll.ULabel(name="CellType", is_type=True).save()
    labels = ll.save([ll.ULabel(name=f"label {k}", type=cell_type) for k in range(N_LABELS)])
    features = ll.save(
        [
            ll.Feature(name="n_cells", dtype=int),
            ll.Feature(name="temperature", dtype=float),
            ll.Feature(name="donor", dtype=str),
            ll.Feature(name="cell_type", dtype="cat[ULabel[CellType]]"),
        ]
    )
    ids = {r.name: r.id for r in [*labels, *features]}
    with current().sessions.read() as session:
        ids["storage"] = session.execute(text("SELECT min(id) FROM storages")).scalar_one()
        ids["user"] = session.execute(text("SELECT min(id) FROM users")).scalar_one()
    return ids


def timed(call: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Best of `repeat` wall times in ms, and the result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        best = min(best, (time.perf_counter() - began) * 1000)
    return best, result


def measure(n: int, n_queries: int, explain: bool) -> dict[str, tuple[float, float]]:
    """Median ms and median rows per query kind at a catalog of n annotated artifacts."""
    import lakeline as ll

    rng = random.Random(SEED + n)
    kinds: dict[str, Callable[[int], Any]] = {
        "n_cells=k (int, 1 match)": lambda k: ll.Artifact.filter(n_cells=rng.randrange(n)).all(),
        "donor=d (str, ~n/50k)": lambda k: ll.Artifact.filter(
            donor=f"donor-{rng.randrange(min(n, N_DONORS))}"
        ).all(),
        "temperature__gt (0.01%)": lambda k: ll.Artifact.filter(
            temperature__gt=39.998 - k * 1e-5
        ).all(),
        "temperature__range limit 20": lambda k: (
            ll.Artifact.filter(temperature__range=(30 + k / 100, 30.5 + k / 100)).limit(20).all()
        ),
        "cell_type=label limit 20": lambda k: (
            ll.Artifact.filter(cell_type=f"label {k % N_LABELS}").limit(20).all()
        ),
        "n_cells__lt=k count (10%)": lambda k: ll.Artifact.filter(n_cells__lt=n // 10).count(),
    }
    figures: dict[str, tuple[float, float]] = {}
    for name, query in kinds.items():
        query(0)  # warm-up
        if explain:
            _explain(name)
        times, sizes = [], []
        for k in range(n_queries):
            took, result = timed(lambda k=k, query=query: query(k))
            times.append(took)
            sizes.append(result if isinstance(result, int) else len(result))
        figures[name] = (statistics.median(times), statistics.median(sizes))
        log(f"  {n:>9,} {name:<30} {figures[name][0]:8.2f} ms  rows {figures[name][1]:g}")
    return figures


def _explain(name: str) -> None:
    import lakeline as ll
    from lakeline.instance import current

    query = ll.Artifact.filter(n_cells=12345) if "n_cells=" in name else None
    if query is None:
        return
    stmt = query.statement
    dialect = current().engine.dialect
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN ANALYZE "
    with current().engine.connect() as conn:
        for row in conn.exec_driver_sql(prefix + sql):
            log("    " + " ".join(str(x) for x in row))


def label_figures() -> dict[str, float]:
    """ms to create 10k labels of one type in one call, and to save them again (every one
    a duplicate: the existing records come back)."""
    import lakeline as ll

    kind = ll.ULabel(name="BenchLabels", is_type=True).save()
    names = [f"bench label {i}" for i in range(10_000)]
    began, cpu = time.perf_counter(), time.process_time()
    ll.save([ll.ULabel(name=name, type=kind) for name in names])
    first = (time.perf_counter() - began) * 1000
    first_cpu = (time.process_time() - cpu) * 1000
    began, cpu = time.perf_counter(), time.process_time()
    again = ll.save([ll.ULabel(name=name, type=kind) for name in names])
    second = (time.perf_counter() - began) * 1000
    second_cpu = (time.process_time() - cpu) * 1000
    assert len({r.id for r in again}) == 10_000  # a sanity check of the bench, not a timing
    # CPU time of this process (SQLite's work included, a PostgreSQL server's not): what tells
    # two runs apart on a loaded machine
    return {
        "create 10k labels": first,
        "  (its CPU time in this process)": first_cpu,
        "save the 10k again (duplicates)": second,
        "  (its CPU time in this process) ": second_cpu,
    }


def bench_one(db: str, sizes: list[int], n_queries: int, explain: bool, root: Path) -> Any:
    import lakeline.instance as li

    server = None
    try:
        url = None
        if db == "postgresql":
            started = start_postgres()
            if isinstance(started, str):
                return f"unavailable: {started}"
            server, url = started
        instance = li.init(str(root / f"storage-{db}"), db=url, name=f"features_{db[:6]}")
        labels = label_figures()
        log(f"[{db}] labels: {labels}")
        ids = registries()
        figures: dict[int, dict[str, tuple[float, float]]] = {}
        filled = 0
        for size in sizes:
            began = time.perf_counter()
            fill(instance, filled, size, ids)
            filled = size
            log(f"[{db}] {size:,} annotated artifacts in {time.perf_counter() - began:.0f} s")
            figures[size] = measure(size, n_queries, explain)
        li.disconnect()
        return {"labels": labels, "queries": figures}
    finally:
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=30, help="distinct parameters per kind")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--tmp", default=None, help="where instances go (default $TMPDIR)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    dbs = {"sqlite": ["sqlite"], "postgres": ["postgresql"]}.get(args.db, ["sqlite", "postgresql"])
    root = Path(tempfile.mkdtemp(prefix="lakeline-bench-features-", dir=args.tmp))
    os.environ["LAKELINE_HOME"] = str(root / "home")
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    load = os.getloadavg()[0]
    results: dict[str, Any] = {}
    try:
        for db in dbs:
            results[db] = bench_one(db, sizes, args.queries, args.explain, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nfeature queries (median ms over {args.queries} parameters, best of 3 each; rows)")
    print(f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(f"{'figure':<42}" + "".join(f"{db:>24}" for db in results))
    rows: dict[str, list[str]] = {}
    for result in results.values():
        if isinstance(result, str):
            continue
        for name, ms in result["labels"].items():
            rows.setdefault(name, []).append(f"{ms:>21.0f} ms")
        for size, figures in result["queries"].items():
            for name, (ms, n_rows) in figures.items():
                rows.setdefault(f"{size:>9,} {name}", []).append(f"{ms:>12.2f} ms {n_rows:>6g} r")
    for name, cells in rows.items():
        print(f"{name:<42}" + "".join(f"{c:>24}" for c in cells))
    for db, result in results.items():
        if isinstance(result, str):
            print(f"{db}: {result}")


if __name__ == "__main__":
    main()
