"""Time to first byte of `lakeline ui` pages on a large instance (SQLite and PostgreSQL).

    uv run python bench/ui.py                          # 1M artifacts, both databases
    uv run python bench/ui.py --db sqlite --artifacts 100000 --requests 10

The instance is filled with the benchmark's bulk paths: the lineage of `bench/lineage.py`
(workflow runs of 99 tasks, their inputs and outputs) and then `bench/workload.py`'s artifact
rows up to the requested total (counted afterwards: the printed figures are SELECT count(*)).
Every artifact of the lineage is annotated as in `bench/features.py` (`n_cells`,
`temperature`, `donor`, one `cell_type` label of 50 through the categorical feature) plus one
plain label of 50 and a schema, and 200 collections of 50 of them are saved through the API.
`lakeline ui` is then started as a subprocess (uvicorn on 127.0.0.1) and each page is
requested `--requests` times over distinct pages where possible; TTFB is the time from
sending the request to reading the status line and headers (pages are rendered whole before
the first byte). Figures are medians after one warm-up request. Prints
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

import features as features_bench  # bench/ is the script's folder, first on sys.path
import lineage as lineage_bench
import measure
import workload

N_PLAIN_LABELS = 50
N_COLLECTIONS = 200
COLLECTION_SIZE = 50


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def annotate(instance: Any) -> None:
    """Feature values, a categorical and a plain label and a schema on every artifact of the
    lineage (bulk rows), and collections of them (the API)."""
    from datetime import UTC, datetime

    import lakeline as ll
    from lakeline.models import Artifact, ArtifactSchema, ArtifactULabel, FeatureValue
    from sqlalchemy import select

    ids = features_bench.registries()
    plain = ll.save([ll.ULabel(name=f"tag {k}") for k in range(N_PLAIN_LABELS)])
    features = ll.Feature.filter(name__in=["n_cells", "temperature", "donor", "cell_type"]).all()
    schema = ll.Schema(features, name="bench-obs", otype="DataFrame").save()
    with instance.sessions.read() as session:
        produced = list(
            session.scalars(
                select(Artifact.id).where(Artifact.run_id.isnot(None)).order_by(Artifact.id)
            )
        )
    now = datetime.now(UTC)
    rng = random.Random(11)
    values: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    schemas: list[dict[str, Any]] = []
    for i, artifact_id in enumerate(produced):
        base = {"artifact_id": artifact_id, "position": 0, "created_at": now}
        values.append({**base, "feature_id": ids["n_cells"], "value_int": i})
        values.append(
            {**base, "feature_id": ids["temperature"], "value_float": 20 + 20 * rng.random()}
        )
        values.append({**base, "feature_id": ids["donor"], "value_str": f"donor-{i % 5000}"})
        label = ids[f"label {i % features_bench.N_LABELS}"]
        links.append(
            {
                "artifact_id": artifact_id,
                "ulabel_id": label,
                "feature_id": ids["cell_type"],
                "created_at": now,
            }
        )
        tag = plain[i % N_PLAIN_LABELS].id
        links.append(
            {"artifact_id": artifact_id, "ulabel_id": tag, "feature_id": None, "created_at": now}
        )
        schemas.append(
            {"artifact_id": artifact_id, "slot": "obs", "schema_id": schema.id, "created_at": now}
        )
    with instance.engine.begin() as conn:
        for column in ("value_int", "value_float", "value_str"):
            features_bench._bulk(conn, FeatureValue.__table__, [v for v in values if column in v])
        features_bench._bulk(conn, ArtifactULabel.__table__, links)
        features_bench._bulk(conn, ArtifactSchema.__table__, schemas)
    members = ll.Artifact.filter(id__in=produced[: N_COLLECTIONS * COLLECTION_SIZE]).all()
    members.sort(key=lambda a: a.id)
    for k in range(min(N_COLLECTIONS, len(members) // COLLECTION_SIZE)):
        chunk = members[k * COLLECTION_SIZE : (k + 1) * COLLECTION_SIZE]
        ll.Collection(chunk, key=f"sets/set-{k:03d}").save()
    log(f"  annotated {len(produced):,} artifacts, saved {k + 1} collections")


def fill(instance: Any, n_artifacts: int, n_runs: int) -> dict[str, int]:
    """The lineage rows first (explicit ids), then plain artifact rows up to `n_artifacts`;
    returns the rows the tables hold."""
    from sqlalchemy import text

    counts = lineage_bench.populate(instance, n_runs)
    have = counts["artifacts"]
    if n_artifacts > have:
        measure.populate(instance, 0, n_artifacts - have, log)
    annotate(instance)
    measure.analyze(instance)
    if instance.dialect == "postgresql":
        with instance.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with instance.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    tables = (
        "artifacts",
        "runs",
        "run_inputs",
        "feature_values",
        "artifact_ulabels",
        "collections",
    )
    with instance.sessions.read() as session:
        return {
            name: session.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in tables
        }


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
    import lakeline as ll

    labels = ll.ULabel.filter(name__startswith="tag ").order_by("id").all()
    collections = ll.Collection.filter(key__startswith="sets/").order_by("id").all()
    feature = ll.Feature.get(name="temperature")
    cell_type = ll.ULabel.get(name="CellType")
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
        "label page (artifacts carrying it)": [f"/labels/{x.uid}" for x in labels[:count]],
        "artifacts ?ulabels__name= (plain)": [
            f"/artifacts?ulabels__name=tag+{k}" for k in range(count)
        ],
        "artifacts ?cell_type= (categorical)": [
            f"/artifacts?cell_type=label+{k}" for k in range(count)
        ],
        "artifacts ?temperature__gt=": [
            f"/artifacts?temperature__gt={39 - k * 0.5}" for k in range(count)
        ],
        "label type page (50 labels)": [f"/labels/{cell_type.uid}"] * count,
        "feature page (temperature)": [f"/features/{feature.uid}"] * count,
        "collection page (50 members)": [f"/collections/{c.uid}" for c in collections[:count]],
        "collections list": ["/collections"] * count,
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
