"""The query figures of `bench/scale.py` at one catalog size: DESIGN §8's queries at the
Python API, lineage walks, `to_dataframe`, feature filters, and `lakeline ui` list pages."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import measure
import scale_fill
import ui as ui_bench
import workload

REPEATS = 3
SLOW_S = 0.1  # slower than this: one run per parameter


def _timed(params: Sequence[Any], call: Callable[[Any], Any]) -> dict[str, Any]:
    """Median/p90 over the parameters of each one's best of 3 (one run when slow)."""
    call(params[0])  # warm-up
    samples, sizes = [], []
    for param in params:
        best, result = float("inf"), None
        for _ in range(REPEATS):
            began = time.perf_counter()
            result = call(param)
            best = min(best, time.perf_counter() - began)
            if best > SLOW_S:
                break
        samples.append(best)
        sizes.append(_rows(result))
    return measure.summary(samples) | {"rows_median": statistics.median(sizes)}


def _rows(result: Any) -> int:
    if result is None:
        return 0
    if isinstance(result, int):
        return result
    return len(result) if hasattr(result, "__len__") else 1


def produced_index(rng: random.Random, n: int, early: bool) -> int:
    """A produced artifact's index: of an early task (downstream walks are long) or a late
    one (upstream walks are long)."""
    block = rng.randrange(n // scale_fill.BLOCK)
    task = rng.randrange(0, 30) if early else rng.randrange(70, scale_fill.TASKS)
    return block * scale_fill.BLOCK + scale_fill.outputs_of(task)[0]


def kinds(n: int, count: int) -> dict[str, tuple[Sequence[Any], Callable[[Any], Any]]]:
    """Every query kind: its parameters and a call returning what it found."""
    import lakeline as ll
    from lakeline.lineage.graph import lineage

    A = ll.Artifact
    rng = random.Random(n)
    out = dict(measure.query_kinds(workload.queries(n, count)))
    steps = [f"step_{k % scale_fill.N_TRANSFORMS:02d}" for k in range(count)]
    q = workload.queries(n, count)
    for kind, terms in (("rare", q.rare_words), ("common", q.common_words)):
        out[f"search_{kind}_exhaustive"] = (
            terms,
            lambda word: A.search(word, exhaustive=True).all(),  # type: ignore[misc]
        )
    v = workload.VOCABULARY
    pairs = [f"{v[j % 5]} {v[5 + j * 7 % 30]}" for j in range(count)]  # a common word + another
    out["search_common_pair"] = (pairs, lambda words: A.search(words).all())
    mixed = [f"{v[j % 5]} {rare}" for j, rare in enumerate(q.rare_words)]  # common + rare
    out["search_common_rare"] = (mixed, lambda words: A.search(words).all())
    out["search_common_rare_count"] = (mixed, lambda words: A.search(words).count())
    prefixes = [("seq", "spec", "tum", "norm")[j % 4] for j in range(count)]  # no whole word
    out["search_common_prefix"] = (prefixes, lambda prefix: A.search(prefix).all())
    # many rare tokens that only the oldest rows hold (`sample0` at 10M: 1M numbered sample
    # tokens in the oldest 4M rows; `reads_4`: file numbers 4...), what search-as-you-type sends
    samples, digits = n // workload.FILES_PER_SAMPLE, 0
    while 10 ** (6 - digits) > 0.4 * samples and digits < 6:
        digits += 1
    old = ["sample0" + "0" * digits, "reads_4", "counts_3", "aligned_2"]
    out["search_old_prefix"] = ([old[j % 4] for j in range(count)], lambda p: A.search(p).all())
    # a common word and a letter (`sequencing q`: `qc` in a fifth of the rows, 500 rare words)
    letters = [f"{v[j % 5]} {'qrct'[j // 5 % 4]}" for j in range(count)]
    out["search_common_letter"] = (letters, lambda words: A.search(words).all())
    out["run_transform"] = (steps, lambda s: A.filter(run__transform__key=s).limit(20).all())
    for direction, early in (("upstream", False), ("downstream", True)):
        starts = [A.get(key=workload.key_of(produced_index(rng, n, early))) for _ in range(count)]
        for depth in (1, 5, None):
            name = f"{direction}_{'all' if depth is None else depth}"
            out[name] = (
                starts,
                lambda a, d=direction, k=depth: lineage(a, d, k).nodes,  # type: ignore[misc]
            )
    out["to_dataframe_10k"] = (
        [f"{top}/" for top in workload.TOPS],
        lambda p: A.filter(key__startswith=p).limit(10_000).to_dataframe(),
    )
    annotated = [rng.randrange(n // 10) * 10 + scale_fill.ANNOTATED for _ in range(count)]
    out["feature_int_eq"] = (annotated, lambda i: A.filter(n_cells=i).all())
    # annotated rows have i % 10 == 3: their donors (i % 50,000) and labels (i % 50) too
    donors = min(n // 10, 5000)
    out["feature_str_eq"] = (
        [f"donor-{rng.randrange(donors) * 10 + scale_fill.ANNOTATED}" for _ in range(count)],
        lambda d: A.filter(donor=d).limit(20).all(),
    )
    out["feature_float_gt"] = (
        [39.999 - k * 1e-5 for k in range(count)],
        lambda t: A.filter(temperature__gt=t).limit(20).all(),
    )
    out["feature_label_eq"] = (
        [f"label {k % 5 * 10 + scale_fill.ANNOTATED}" for k in range(count)],
        lambda x: A.filter(cell_type=x).limit(20).all(),
    )
    from lakeline.ui import queries as ui_queries

    # what the overview's background thread counts (no page waits for it)
    out["overview_counts"] = ([0, 1, 2], lambda _: sum(ui_queries._count().values()))
    return out


def statements(n: int) -> dict[str, Any]:
    """The SQL of the first parameter of each kind that is one statement, for --explain."""
    import lakeline as ll
    from sqlalchemy import func, select

    A = ll.Artifact
    q = workload.queries(n, 1)
    return {
        "key": A.filter(key=q.keys[0]).limit(1).statement,
        "prefix": A.filter(key__startswith=q.prefixes[0]).limit(20).statement,
        "suffix_size": A.filter(suffix=".csv", size__gt=q.min_sizes[0]).limit(20).statement,
        "count": A.filter(key__startswith=q.narrow_prefixes[0])._statement(
            select(func.count()).select_from(A), ordered=False
        ),
        "search_rare": pooled(A.search(q.rare_words[0]).limit(20)),
        "search_common": pooled(A.search(q.common_words[0]).limit(20)),
        "search_exhaustive": A.search(q.rare_words[0]).statement,
        "run_transform": A.filter(run__transform__key="step_07").limit(20).statement,
        "feature_int_eq": A.filter(n_cells=n // 2 + 3).statement,
        "feature_str_eq": A.filter(donor="donor-17").limit(20).statement,
        "feature_float_gt": A.filter(temperature__gt=39.999).limit(20).statement,
        "feature_label_eq": A.filter(cell_type="label 7").limit(20).statement,
        "ui_first_page": A.filter(A.key.isnot(None)).order_by("key", "id").limit(51).statement,
        "ui_newest_first": A.filter(A.created_at.isnot(None))
        .order_by("-created_at", "-id")
        .limit(51)
        .statement,
    }


def pooled(query: Any) -> Any:
    """The statement a limited search runs first: ranking the pool of newest matches (on
    SQLite the prefix pool's; a search reads its pool first, `lakeline.search.sqlite_pool`,
    and then joins the ranked ids)."""
    from sqlalchemy import select

    return query._statement(select(query.model), pool=query._pool())


def explain(instance: Any, n: int) -> dict[str, str]:
    prefix = "EXPLAIN QUERY PLAN " if instance.dialect == "sqlite" else "EXPLAIN ANALYZE "
    plans = {}
    with instance.engine.connect() as conn:
        for kind, stmt in statements(n).items():
            sql = str(
                stmt.compile(
                    dialect=instance.engine.dialect, compile_kwargs={"literal_binds": True}
                )
            )
            rows = conn.exec_driver_sql(prefix + sql).all()
            plans[kind] = sql + "\n" + "\n".join(" | ".join(str(c) for c in r) for r in rows)
    return plans


def ui_pages(name: str, n: int, count: int, log: scale_fill.Log) -> dict[str, Any]:
    """TTFB of `lakeline ui`'s artifact list pages (a real server, as bench/ui.py)."""
    port = ui_bench.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lakeline.cli", "--instance", name, "ui", "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                ui_bench.ttfb(port, "/static/style.css")
                break
            except OSError:
                time.sleep(0.1)
        cold, status, _ = ui_bench.ttfb(port, "/")  # a fresh server counts the catalog
        out: dict[str, Any] = {"ui_overview_first": measure.summary([cold]) | {"status": [status]}}
        log(f"    {'ui_overview_first':<22} {cold * 1000:9.1f} ms  status {status}")
        q = workload.queries(n, count)
        pages = {
            "ui_first_page": ["/artifacts"] * count,
            "ui_newest_first": ["/artifacts?sort=-created_at"] * count,
            "ui_keyset_pages_2_n": ui_bench.deep_pages(port, count),
            "ui_prefix": [f"/artifacts?key__startswith={p}" for p in q.prefixes],
            "ui_search_rare": [f"/artifacts?q={w}" for w in q.rare_words],
        }
        for kind, paths in pages.items():
            if not paths:
                out[kind] = {"error": "no page"}
                continue
            ui_bench.ttfb(port, paths[0])
            samples, statuses = [], set()
            for path in paths:
                seconds, status, _ = ui_bench.ttfb(port, path)
                samples.append(seconds)
                statuses.add(status)
            out[kind] = measure.summary(samples) | {"status": sorted(statuses)}
            log(f"    {kind:<22} {out[kind]['median_ms']:9.1f} ms  status {statuses}")
        return out
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_all(
    instance: Any, name: str, n: int, count: int, log: scale_fill.Log, only: str | None = None
) -> dict[str, Any]:
    """Every figure at size n: queries, UI pages, sizes on disk, counts, load averages; with
    `only` (comma-separated kinds), those queries and nothing else."""
    out: dict[str, Any] = {"load_avg_start": os.getloadavg()[0], "queries": {}}
    every = kinds(n, count)
    chosen = only.split(",") if only else list(every)
    unknown = sorted(set(chosen) - set(every))
    if unknown:
        raise SystemExit(f"--only: no query kind {', '.join(unknown)}; kinds: {', '.join(every)}")
    for kind, (params, call) in ((k, every[k]) for k in chosen):
        try:
            out["queries"][kind] = fig = _timed(params, call)
        except Exception as exc:  # one broken figure must not lose an hour's fill
            out["queries"][kind] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            log(f"    {kind:<22} FAILED {out['queries'][kind]['error']}")
            continue
        log(
            f"    {kind:<22} median {fig['median_ms']:9.2f} ms  p90 {fig['p90_ms']:9.2f} ms  "
            f"rows {fig['rows_median']:g}"
        )
    if only:
        out["load_avg_end"] = os.getloadavg()[0]
        return out
    try:
        out["ui"] = ui_pages(name, n, count, log)
    except Exception as exc:
        out["ui"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        log(f"    ui FAILED {out['ui']['error']}")
    out["load_avg_end"] = os.getloadavg()[0]
    out["counts"] = scale_fill.counts(instance)
    out["disk"] = scale_fill.disk_sizes(instance)
    return out
