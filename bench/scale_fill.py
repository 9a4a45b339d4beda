"""The fill of `bench/scale.py`: a kept PostgreSQL cluster on disk, and the catalog rows
(artifacts, runs, lineage edges, feature values and labels) written by lakeline's bulk paths.

The catalog grows in blocks of 1,000 artifacts and 100 runs (one workflow run of 99 task
runs), 10 blocks to a project. In each block the first 150 artifacts are produced by the
tasks (1 or 2 each, `artifacts.run_id`); a task reads 1-2 outputs of the 6 tasks before it
or, every tenth task, 1 artifact of the block's other 850 and (30%) one output of the
project's previous workflow (`run_inputs`). That makes ~3 edges per run (1.5 produced +
~1.5 used), chains of up to 99 steps, and lineage closed within a project of 10 workflows,
so an unlimited walk stays ~1,000 runs however large the catalog grows. Artifact `i` is
`workload.rows`' row `i` (keys, suffixes, sizes, words); every tenth one (`i % 10 == 3`)
carries `features.py`'s annotations: n_cells = i, temperature (uniform 20-40), donor
`donor-<i % 50,000>` and the cell_type label `label <i % 50>` (so 5,000 donors of 10n/5,000
artifacts each at 10M, and 5 labels of the 50 in use, each on 1 in 50 artifacts).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import features as features_bench  # bench/ is the script's folder, first on sys.path
import workload

BLOCK = 1000  # artifacts per block (one workflow)
TASKS = 99
PRODUCED = 150  # the first PRODUCED artifacts of a block are the tasks' outputs
PROJECT = 10  # blocks per project: lineage crosses workflows only inside one
BATCH_BLOCKS = 20  # one write transaction: 20k artifacts, 2k runs
N_TRANSFORMS = 40
ANNOTATED = 3  # artifacts with i % 10 == ANNOTATED carry feature values and a label
SEED = 20261206
PG_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "maintenance_work_mem": "256MB",
    "max_connections": "50",
}

Log = Callable[[str], None]


# -- a PostgreSQL cluster kept on disk -----------------------------------------------------


def kept_postgres(base: Path, log: Log) -> Any:
    """Start the cluster in `base` (initdb on first use), on the port it had before, with
    durable defaults (fsync, full_page_writes, synchronous_commit on) plus PG_SETTINGS."""
    from lakeline.testing_servers import PostgresServer

    fresh = not (base / "data").exists()
    server = PostgresServer(keep=base, settings=PG_SETTINGS, startup_timeout=120).start()
    log(f"PostgreSQL {'initialised and ' if fresh else ''}started in {base}, port {server.port}")
    return server


def open_instance(db: str, keep: Path, log: Log, *, existing: bool) -> tuple[Any, Any]:
    """Connect to (or create) the kept instance of `db` in `keep`: (instance, pg server)."""
    import lakeline.instance as li

    os.environ["LAKELINE_HOME"] = str(keep / "home")
    name = f"scale_{db[:6]}"
    server = None
    if db == "postgresql":
        server = kept_postgres(keep / "pg", log)
        if not (keep / "pg" / "created").exists():
            server.create_database("scale")
            (keep / "pg" / "created").write_text("scale")
    if existing:
        return li.connect(name), server
    url = server.url("scale") if server is not None else None
    return li.init(str(keep / f"storage-{db}"), db=url, name=name), server


# -- state -------------------------------------------------------------------------------


def state_file(keep: Path, db: str) -> Path:
    return keep / f"state-{db}.json"


def load_state(keep: Path, db: str) -> dict[str, Any]:
    path = state_file(keep, db)
    return json.loads(path.read_text()) if path.exists() else {"artifacts": 0, "fills": []}


def save_state(keep: Path, db: str, state: dict[str, Any]) -> None:
    state_file(keep, db).write_text(json.dumps(state, indent=1))


# -- registries --------------------------------------------------------------------------


def ids_by_name(instance: Any) -> dict[str, int]:
    """Transforms, features and labels the rows point at: created on first use."""
    import lakeline as ll
    from lakeline.db.rows import insert_rows
    from lakeline.ids import new_stem, versioned_uid
    from lakeline.models import Transform

    if ll.Feature.filter(name="n_cells").first() is None:
        features_bench.registries()
        now = datetime(2025, 6, 1, tzinfo=UTC)
        keys = [("pipeline.nf", "pipeline")] + [
            (f"step_{k:02d}", "process") for k in range(N_TRANSFORMS)
        ]
        rows = []
        for key, kind in keys:
            stem = new_stem()
            rows.append(
                {
                    "uid": versioned_uid(stem, 0),
                    "stem": stem,
                    "version": None,
                    "is_latest": True,
                    "key": key,
                    "kind": kind,
                    "created_at": now,
                    "created_by_id": instance.user.id,
                }
            )
        with instance.sessions.write() as session:
            insert_rows(session, Transform.__table__, rows, unique="uid")
    ids = {
        r.name: r.id
        for r in ll.Feature.filter(name__in=["n_cells", "temperature", "donor", "cell_type"]).all()
    }
    labels = ll.ULabel.filter(name__startswith="label ").all()
    ids.update({r.name: r.id for r in labels})
    ids.update(
        {
            r.key: r.id
            for r in ll.Transform.filter(
                key__in=["pipeline.nf", *(f"step_{k:02d}" for k in range(N_TRANSFORMS))]
            ).all()
        }
    )
    ids["storage"], ids["user"] = instance.storage.id, instance.user.id
    return ids


# -- one batch of blocks -----------------------------------------------------------------


def _runs(blocks: range, ids: dict[str, int], rng: random.Random) -> tuple[list[Any], list[Any]]:
    """Workflow run rows (one per block) and task run rows (parent_id set later)."""
    from lakeline.ids import new_uid

    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    workflows, tasks = [], []
    for w in blocks:
        start = t0 + timedelta(minutes=w)

        def row(transform: int, at: datetime) -> dict[str, Any]:
            return {
                "uid": new_uid(),
                "transform_id": transform,
                "status": "completed",
                "started_at": at,
                "finished_at": at + timedelta(seconds=rng.randint(1, 900)),
                "parent_id": None,
                "created_at": at,
                "created_by_id": ids["user"],
            }

        workflows.append(row(ids["pipeline.nf"], start))
        for t in range(TASKS):
            step = f"step_{rng.randrange(N_TRANSFORMS):02d}"
            tasks.append(row(ids[step], start + timedelta(seconds=t)))
    return workflows, tasks


def producer(local: int) -> int | None:
    """The task (0..98) of a block that produced its artifact `local`, None for raw ones."""
    if local >= PRODUCED:
        return None
    return next(t for t in range(TASKS) if local < (t + 1) * PRODUCED // TASKS)


def outputs_of(task: int) -> range:
    return range(task * PRODUCED // TASKS, (task + 1) * PRODUCED // TASKS)


class Timer:
    """Seconds and rows per table, for the fill rates."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def run(self, table: str, call: Callable[[], Any], n: int) -> Any:
        began = time.perf_counter()
        result = call()
        self.seconds[table] = self.seconds.get(table, 0.0) + time.perf_counter() - began
        self.rows[table] = self.rows.get(table, 0) + n
        return result


