"""Lakeline's capture CPU split into a fixed cost a run and a cost a task, round by round.

    uv run --frozen python bench/capture_split.py [--engines snakemake,redun,prefect,track,nextflow]
        [--db sqlite|postgres|both] [--rounds 3] [--sizes snakemake=200:800,redun=50:400,...]
        [--variant on|off] [--before DIR] [--json PATH]

Per round, engine and database one fresh process per checkout (bench/capture.py's measures,
batched unless `--variant off`) runs the engine's small and large workflow back to back,
the order alternated round by round (small first in odd rounds, large first in even ones),
each size with its no-capture baseline just before it. From that round's two runs:

    slope = (cpu_large - cpu_small) / (n_large - n_small)    ms a task
    fixed = cpu_small - n_small * slope                      ms a run

so cpu(n) = fixed + n * slope reproduces both. `cpu` is lakeline's CPU a run (capture.py:
its threads' CPU while they run lakeline's code; Snakemake's plugin also counts its set-up in
Snakemake's fresh process: importing lakeline, connecting). `n` is what the engine records:
Snakemake's jobs + `all`. The baseline's wall time is split the same way (its slope: the
engine's own wall a task), and the added wall (with capture less the baseline just before
it) too. Printed: every round's figures (stdout, `round ...` lines), then per engine and
database the median and the range [min..max] over the rounds, and how long each part took.
The fixed part is a first run's: Snakemake's into a fresh instance in a fresh process;
redun's into a fresh instance in a process warmed once by a run of `--warm` tasks; Prefect's
into an instance that recorded a `--warm`-task warm-up run just before. Both parts hold the
flushes the 2 s timers write (more a task the slower the engine runs) and whatever garbage
collections of the engine's heap start inside lakeline's code: read the range, not one round.
track and the Nextflow import run at one size (`--sizes track=200`; Nextflow's fixture has
486 tasks): their ms a task, median and range.

`--before DIR` (a `git archive REV core/src integrations` tree): each round runs A (DIR) and
B (this checkout), alternated AB, BA, ..., each side a fresh process with its tree first on
PYTHONPATH (checked, as bench/capture_ab.py does), and prints B - A of the fixed part and the
slope, paired by round (median, rounds where B was lower). Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPLIT = ("snakemake", "redun", "prefect")  # measured at two sizes
ENGINES = (*SPLIT, "track", "nextflow")
SIZES = {"snakemake": (200, 800), "redun": (50, 400), "prefect": (200, 800), "track": (200,)}
SIZES["nextflow"] = (486,)
DRY_RUN = ("nextflow",)  # measured less its baseline (a dry run): run even with --no-baseline
WARM = 10  # tasks of the warm-up run (redun: the process; Prefect: the instance)


def child(spec: dict[str, Any]) -> None:
    """One round of one engine on one database in this fresh process: each of `sizes` once,
    in that order; their figures as one JSON line."""
    sys.path.insert(0, str(HERE))
    import capture
    import capture_ab

    variant, engine = spec["variant"], spec["engine"]
    args = argparse.Namespace(
        tasks=0, redun_tasks=0, rounds=1, variants=[variant], warm_tasks=spec["warm"]
    )
    args.baseline = spec.get("baseline", True)
    capture.stop_on_signals()  # SIGTERM: its folder removed (`finally`), as on Ctrl-C
    # in the parent's folder: removed with it even if this process is killed
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-split-", dir=spec.get("tmp")))
    tree = Path(spec["tree"]).resolve()
    where = base / "snakemake-imports.jsonl"
    os.environ.update(
        LAKELINE_HOME=str(base / "home"), CAPTURE_AB_TREE=str(tree), CAPTURE_AB_WHERE=str(where)
    )
    admin = spec["admin"]
    server = None if admin is None else capture_ab.Databases(admin, f"c{spec['serial']}")
    bench = capture.Bench(spec["db"], base, args, server)
    bench.launch = ("-c", capture_ab.SNAKEMAKE)
    measure = getattr(capture, engine)
    field = capture.SIZED.get(engine, "tasks")
    runs = []
    try:
        if engine == "redun":  # the process warmed once (imports, first compiles), not counted
            bench.warm = False
            setattr(args, field, spec["warm"])
            bench.base = base / "warm"  # its workflow folders apart: a size may equal --warm
            measure(bench)
            bench.base = base
        for size in spec["sizes"]:
            setattr(args, field, size)
            start = time.perf_counter()
            figures, n, _ = measure(bench)
            runs.append(
                {
                    "n": n,
                    "cpu": figures.cpu[variant],
                    "wall": figures.wall[variant],
                    "baseline": figures.wall["baseline"],
                    "gc": figures.gc[variant],
                    "flushes": figures.flushes[variant],
                    "collections": figures.collections[variant],
                    "took": time.perf_counter() - start,
                }
            )
        found = {m: sys.modules[m].__file__ for m in capture_ab.MODULES if m in sys.modules}
        if where.exists():  # checked in Snakemake's process already
            for line in where.read_text().splitlines():
                found.update({f"snakemake: {m}": f for m, f in json.loads(line).items()})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    wrong = {m: f for m, f in found.items() if not Path(str(f)).resolve().is_relative_to(tree)}
    if "lakeline" not in found or wrong:
        raise SystemExit(f"capture_split: not imported from {tree}: {wrong or found}")
    print(json.dumps({"runs": runs, "found": found}))


def run_child(spec: dict[str, Any], pythonpath: list[Path]) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # with bytecode caches, as users run
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    argv = [sys.executable, str(Path(__file__)), "--child", json.dumps(spec)]
    import capture_ab

    done = capture_ab.run_stopping(argv, env)  # interrupted: SIGTERM, then SIGKILL
    if done.returncode != 0:
        raise SystemExit(f"capture_split child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def split(runs: list[dict[str, Any]]) -> dict[str, float]:
    """One round's figures, ms: at one size its ms a task; at two, fixed + n * slope of the
    CPU, of the baseline's wall and of the added wall (with capture less its baseline)."""
    ms = {k: [r[k] * 1000 for r in runs] for k in ("cpu", "wall", "baseline")}
    gc = _gc_ms(runs)
    if len(runs) == 1:
        n = runs[0]["n"]
        added = ms["wall"][0] - ms["baseline"][0]
        return {
            "cpu_task": ms["cpu"][0] / n,
            "base_task": ms["baseline"][0] / n,
            "added_task": added / n,
        }
    (n1, c1, w1, b1), (n2, c2, w2, b2) = sorted(
        zip([r["n"] for r in runs], ms["cpu"], ms["wall"], ms["baseline"], strict=True)
    )
    if n1 == n2:
        raise SystemExit(f"capture_split: two runs of {n1} tasks: no slope")
    slope = (c2 - c1) / (n2 - n1)
    base = (b2 - b1) / (n2 - n1)
    added = ((w2 - b2) - (w1 - b1)) / (n2 - n1)
    if gc is not None:  # the collections' part of the CPU, split the same way (by size)
        (_, g1), (_, g2) = sorted(zip([r["n"] for r in runs], gc, strict=True))
        gc_slope = [(y - x) / (n2 - n1) for x, y in zip(g1, g2, strict=True)]
        gcs = {f"gc{i}_slope": gc_slope[i] for i in range(3)}
        gcs["gc_slope"] = sum(gc_slope)
        gcs["less_gc_slope"] = slope - gcs["gc_slope"]
    else:
        gcs = {}
    return {
        **gcs,
        "slope": slope,
        "fixed": c1 - n1 * slope,
        "base_slope": base,
        "base_fixed": b1 - n1 * base,
        "added_slope": added,
        "added_fixed": (w1 - b1) - n1 * added,
    }


