"""`bench/capture.py --before DIR`: this checkout (B) against another one (A), round by round.

    git archive <rev> core/src integrations | tar -x -C DIR
    uv run python bench/capture.py --before DIR [--rounds 5] [the options of capture.py]

This machine's speed moves by a third within minutes, so one pass of capture.py per checkout
cannot tell a 10-20 % change. Here every round, engine and database runs once with each
checkout, each in a fresh process (`capture_ab.py --child`: the engine's measure of capture.py
with one counted round, after its own warm-up round where capture.py has one), the order
alternated round by round (AB, BA, AB, ...). A runs with DIR's `core/src` and
`integrations/*/src` first on PYTHONPATH (put before the venv's editable installs, which are
path entries), B with this checkout's own (sys.path alike on both sides). Snakemake, a process
of its own, inherits PYTHONPATH and finds its logger plugin by module name (pkgutil over
sys.path). Every child checks that lakeline and the integrations it imported (in Snakemake's
process too, through a wrapper that starts Snakemake) come from its tree, and fails otherwise;
the first round prints where.
The bench's own code (track.py, prefect_overhead.py, ...) is this checkout's for both sides.
Both trees are byte-compiled first, so no side pays compiling in its first process.

Shared by both sides: one PostgreSQL cluster (a new database per instance, a child's dropped
after it), one Prefect test server (the children are its clients). Printed per engine,
database and variant: A's and B's lakeline CPU ms a task (median and best of the rounds), the
paired per-round difference B - A (median, and in how many rounds B was lower), each side's
baseline wall ms a task (the workflow without lakeline: drift and load show there), the load
before and after. `--split N` as in capture.py, its fixed part and slope for each side from
each side's medians. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
MODULES = (
    "lakeline",
    "lakeline_redun",
    "lakeline_prefect",
    "lakeline_nextflow",
    "snakemake_logger_plugin_lakeline",
)
INTEGRATION = {"redun": "redun", "prefect": "prefect", "snakemake": "snakemake"}
INTEGRATION["nextflow"] = "nextflow"

# Snakemake's main, then where lakeline and its plugin came from: written down and checked.
# With the plugin, also the garbage collections that start inside the plugin's measured code
# (its set-up, its batches, its close, the details it adds to a job's record), by generation:
# their thread CPU and their number, and the same of the whole process's collections (any
# thread, Snakemake's too), as JSON into CAPTURE_SNAKEMAKE_GC (capture.snakemake reads it):
# Snakemake's full collections (~50-100 ms each, 3-4 a 200-job run) land there in some
# rounds and not in others.
SNAKEMAKE = """
import gc, json, os, runpy, sys, threading, time
from pathlib import Path
plugged = "lakeline" in sys.argv
inside = threading.local()
collected = {"cpu": [0.0] * 3, "count": [0] * 3, "process_cpu": [0.0] * 3, "process": [0] * 3}
def collecting(phase, info):
    generation, now = info["generation"], time.thread_time()
    if phase == "start":
        inside.started, inside.ours = now, bool(getattr(inside, "depth", 0))
        return
    spent = now - inside.started
    collected["process_cpu"][generation] += spent
    collected["process"][generation] += 1
    if inside.ours:
        collected["cpu"][generation] += spent
        collected["count"][generation] += 1
def measured(owner, name):
    original = getattr(owner, name)
    def run(*args, **kwargs):
        inside.depth = getattr(inside, "depth", 0) + 1
        try:
            return original(*args, **kwargs)
        finally:
            inside.depth -= 1
    setattr(owner, name, run)
if plugged:
    from snakemake_logger_plugin_lakeline import handler, live
    for name in ("__post_init__", "_take", "close"):
        measured(handler.LogHandler, name)
    measured(live.LiveHook, "_annotate")
    gc.callbacks.append(collecting)
try:
    runpy.run_module("snakemake", run_name="__main__", alter_sys=True)