def fill_batch(
    instance: Any, blocks: range, ids: dict[str, int], carry: dict[int, list[int]], timer: Timer
) -> None:
    """Blocks `blocks` (whole projects or a run of blocks after the previous batch) in one
    write transaction, through `insert_rows` (runs, artifacts) and `insert_many` (the rest).
    `carry` holds the previous block's output ids (its project's last workflow)."""
    from lakeline.db.rows import insert_many, insert_rows
    from lakeline.models import Artifact, ArtifactULabel, FeatureValue, Run, RunInput

    rng = random.Random(SEED + blocks.start)
    lo, hi = blocks.start * BLOCK, blocks.stop * BLOCK
    (artifact_rows,) = list(
        workload.rows(lo, hi, storage_id=ids["storage"], user_id=ids["user"], batch=hi - lo)
    )
    workflows, tasks = _runs(blocks, ids, rng)
    with instance.sessions.write() as session:
        ins = insert_rows
        wf_ids = timer.run(
            "runs", lambda: ins(session, Run.__table__, workflows, unique="uid"), len(workflows)
        )
        for k, row in enumerate(tasks):
            row["parent_id"] = wf_ids[k // TASKS]
        task_ids = timer.run(
            "runs", lambda: ins(session, Run.__table__, tasks, unique="uid"), len(tasks)
        )
        for j, row in enumerate(artifact_rows):
            b, local = divmod(j, BLOCK)
            task = producer(local)
            row["run_id"] = None if task is None else task_ids[b * TASKS + task]
        art_ids = timer.run(
            "artifacts",
            lambda: ins(session, Artifact.__table__, artifact_rows, unique="uid"),
            len(artifact_rows),
        )
        used_at = datetime(2025, 1, 1, tzinfo=UTC)
        inputs: list[dict[str, Any]] = []
        for b, w in enumerate(blocks):
            block_ids = art_ids[b * BLOCK : (b + 1) * BLOCK]
            previous = carry.get(w - 1, []) if w % PROJECT else []
            for t in range(TASKS):
                if t % 10 == 0:
                    used = [block_ids[rng.randrange(PRODUCED, BLOCK)]]
                    if previous and rng.random() < 0.3:
                        used.append(rng.choice(previous))
                else:
                    recent = [block_ids[j] for s in range(max(0, t - 6), t) for j in outputs_of(s)]
                    used = rng.sample(recent, min(len(recent), rng.randint(1, 2)))
                run_id = task_ids[b * TASKS + t]
                inputs += [
                    {"run_id": run_id, "artifact_id": a, "role": "", "used_at": used_at}
                    for a in dict.fromkeys(used)
                ]
            carry.clear()
            carry[w] = block_ids[:PRODUCED]
        timer.run(
            "run_inputs", lambda: insert_many(session, RunInput.__table__, inputs), len(inputs)
        )
        values: dict[str, list[dict[str, Any]]] = {
            "value_int": [],
            "value_float": [],
            "value_str": [],
        }
        links = []
        now = datetime.now(UTC)
        for j in range(ANNOTATED, hi - lo, 10):
            i, base = lo + j, {"artifact_id": art_ids[j], "position": 0, "created_at": now}
            values["value_int"].append({**base, "feature_id": ids["n_cells"], "value_int": i})
            values["value_float"].append(
                {**base, "feature_id": ids["temperature"], "value_float": 20 + 20 * rng.random()}
            )
            values["value_str"].append(
                {
                    **base,
                    "feature_id": ids["donor"],
                    "value_str": f"donor-{i % features_bench.N_DONORS}",
                }
            )
            links.append(
                {
                    "artifact_id": art_ids[j],
                    "feature_id": ids["cell_type"],
                    "ulabel_id": ids[f"label {i % features_bench.N_LABELS}"],
                    "created_at": now,
                }
            )
        for chunk in values.values():
            timer.run(
                "feature_values",
                lambda c=chunk: insert_many(session, FeatureValue.__table__, c),
                len(chunk),
            )
        timer.run(
            "artifact_ulabels",
            lambda: insert_many(session, ArtifactULabel.__table__, links),
            len(links),
        )


def fill(
    instance: Any, start: int, stop: int, log: Log, committed: Callable[[int], None]
) -> dict[str, Any]:
    """Artifacts start..stop-1 (multiples of a project, 10,000) with their runs, edges and
    annotations; a progress line on stderr; figures: seconds and rows/s per table.
    `committed(n)` is called after each transaction (whole projects: a fill stopped there
    can be measured and topped up)."""
    if start % (BLOCK * PROJECT) or stop % (BLOCK * PROJECT):
        raise SystemExit("sizes must be multiples of 10,000 artifacts (whole projects)")
    ids = ids_by_name(instance)
    timer, carry = Timer(), {}  # type: ignore[var-annotated]
    began, load = time.perf_counter(), [os.getloadavg()[0]]
    first, last = start // BLOCK, stop // BLOCK
    tty = sys.stderr.isatty()
    for b0 in range(first, last, BATCH_BLOCKS):
        fill_batch(instance, range(b0, min(b0 + BATCH_BLOCKS, last)), ids, carry, timer)
        done = min(b0 + BATCH_BLOCKS, last) * BLOCK
        committed(done)
        elapsed = time.perf_counter() - began
        rate = (done - start) / elapsed
        eta = (stop - done) / rate if rate else 0
        line = (
            f"  {done:>12,} / {stop:,} artifacts  {rate:,.0f}/s  "
            f"elapsed {elapsed:,.0f} s  eta {eta:,.0f} s  load {os.getloadavg()[0]:.1f}"
        )
        load.append(os.getloadavg()[0])
        if tty:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif (done // BLOCK) % 200 == 0 or done == stop:
            log(line)
    if tty:
        print(file=sys.stderr)
    seconds = time.perf_counter() - began
    settle = time.perf_counter()
    analyze(instance)
    out = {
        "from": start,
        "to": stop,
        "seconds": seconds,
        "analyze_seconds": time.perf_counter() - settle,
        "artifacts_per_s": (stop - start) / seconds,
        "load_avg_min": min(load),
        "load_avg_max": max(load),
        "load_avg_mean": sum(load) / len(load),
        "tables": {
            t: {
                "rows": timer.rows[t],
                "seconds": timer.seconds[t],
                "rows_per_s": timer.rows[t] / timer.seconds[t],
            }
            for t in timer.rows
        },
    }
    rates = ", ".join(f"{t} {v['rows_per_s']:,.0f} rows/s" for t, v in out["tables"].items())
    log(
        f"  filled {start:,}..{stop:,} in {seconds:,.0f} s "
        f"({out['artifacts_per_s']:,.0f} artifacts/s; {rates})"
    )
    return out


def analyze(instance: Any) -> None:
    """PostgreSQL: VACUUM ANALYZE (what autovacuum reaches on its own). SQLite: nothing,
    as lakeline never runs ANALYZE (what users have)."""
    if instance.dialect != "postgresql":
        return
    with instance.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def disk_sizes(instance: Any) -> dict[str, Any]:
    """Bytes on disk: SQLite's file and WAL, and per table (indexes included, `dbstat`);
    PostgreSQL's `pg_total_relation_size` per table and `pg_database_size`."""
    from sqlalchemy import text

    out: dict[str, Any] = {"tables": {}}
    if instance.dialect == "postgresql":
        with instance.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 2 DESC"
                )
            )
            out["tables"] = {name: int(size) for name, size in rows}
            out["database"] = int(
                conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
        return out
    path = Path(instance.engine.url.database)
    wal = path.with_name(path.name + "-wal")
    out["database"] = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    out["wal"] = wal.stat().st_size if wal.exists() else 0
    try:
        with instance.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s "
                    "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1 ORDER BY 2 DESC"
                )
            )
            out["tables"] = {name: int(size) for name, size in rows}
    except Exception as exc:  # dbstat is a compile-time option of SQLite
        out["tables_error"] = str(exc).splitlines()[0]
    return out


def counts(instance: Any) -> dict[str, int]:
    from sqlalchemy import text

    tables = ("artifacts", "runs", "run_inputs", "feature_values", "artifact_ulabels", "audit_log")
    with instance.engine.connect() as conn:
        out = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in tables}
        out["produced (artifacts.run_id)"] = int(
            conn.execute(text("SELECT count(run_id) FROM artifacts")).scalar_one()
        )
    return out