def _gc_ms(runs: list[dict[str, Any]]) -> list[list[float]] | None:
    """Each run's CPU in collections that started inside lakeline's code, ms by generation
    (None where not measured: engines other than Snakemake)."""
    if any(not r.get("collections") for r in runs):
        return None
    return [[x * 1000 for x in r["collections"]["cpu"]] for r in runs]


def describe(engine: str, db: str, side: str, r: int, runs: list[dict[str, Any]]) -> str:
    """A round's line: each run's tasks and CPU (ms), then its split (ms, ms a task)."""
    got = split(runs)
    sizes = ", ".join(f"{x['n']} tasks {x['cpu'] * 1000:.2f} ms" for x in runs)
    line = f"round {r + 1} {side} {engine} {db}: {sizes}"
    if "slope" in got:
        line += (
            f" -> fixed {got['fixed']:.2f} ms + {got['slope']:.4f} ms a task; baseline "
            f"{got['base_slope']:.3f} ms a task; added wall {got['added_fixed']:.1f} ms + "
            f"{got['added_slope']:.3f} ms a task"
        )
    else:
        line += f" -> {got['cpu_task']:.4f} ms a task; added wall {got['added_task']:.3f} ms a task"
    extra = []
    for x in runs:
        found = x.get("collections")
        if found:  # by generation: CPU ms and count inside lakeline's code, of the process's
            cpu = "/".join(f"{c * 1000:.0f}" for c in found["cpu"])
            count = "/".join(f"{c:g}" for c in found["count"])
            whole = "/".join(f"{c:g}" for c in found["process"])
            extra.append(
                f"gc {x['gc'] * 1000:.0f} ms = {cpu} ms gen 0/1/2, {count} of the "
                f"process's {whole} collections"
            )
        elif x["gc"] == x["gc"]:
            extra.append(f"gc {x['gc'] * 1000:.0f} ms")
    if "gc_slope" in got:
        extra.append(
            f"gc {got['gc_slope']:.4f} ms a task (gen 0/1/2 {got['gc0_slope']:.4f}/"
            f"{got['gc1_slope']:.4f}/{got['gc2_slope']:.4f}), slope less gc "
            f"{got['less_gc_slope']:.4f}"
        )
    extra += [f"{x['flushes']:g} flushes" for x in runs if x["flushes"] == x["flushes"]]
    return line + (f" ({', '.join(extra)})" if extra else "")