finally:
    tree = Path(os.environ["CAPTURE_AB_TREE"])
    names = ("lakeline", "snakemake_logger_plugin_lakeline")
    found = {n: sys.modules[n].__file__ for n in names if n in sys.modules}
    with open(os.environ["CAPTURE_AB_WHERE"], "a") as f:
        f.write(json.dumps(found) + "\\n")
    if plugged and os.environ.get("CAPTURE_SNAKEMAKE_GC"):
        Path(os.environ["CAPTURE_SNAKEMAKE_GC"]).write_text(json.dumps(collected))
    wrong = [f for f in found.values() if not Path(f).resolve().is_relative_to(tree)]
    if wrong or (plugged and len(found) < 2):
        raise SystemExit(f"capture_ab: Snakemake did not import lakeline from {tree}: {found}")
"""


def sources(tree: Path) -> list[Path]:
    """A checkout's source folders: core/src, then each integration's src."""
    return [tree / "core" / "src", *sorted((tree / "integrations").glob("*/src"))]


class Databases:
    """In a child: new databases on the parent's PostgreSQL cluster, named with the child's
    prefix (the parent drops them after it)."""

    def __init__(self, admin: str, prefix: str) -> None:
        self.admin, self.prefix = admin, prefix

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        name = f"{self.prefix}_{name}"
        with psycopg.connect(self.admin.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"{self.admin.rsplit('/', 1)[0]}/{name}"


def child(spec: dict[str, Any]) -> None:
    """One round of one engine on one database, in this fresh process: its figures and where
    lakeline came from, as one JSON line."""
    sys.path.insert(0, str(HERE))
    import capture

    capture.stop_on_signals()  # SIGTERM: its folder removed (`finally`), as on Ctrl-C
    args = argparse.Namespace(
        tasks=spec["tasks"], redun_tasks=spec["redun_tasks"], rounds=1, variants=spec["variants"]
    )
    # in the parent's folder: removed with it even if this process is killed
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-capture-ab-", dir=spec.get("tmp")))
    tree = Path(spec["tree"]).resolve()
    where = base / "snakemake-imports.jsonl"
    os.environ.update(
        LAKELINE_HOME=str(base / "home"), CAPTURE_AB_TREE=str(tree), CAPTURE_AB_WHERE=str(where)
    )
    admin = spec["admin"]
    server = None if admin is None else Databases(admin, f"c{spec['serial']}")
    bench = capture.Bench(spec["db"], base, args, server)
    bench.launch = ("-c", SNAKEMAKE)
    try:
        figures, n, how = getattr(capture, spec["engine"])(bench)
        found = {m: sys.modules[m].__file__ for m in MODULES if m in sys.modules}
        if where.exists():  # checked in Snakemake's process already
            for line in where.read_text().splitlines():
                found.update({f"snakemake: {m}": f for m, f in json.loads(line).items()})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    wrong = {m: f for m, f in found.items() if not Path(str(f)).resolve().is_relative_to(tree)}
    if "lakeline" not in found or wrong:
        raise SystemExit(f"capture_ab: not imported from {tree}: {wrong or found}")
    print(json.dumps({"figures": figures._asdict(), "n": n, "how": how, "found": found}))


def run_child(spec: dict[str, Any], pythonpath: list[Path]) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # with bytecode caches, as users run
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    argv = [sys.executable, str(Path(__file__)), "--child", json.dumps(spec)]
    done = run_stopping(argv, env)
    if done.returncode != 0:
        raise SystemExit(f"capture_ab child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


STOP_WAIT = 20.0  # s a child has to clean up after SIGTERM before it is killed


def run_stopping(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv, capture_output=True, text=True)`, but a bench interrupted
    meanwhile (Ctrl-C, SIGTERM: `capture.stop_on_signals`) stops its child with SIGTERM first
    and waits up to STOP_WAIT s for its `finally` blocks (its temporary folder, its Snakemake
    or redun run), then kills it. `subprocess.run` killed it at once: its folder stayed."""
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        try:
            out, err = child.communicate()
        except BaseException:
            child.terminate()
            try:
                child.communicate(timeout=STOP_WAIT)
            except BaseException:
                child.kill()
                child.wait()
            raise
    return subprocess.CompletedProcess(argv, child.returncode, out, err)


def _drop(server: Any, prefix: str) -> None:
    """Drop the child's databases (`prefix_*`): the cluster on /dev/shm stays small."""
    import psycopg

    with psycopg.connect(server.url().replace("+psycopg", ""), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        )
        names = [row[0] for row in rows]
    for name in names:
        server.drop_database(name)


