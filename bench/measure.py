"""The measurements: import time, bulk registration, queries at scale, DataFrames, RSS.

Each function takes what it needs and returns plain dicts of figures (JSON-serialisable), so
`run.py` can run the database-bound ones in a worker process per database.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import workload

Log = Callable[[str], None]


def start_postgres(name: str = "bench") -> tuple[Any, str] | str:
    """A private PostgreSQL cluster on /dev/shm holding database `name`: (server, its URL),
    or why there is none (the caller stops the server)."""
    from lakeline.testing_servers import PostgresServer

    ok, reason = PostgresServer.available()
    if not ok:
        return reason
    server = PostgresServer(parent_dir="/dev/shm").start()
    return server, server.create_database(name)


def median_ms(samples_s: Sequence[float]) -> float:
    return statistics.median(samples_s) * 1000


def summary(samples_s: Sequence[float]) -> dict[str, float]:
    """Median, p90, min and max of timings, in ms."""
    ordered = sorted(samples_s)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": p90 * 1000,
        "min_ms": ordered[0] * 1000,
        "max_ms": ordered[-1] * 1000,
        "n": len(ordered),
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def profiled(profile_dir: Path | None, name: str) -> Iterator[None]:
    """cProfile the block into <profile_dir>/<name>.prof when profiling is on."""
    if profile_dir is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profile_dir.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(profile_dir / f"{name}.prof")


# -- 1. import time ----------------------------------------------------------------------------


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def import_times(runs: int, env: dict[str, str], scratch: Path) -> dict[str, Any]:
    """Median wall time of fresh interpreters running `pass`, `import lakeline`, and more.

    Python reads and writes bytecode only under PYTHONPYCACHEPREFIX when it is set, so the
    warm figures use a private cache filled by a first run (as any installed package has), and
    the cold ones an empty, read-only-by-policy cache (every module compiled from source).
    """
    warm_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    warm_env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache-warm")
    cold_env = dict(warm_env, PYTHONPYCACHEPREFIX=str(scratch / "pycache-cold"))
    cold_env["PYTHONDONTWRITEBYTECODE"] = "1"
    snippets = {
        "pass": "pass",
        "import": "import lakeline",
        "import_models": "import lakeline, lakeline.models",
    }
    out: dict[str, Any] = {}
    for name, code in snippets.items():
        argv = [sys.executable, "-c", code]
        _wall(argv, warm_env)  # fills the bytecode cache and the OS file cache
        out[name] = summary([_wall(argv, warm_env) for _ in range(runs)])
        if name != "pass":
            out[f"{name}_cold"] = summary([_wall(argv, cold_env) for _ in range(3)])
    out["heaviest"] = heaviest_imports("import lakeline", warm_env)
    out["heaviest_models"] = heaviest_imports("import lakeline, lakeline.models", warm_env)
    return out


def heaviest_imports(code: str, env: dict[str, str], top: int = 6) -> list[tuple[str, float]]:
    """The packages whose import costs most (cumulative ms, `python -X importtime`)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cost: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| *(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            if package not in ("site", "encodings"):
                cost[package] = max(cost.get(package, 0.0), int(match.group(1)) / 1000)
    return sorted(cost.items(), key=lambda item: -item[1])[:top]


# -- 2. bulk registration ----------------------------------------------------------------------


def make_files(folder: Path, n: int) -> tuple[list[Path], float]:
    """n small files (~100 bytes) with distinct content, 1,000 per sub-folder; and seconds."""
    started = time.perf_counter()
    paths = []
    for i in range(n):
        sub = folder / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"f{i:06d}.txt"
        line = f"file {i:06d} of the lakeline benchmark; distinct content. "
        path.write_text((line * 3)[:100])
        paths.append(path)
    return paths, time.perf_counter() - started


def bulk_register(
    paths: list[Path],
    *,
    profile_dir: Path | None,
    tag: str,
    log: Log,
    cpu: dict[str, float] | None = None,
    server_cpu: Callable[[], float] | None = None,
    worker_cpu: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """`ll.save([...])` of every file (construction included), then again (idempotent).
    `cpu`: filled with the process CPU seconds (user + system) of each phase, with the
    database server's (`<phase> server`) when `server_cpu` reads it (seconds so far), and
    with this process's children's (`<phase> worker`: the file worker) when `worker_cpu`
    reads it."""
    import resource

    import lakeline as ll

    warm = paths[0].parent.parent / "warm-up.txt"
    warm.write_text("warm-up file, saved before the timed runs")
    ll.Artifact(str(warm), key="warmup/warm-up.txt").save()

    keys = [f"raw/bench/{p.parent.name}/{p.name}" for p in paths]
    out: dict[str, Any] = {"n_files": len(paths)}
    for phase in ("first", "again"):
        with profiled(profile_dir, f"{tag}-bulk-{phase}"):
            used = resource.getrusage(resource.RUSAGE_SELF)
            served = server_cpu() if server_cpu is not None else 0.0
            worked = worker_cpu() if worker_cpu is not None else 0.0
            start = time.perf_counter()
            artifacts = [ll.Artifact(str(p), key=k) for p, k in zip(paths, keys, strict=True)]
            construct = time.perf_counter() - start
            ll.save(artifacts)
            total = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
        if cpu is not None:
            cpu[phase] = after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime
            if server_cpu is not None:
                cpu[f"{phase} server"] = server_cpu() - served
            if worker_cpu is not None:
                cpu[f"{phase} worker"] = worker_cpu() - worked
        out[phase] = {
            "seconds": total,
            "construct_seconds": construct,
            "per_s": len(paths) / total,
        }
        log(f"  ll.save {phase}: {len(paths) / total:,.0f} artifacts/s ({total:.2f} s)")
    out["n_records"] = ll.Artifact.filter(key__startswith="raw/bench/").count()
    return out


def large_file(folder: Path, mb: int, *, log: Log) -> dict[str, Any]:
    """`Artifact(path).save()` of one file of `mb` MiB (random bytes, written first and so in
    the page cache, as a file a pipeline just wrote): hash + copy into the storage."""
    import lakeline as ll

    path = folder / "large.bin"
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for i in range(mb):
            handle.write(i.to_bytes(8, "little") + chunk[8:])  # distinct MiBs
    start = time.perf_counter()
    artifact = ll.Artifact(str(path), key="large/large.bin").save()
    seconds = time.perf_counter() - start
    log(f"  save of a {mb:,} MiB file: {mb / seconds:,.0f} MiB/s ({seconds:.2f} s)")
    artifact.delete()
    path.unlink()
    return {"mb": mb, "seconds": seconds, "mb_per_s": mb / seconds}


# -- 3. queries at scale -----------------------------------------------------------------------


def populate(instance: Any, start: int, stop: int, log: Log) -> float:
    """Insert rows start..stop-1 straight into the database (Core bulk inserts)."""
    from lakeline.models import Artifact
    from sqlalchemy import insert

    began = time.perf_counter()
    table: Any = Artifact.__table__
    with instance.engine.begin() as conn:
        for batch in workload.rows(
            start, stop, storage_id=instance.storage.id, user_id=instance.user.id
        ):
            conn.execute(insert(table), batch)
    seconds = time.perf_counter() - began
    log(f"  inserted rows {start:,}..{stop - 1:,} in {seconds:.1f} s")
    return seconds


def analyze(instance: Any) -> None:
    """PostgreSQL: VACUUM ANALYZE, the state autovacuum reaches anyway (SQLite: nothing)."""
    if instance.dialect != "postgresql":
        return
    with instance.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE artifacts")


def query_kinds(q: workload.Queries) -> dict[str, tuple[Sequence[Any], Callable[[Any], Any]]]:
    """Each query kind: its parameters and a call returning the result."""
    import lakeline as ll

    A = ll.Artifact
    return {
        "key": (q.keys, lambda key: A.filter(key=key).first()),
        "prefix": (q.prefixes, lambda p: A.filter(key__startswith=p).limit(20).all()),
        "suffix_size": (
            q.min_sizes,
            lambda n: A.filter(suffix=".csv", size__gt=n).limit(20).all(),
        ),
        "count": (q.narrow_prefixes, lambda p: A.filter(key__startswith=p).count()),
        "search_rare": (q.rare_words, lambda word: A.search(word).all()),
        "search_common": (q.common_words, lambda word: A.search(word).all()),
    }


def _size_of(result: Any) -> int:
    if result is None:
        return 0
    if isinstance(result, int):
        return result
    if isinstance(result, list):
        return len(result)
    return 1


REPEATS = 3  # each query runs up to 3 times and its best time counts: less noise from load
SLOW_S = 0.1  # a query slower than this runs once: noise is small next to it


def run_queries(
    n: int, n_queries: int, *, profile_dir: Path | None, tag: str
) -> dict[str, dict[str, Any]]:
    """Median over `n_queries` distinct parameters per kind of each query's best of 3 runs."""
    q = workload.queries(n, n_queries)
    out: dict[str, dict[str, Any]] = {}
    for kind, (params, call) in query_kinds(q).items():
        call(params[0])  # warm-up: compile caches, first connection
        samples, sizes = [], []
        with profiled(profile_dir, f"{tag}-{n}-{kind}"):
            for param in params:
                best = float("inf")
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    result = call(param)
                    best = min(best, time.perf_counter() - start)
                    if best > SLOW_S:
                        break
                samples.append(best)
                sizes.append(_size_of(result))
        out[kind] = summary(samples) | {
            "rows_min": min(sizes),
            "rows_median": statistics.median(sizes),
        }
    return out


def explain(instance: Any, n: int) -> dict[str, str]:
    """The database's plan for the first query of each kind (PostgreSQL: with ANALYZE)."""
    import lakeline as ll
    from sqlalchemy import func, select

    A = ll.Artifact
    q = workload.queries(n, 1)
    statements = {
        "key": A.filter(key=q.keys[0]).limit(1).statement,
        "prefix": A.filter(key__startswith=q.prefixes[0]).limit(20).statement,
        "suffix_size": A.filter(suffix=".csv", size__gt=q.min_sizes[0]).limit(20).statement,
        "count": A.filter(key__startswith=q.narrow_prefixes[0])._statement(
            select(func.count()).select_from(A), ordered=False
        ),
        "search_rare": A.search(q.rare_words[0]).statement,
        "search_common": A.search(q.common_words[0]).statement,
    }
    prefix = "EXPLAIN QUERY PLAN " if instance.dialect == "sqlite" else "EXPLAIN ANALYZE "
    plans = {}
    with instance.engine.connect() as conn:
        for kind, stmt in statements.items():
            sql = str(
                stmt.compile(
                    dialect=instance.engine.dialect, compile_kwargs={"literal_binds": True}
                )
            )
            rows = conn.exec_driver_sql(prefix + sql).all()
            plan = "\n".join(" | ".join(str(c) for c in row) for row in rows)
            plans[kind] = f"{sql}\n{plan}"
    return plans


# -- 4. DataFrames -----------------------------------------------------------------------------


def make_dataframe(n_rows: int) -> Any:
    """n_rows x 10 columns: ints, floats, strings, a category, a bool and timestamps."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(n_rows, dtype=np.int64),
            "count": rng.integers(0, 1_000_000, n_rows),
            "reads": rng.integers(0, 50_000_000, n_rows),
            "x": rng.normal(size=n_rows),
            "y": rng.normal(size=n_rows),
            "score": rng.random(n_rows),
            "gene": [f"GENE{k:05d}" for k in rng.integers(0, 20_000, n_rows)],
            "tissue": pd.Categorical(rng.choice(["liver", "lung", "blood", "brain"], n_rows)),
            "passed": rng.random(n_rows) > 0.1,
            "when": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**9, n_rows), unit="s"),
        }
    )


def dataframes(n_rows: int, reps: int, folder: Path, log: Log) -> dict[str, Any]:
    """from_dataframe(...).save() and .load() next to plain to_parquet / read_parquet."""
    import lakeline as ll
    import pandas as pd

    df = make_dataframe(n_rows)
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / "plain.parquet"
    df.to_parquet(plain, engine="pyarrow")  # warm-up
    pd.read_parquet(plain, engine="pyarrow")
    warm = ll.Artifact.from_dataframe(df, key="tables/warm-up.parquet").save()
    warm.load()

    timings: dict[str, list[float]] = {"to_parquet": [], "read_parquet": [], "save": [], "load": []}
    for r in range(reps):
        df.loc[0, "count"] = r + 1  # new content each time: a real first save
        start = time.perf_counter()
        df.to_parquet(plain, engine="pyarrow")
        timings["to_parquet"].append(time.perf_counter() - start)
        start = time.perf_counter()
        pd.read_parquet(plain, engine="pyarrow")
        timings["read_parquet"].append(time.perf_counter() - start)
        start = time.perf_counter()
        artifact = ll.Artifact.from_dataframe(df, key=f"tables/bench_{r}.parquet").save()
        timings["save"].append(time.perf_counter() - start)
        start = time.perf_counter()
        loaded = artifact.load()
        timings["load"].append(time.perf_counter() - start)
        if len(loaded) != n_rows:
            log(f"  WARNING: loaded {len(loaded)} rows, expected {n_rows}")
    out: dict[str, Any] = {name: summary(values) for name, values in timings.items()}
    out["rows"], out["columns"] = n_rows, df.shape[1]
    out["parquet_mb"] = plain.stat().st_size / 1e6
    log(
        "  DataFrame save {:.0f} ms (to_parquet {:.0f} ms), load {:.0f} ms (read {:.0f} ms)".format(
            out["save"]["median_ms"],
            out["to_parquet"]["median_ms"],
            out["load"]["median_ms"],
            out["read_parquet"]["median_ms"],
        )
    )
    return out


def environment() -> dict[str, str]:
    import sqlite3

    return {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "cpus": str(os.cpu_count()),
    }