def spread(values: list[float], digits: int) -> str:
    """median [min..max]"""
    return (
        f"{statistics.median(values):.{digits}f} "
        f"[{min(values):.{digits}f}..{max(values):.{digits}f}]"
    )


def report(results: dict[tuple[str, str], dict[str, Any]], args: argparse.Namespace) -> None:
    sides = "AB" if args.before else "B"
    print(
        f"lakeline CPU a run = fixed + tasks x slope, each round's own line (two sizes back to "
        f"back); median [min..max] over {args.rounds} rounds; "
        f"{'batched' if args.variant == 'on' else 'plain'}; ms"
    )
    for (engine, db), row in results.items():
        for side in sides:
            rounds = [split(runs) for runs in row[side]]
            n = [x["n"] for x in row[side][0]]
            head = f"{engine:<9} {db:<8} {side} {'/'.join(map(str, sorted(n))):<9}"
            if "slope" in rounds[0]:
                pick = {k: [x[k] for x in rounds if k in x] for k in rounds[0]}
                print(
                    f"{head} fixed {spread(pick['fixed'], 1)}  slope "
                    f"{spread(pick['slope'], 3)} a task  | baseline slope "
                    f"{spread(pick['base_slope'], 2)}  added wall {spread(pick['added_fixed'], 0)}"
                    f" + {spread(pick['added_slope'], 3)} a task"
                )
                if "gc_slope" in pick and len(pick["gc_slope"]) == len(rounds):
                    print(
                        f"{'':<18} {side} gc slope {spread(pick['gc_slope'], 3)} (gen 0 "
                        f"{spread(pick['gc0_slope'], 3)}, gen 1 {spread(pick['gc1_slope'], 3)}, "
                        f"gen 2 {spread(pick['gc2_slope'], 3)})  slope less gc "
                        f"{spread(pick['less_gc_slope'], 3)} a task"
                    )
            else:
                pick = {k: [x[k] for x in rounds] for k in rounds[0]}
                print(
                    f"{head} {spread(pick['cpu_task'], 3)} a task  | baseline "
                    f"{spread(pick['base_task'], 2)}  added wall {spread(pick['added_task'], 3)}"
                )
        if args.before:
            a, b = ([split(runs) for runs in row[s]] for s in "AB")
            for key in ("fixed", "slope") if "slope" in a[0] else ("cpu_task",):
                diff = [y[key] - x[key] for x, y in zip(a, b, strict=True)]
                print(
                    f"{'':<18} B - A {key}: {statistics.median(diff):+.3f} "
                    f"(B lower {sum(d < 0 for d in diff)}/{len(diff)})"
                )
        print(f"{'':<18} took {row['took']:.0f} s, load {' / '.join(row['load'])}")
    print(
        "fixed: lakeline's CPU a run that does not grow with its tasks (Snakemake's includes the "
        "plugin's set-up in a fresh process); slope: what each added task costs. baseline slope: "
        "the engine's own wall a task without lakeline; added wall: a run's wall time with "
        "capture less the baseline run just before it, split the same way."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engines", default="snakemake,redun,prefect")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes", default="", help="engine=small:large,... (defaults: " + repr(SIZES) + ")"
    )
    parser.add_argument("--warm", type=int, default=WARM)
    parser.add_argument("--variant", choices=["on", "off"], default="on")
    parser.add_argument("--before", type=Path)
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help=(
            "skip the runs without lakeline (half the time; no wall split; not Prefect, "
            "nor the Nextflow import: its figure is less its dry run)"
        ),
    )
    parser.add_argument("--json", type=Path, help="write every round's figures there")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(engines) - set(ENGINES):
        parser.error(f"unknown engine(s) {sorted(set(engines) - set(ENGINES))}")
    sizes = dict(SIZES)
    for item in filter(None, args.sizes.split(",")):
        engine, _, given = item.partition("=")
        if engine not in ENGINES or not given:
            parser.error(f"--sizes: {item!r} is not engine=small:large")
        if not all(x.isdigit() for x in given.split(":")):
            parser.error(f"--sizes: {item!r}: sizes are whole numbers of tasks")
        sizes[engine] = tuple(int(x) for x in given.split(":"))
        if engine in SPLIT and (len(sizes[engine]) != 2 or len(set(sizes[engine])) != 2):
            parser.error(f"--sizes: {engine} needs two different sizes, got {given}")
        if engine == "track" and len(sizes[engine]) != 1:
            parser.error(f"--sizes: track runs at one size, got {given}")
        if engine == "nextflow" and sizes[engine] != SIZES[engine]:
            parser.error(f"--sizes: nextflow's fixture has {SIZES[engine][0]} tasks, got {given}")
    if args.rounds < 1:
        parser.error(f"--rounds: at least 1, got {args.rounds}")
    sys.path.insert(0, str(HERE))
    import capture
    import capture_ab

    capture.stop_on_signals()
    trees = {"B": HERE.parent}
    if args.before is not None:
        trees = {"A": args.before.resolve(), **trees}
        if not (trees["A"] / "core" / "src" / "lakeline").is_dir():
            raise SystemExit(f"--before {args.before}: no core/src/lakeline (git archive it there)")
    for tree in trees.values():
        for folder in capture_ab.sources(tree):
            compileall.compile_dir(folder, quiet=1)
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-split-"))
    harness = server = None
    results: dict[tuple[str, str], dict[str, Any]] = {}
    serial, began = 0, time.perf_counter()
    try:
        if "prefect" in engines:  # one Prefect server, its clients the children
            import prefect_overhead as pf

            os.environ.update(pf.OFFLINE)
            os.environ["PREFECT_HOME"] = str(base / "prefect")
            import prefect.settings
            from prefect.testing.utilities import prefect_test_harness

            harness = prefect_test_harness(server_startup_timeout=90)
            harness.__enter__()
            os.environ["PREFECT_API_URL"] = str(prefect.settings.PREFECT_API_URL.value())
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            if db == "postgres" and server is None:
                from lakeline.testing_servers import PostgresServer

                shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
                server = PostgresServer(parent_dir=shm).start()
            for engine in engines:
                row: dict[str, Any] = {side: [] for side in trees}
                row["load"], start = [capture.load()], time.perf_counter()
                print(f"[{db}] {engine} {sizes[engine]}: load {row['load'][0]}", file=sys.stderr)
                for r in range(args.rounds):
                    order = list(sizes[engine]) if r % 2 == 0 else list(reversed(sizes[engine]))
                    for side in list(trees) if r % 2 == 0 else list(reversed(trees)):
                        serial += 1
                        spec = {
                            "engine": engine,
                            "db": db,
                            "sizes": order,
                            "warm": args.warm,
                            "variant": args.variant,
                            # the Nextflow import's figure is less its dry run: always run
                            "baseline": not args.no_baseline or engine in DRY_RUN,
                            "tree": str(trees[side]),
                            "serial": serial,
                            "admin": None if server is None or db == "sqlite" else server.url(),
                            "tmp": str(base),
                        }
                        got = run_child(spec, capture_ab.sources(trees[side]))
                        if server is not None and db == "postgres":
                            capture_ab._drop(server, f"c{serial}_")
                        row[side].append(got["runs"])
                        line = describe(engine, db, side, r, got["runs"])
                        print(f"{line}; load {capture.load()}", flush=True)
                row["took"] = time.perf_counter() - start
                row["load"].append(capture.load())
                results[(engine, db)] = row
                print(f"[{db}] {engine}: took {row['took']:.0f} s", file=sys.stderr)
    finally:
        if harness is not None:
            harness.__exit__(None, None, None)
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    report(results, args)
    print(f"all took {time.perf_counter() - began:.0f} s")
    if args.json is not None:
        rows = [{"engine": e, "db": db, **row} for (e, db), row in results.items()]
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(json.loads(sys.argv[2]))
    else:
        main()