def compare(args: argparse.Namespace, engines: list[str]) -> None:
    """capture.py's engines, A (`args.before`) against B (this checkout), alternated."""
    import capture

    trees = {"A": args.before.resolve(), "B": HERE.parent}
    if not (trees["A"] / "core" / "src" / "lakeline").is_dir():
        raise SystemExit(f"--before {args.before}: no core/src/lakeline (git archive it there)")
    for engine in engines:
        if engine in INTEGRATION:
            folder = trees["A"] / "integrations" / INTEGRATION[engine] / "src"
            if not folder.is_dir():
                raise SystemExit(f"--before {args.before}: {engine} needs {folder}")
    for tree in trees.values():
        for folder in sources(tree):
            compileall.compile_dir(folder, quiet=1)
    paths = {side: sources(tree) for side, tree in trees.items()}  # alike sys.path both
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-capture-ab-"))
    harness = server = None
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    serial = 0
    try:
        if "prefect" in engines:  # one Prefect server, its clients both sides' children
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
                field = capture.SIZED.get(engine, "tasks")
                split = args.split if engine in capture.SIZED else 0
                if split == getattr(args, field):  # its size: measured once
                    split = 0
                for size in [getattr(args, field), *([split] if split else [])]:
                    spec = {
                        "engine": engine,
                        "db": db,
                        "tasks": args.tasks,
                        "redun_tasks": args.redun_tasks,
                        "variants": args.variants,
                        "admin": None if db == "sqlite" else server.url(),  # type: ignore[union-attr]
                        "tmp": str(base),
                    }
                    spec[field] = size
                    row: dict[str, Any] = {"A": [], "B": [], "load": [capture.load()]}
                    print(f"[{db}] {engine} ({size}): load {row['load'][0]}", file=sys.stderr)
                    for r in range(args.rounds):
                        for side in "AB" if r % 2 == 0 else "BA":
                            serial += 1
                            spec.update(serial=serial, tree=str(trees[side]))
                            got = run_child(spec, paths[side])
                            if server is not None and db == "postgres":
                                _drop(server, f"c{serial}_")
                            row[side].append(got["figures"])
                            row["n"], row["how"] = got["n"], got["how"]
                            if r == 0:
                                print(f"  {side} imported {got['found']}", file=sys.stderr)
                        print(f"  round {r + 1}: {_round(row, args.variants)}", file=sys.stderr)
                    row["load"].append(capture.load())
                    results[(engine, db, row["n"])] = row
    finally:
        if harness is not None:
            harness.__exit__(None, None, None)
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    report(results, args)


def _cpu(row: dict[str, Any], side: str, variant: str) -> list[float]:
    """A side's lakeline CPU ms a task, per round."""
    return [f["cpu"][variant] / row["n"] * 1000 for f in row[side]]


def _gc(row: dict[str, Any], side: str, variant: str) -> list[float]:
    """A side's garbage collections inside lakeline's code, ms a task per round (NaN: not
    measured for this engine)."""
    return [f.get("gc", {}).get(variant, math.nan) / row["n"] * 1000 for f in row[side]]


def _flushes(row: dict[str, Any], side: str, variant: str) -> list[float]:
    return [f.get("flushes", {}).get(variant, math.nan) for f in row[side]]


def _round(row: dict[str, Any], variants: list[str]) -> str:
    """The last round's lakeline CPU per variant (with its collections' part and the batches
    written, where measured) and baseline wall, ms a task."""
    cpu = []
    for v in variants:
        line = f"{v}: A {_cpu(row, 'A', v)[-1]:.2f} B {_cpu(row, 'B', v)[-1]:.2f}"
        gc, flushes = [_gc(row, s, v)[-1] for s in "AB"], [_flushes(row, s, v)[-1] for s in "AB"]
        if not math.isnan(gc[0] + gc[1]):
            line += f" (gc A {gc[0]:.2f} B {gc[1]:.2f}"
            if not math.isnan(flushes[0] + flushes[1]):
                line += f"; flushes A {flushes[0]:g} B {flushes[1]:g}"
            line += ")"
        cpu.append(line)
    base = [row[s][-1]["wall"]["baseline"] / row["n"] * 1000 for s in "AB"]
    return ", ".join(cpu) + f" ms; baseline A {base[0]:.2f} B {base[1]:.2f} ms"


