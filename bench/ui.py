"""Time to first byte of `lakeline ui` pages on a large instance (SQLite and PostgreSQL).

    uv run python bench/ui.py                          # 1M artifacts, both databases
    uv run python bench/ui.py --db sqlite --artifacts 100000 --requests 10

The instance is filled with the benchmark's bulk paths: the lineage of `bench/lineage.py`
(workflow runs of 99 tasks, their inputs and outputs) and then `bench/workload.py`'s artifact
rows up to the requested total. `lakeline ui` is then started as a subprocess (uvicorn on
127.0.0.1) and each page is requested `--requests` times over distinct pages where possible;
TTFB is the time from sending the request to reading the status line and headers (pages are
rendered whole before the first byte). Figures are medians after one warm-up request. Prints
figures only; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lineage as lineage_bench  # bench/ is the script's folder, first on sys.path
import measure
import workload


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill(instance: Any, n_artifacts: int, n_runs: int) -> dict[str, int]:
    """The lineage rows first (explicit ids), then plain artifact rows up to `n_artifacts`."""
    counts = lineage_bench.populate(instance, n_runs)
    have = counts["artifacts"]
    if n_artifacts > have:
        measure.populate(instance, 0, n_artifacts - have, log)
    measure.analyze(instance)
    if instance.dialect == "postgresql":
        with instance.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    counts["artifacts"] = max(n_artifacts, have)
    return counts


def ttfb(port: int, path: str) -> tuple[float, int, bytes]:
    """Seconds to the response's headers, the status, and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        began = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        first = time.perf_counter() - began
        return first, response.status, response.read()
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pages(instance: Any, n: int, count: int) -> dict[str, list[str]]:
    """Distinct paths for each kind of page."""
    from lakeline.models import Artifact
    from sqlalchemy import select

    rng = random.Random(7)
    q = workload.queries(n, count)
    with instance.sessions.read() as session:
        produced = (
            session.execute(
                select(Artifact.uid).where(Artifact.run_id.isnot(None)).order_by(Artifact.id)
            )
            .scalars()
            .all()
        )
    picks = rng.sample(list(produced), min(count, len(produced)))
    return {
        "overview (counts cached)": ["/"] * count,
        "artifacts, first page": ["/artifacts"] * count,
        "artifacts, newest first": ["/artifacts?sort=-created_at"] * count,
        "artifacts ?key__startswith=": [f"/artifacts?key__startswith={p}" for p in q.prefixes],
        "artifacts, search rare word": [f"/artifacts?q={w}" for w in q.rare_words],
        "artifacts, search common word": [f"/artifacts?q={w}" for w in q.common_words],
        "folders, top level": ["/artifacts?view=folders"] * count,
        "folders, raw/ (first 200 subfolders)": ["/artifacts?view=folders&prefix=raw/"] * count,
        "artifact + lineage depth 1": [f"/artifacts/{uid}" for uid in picks],
        "artifact + lineage depth 3": [f"/artifacts/{uid}?depth=3" for uid in picks],
        "artifact + lineage upstream all": [
            f"/artifacts/{uid}?direction=upstream&depth=all" for uid in picks
        ],
    }


def deep_pages(port: int, count: int) -> list[str]:
    """`count` next-page links, found by following the keyset pages from the first."""
    found: list[str] = []
    path = "/artifacts?sort=-size"
    while len(found) < count:
        _, status, body = ttfb(port, path)
        match = re.search(rb'id="next-page" href="([^"]+)"', body)
        if status != 200 or match is None:
            break
        path = match.group(1).decode().replace("&amp;", "&")
        found.append(path)
    return found


def bench_one(db: str, args: argparse.Namespace, root: Path) -> dict[str, Any] | str:
    import lakeline.instance as li

    server = None
    process = None
    try:
        url = None
        if db == "postgresql":
            started = measure.start_postgres()
            if isinstance(started, str):
                return f"unavailable: {started}"
            server, url = started
        name = f"ui_{db[:6]}"
        instance = li.init(str(root / f"storage-{db}"), db=url, name=name)
        began = time.perf_counter()
        log(f"[{db}] filling to {args.artifacts:,} artifacts ({args.runs:,} runs of lineage)")
        counts = fill(instance, args.artifacts, args.runs)
        filled = time.perf_counter() - began
        log(f"[{db}] {counts} in {filled:.0f} s")
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "lakeline.cli", "--instance", name, "ui", "--port", str(port)],
            stdin=subprocess.DEVNULL,
        )
        for _ in range(600):
            try:
                ttfb(port, "/static/style.css")
                break
            except OSError:
                time.sleep(0.1)
        cold, status, _ = ttfb(port, "/")
        figures: dict[str, Any] = {"overview, first view (counts)": [cold * 1000]}
        kinds = pages(instance, args.artifacts, args.requests)
        kinds["artifacts, keyset page 2..n (-size)"] = deep_pages(port, args.requests)
        for kind, paths in kinds.items():
            ttfb(port, paths[0])  # warm-up
            samples, statuses = [], set()
            for path in paths[: args.requests]:
                seconds, status, _ = ttfb(port, path)
                samples.append(seconds * 1000)
                statuses.add(status)
            figures[kind] = samples
            log(f"  {kind:<40} median {statistics.median(samples):8.1f} ms  status {statuses}")
        li.disconnect()
        return {"counts": counts, "fill_s": filled, "figures": figures}
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--artifacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10_000, help="runs of recorded lineage")
    parser.add_argument("--requests", type=int, default=20, help="requests per page kind")
    args = parser.parse_args(argv)
    dbs = {"sqlite": ["sqlite"], "postgres": ["postgresql"]}.get(args.db, ["sqlite", "postgresql"])
    root = Path(tempfile.mkdtemp(prefix="lakeline-bench-ui-"))
    os.environ["LAKELINE_HOME"] = str(root / "home")
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    results: dict[str, dict[str, Any] | str] = {}
    try:
        for db in dbs:
            results[db] = bench_one(db, args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"\nlakeline ui: time to first byte, median ms over {args.requests} requests, "
        f"{args.artifacts:,} artifacts; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'page':<42}" + "".join(f"{db:>14}" for db in results))
    names: list[str] = next(
        (list(r["figures"]) for r in results.values() if isinstance(r, dict)), []
    )
    for name in names:
        cells = []
        for result in results.values():
            if isinstance(result, str):
                cells.append(f"{result[:12]:>14}")
            else:
                cells.append(f"{statistics.median(result['figures'][name]):>11.1f} ms")
        print(f"{name:<42}" + "".join(cells))
    for db, result in results.items():
        if isinstance(result, dict):
            print(f"{db}: filled in {result['fill_s']:.0f} s: {result['counts']}")


if __name__ == "__main__":
    main()