def report(results: dict[tuple[str, str, int], dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"capture, A = {args.before} against B = this checkout: {args.rounds} rounds, each a "
        "fresh process per side, alternated (AB, BA, ...); ms a task"
    )
    print(
        f"{'':<30} {'lakeline CPU':^27} {'B - A':^19} {'baseline wall':^15}\n"
        f"{'engine':<10} {'db':<9} {'var':<3} {'tasks':>5} {'A med':>6} {'best':>6} "
        f"{'B med':>6} {'best':>6} {'median':>7} {'%':>5} {'lower':>5} {'A med':>7} {'B med':>7}  "
        "load before / after"
    )
    for (engine, db, n), row in results.items():
        for variant in args.variants:
            a, b = _cpu(row, "A", variant), _cpu(row, "B", variant)
            diff = [y - x for x, y in zip(a, b, strict=True)]
            lower = f"{sum(d < 0 for d in diff)}/{len(diff)}"
            share = statistics.median(diff) / statistics.median(a) * 100
            base = {s: [f["wall"]["baseline"] / n * 1000 for f in row[s]] for s in "AB"}
            print(
                f"{engine:<10} {db:<9} {variant:<3} {n:>5} {statistics.median(a):>6.2f} "
                f"{min(a):>6.2f} {statistics.median(b):>6.2f} {min(b):>6.2f} "
                f"{statistics.median(diff):>+7.2f} {share:>+5.0f} {lower:>5} "
                f"{statistics.median(base['A']):>7.2f} {statistics.median(base['B']):>7.2f}  "
                f"{' / '.join(row['load'])}"
            )
    for (engine, db, _), row in results.items():
        for variant in args.variants:
            gc = {s: _gc(row, s, variant) for s in "AB"}
            if any(math.isnan(x) for x in gc["A"] + gc["B"]):
                continue  # not measured for this engine
            less = {
                s: [c - g for c, g in zip(_cpu(row, s, variant), gc[s], strict=True)] for s in "AB"
            }
            diff = [y - x for x, y in zip(less["A"], less["B"], strict=True)]
            flushes = {s: statistics.median(_flushes(row, s, variant)) for s in "AB"}
            print(
                f"{engine:<10} {db:<9} {variant:<3} less gc: A {statistics.median(less['A']):.2f} "
                f"B {statistics.median(less['B']):.2f}, B - A {statistics.median(diff):+.2f} "
                f"({sum(d < 0 for d in diff)}/{len(diff)} lower); gc medians A "
                f"{statistics.median(gc['A']):.2f} B {statistics.median(gc['B']):.2f}, max A "
                f"{max(gc['A']):.2f} B {max(gc['B']):.2f}"
                + (
                    ""
                    if math.isnan(flushes["A"] + flushes["B"])
                    else f"; flushes a run A {flushes['A']:g} B {flushes['B']:g}"
                )
            )
    print(
        "lakeline CPU: CPU time of the threads while they run lakeline's code (capture.py). "
        "B - A: the paired difference of each round's two processes, its median (and as a "
        "share of A's median); lower: in how many rounds B used less. baseline: the "
        "workflow's wall time without lakeline, per side (drift shows there). less gc "
        "(Prefect, Snakemake): the same less the garbage collections that started inside "
        "lakeline's code, which a full collection of the engine's heap landing there or not "
        "swings by ~0.3-1 ms a task; flushes: batches a run wrote (medians; Prefect)."
    )
    if args.split:
        import capture

        variant = "on" if "on" in args.variants else "off"
        for side in "AB":
            medians = [
                (
                    e,
                    db,
                    n,
                    SimpleNamespace(
                        cpu={variant: statistics.median(_cpu(row, side, variant)) * n / 1000}
                    ),
                )
                for (e, db, n), row in results.items()
            ]
            print(f"{side} ({args.before if side == 'A' else 'this checkout'}):")
            capture.print_split(medians, variant)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(json.loads(sys.argv[2]))
    else:
        raise SystemExit("run bench/capture.py --before DIR")
