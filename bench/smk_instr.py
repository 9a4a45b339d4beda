"""Instructions the Snakemake plugin spends a job, by part, counted by callgrind (the same
count whatever the machine's load).

    uv run --frozen python bench/smk_instr.py [--jobs 100,400] [--before DIR] [--steps 150]

Each size runs in a fresh process under `valgrind --tool=callgrind` (instrumentation on only
while the plugin works): Snakemake's modules imported, a fresh SQLite instance, bench/
snakemake_overhead.py's workflow with every output and its `.snakemake/metadata` record
written beforehand; then the plugin's Tracker is fed the log records Snakemake would log
(`workflow_started`, per job `job_info` and `job_finished`, then the `all` job), 8 jobs'
records a batch as the plugin's thread takes them (`from_record`, `Tracker.apply_many`), and
closed. The batch is written every `--steps` finished jobs (a real busy run writes one every
10 s: ~100-200 jobs on this machine), never by age. Parts (each exclusive of the parts timed
inside it, through zone functions of a small C module that callgrind sees): `own` (the
tracker's and writer's logic), `parse`, `journal`, `stats` (stats, `.snakemake/metadata`
reads), `sources`, `calls` (the Recorder's calls less what they hash or flush), `hash`,
`flush` (less `sql` and `hash`), `sql` (the driver's execute and commit: SQLite's C work with
the audit triggers' Python functions), and `gc` (collections inside any part, from
`gc_collect_main`; Snakemake's start-up heap frozen first, as the plugin freezes it).
`SMK_INSTR_DETAIL=1` splits the Recorder's calls; `=more` also the plugin's own and the
calls' steps, finer (each zone entered costs its parent a few thousand instructions more:
read such splits relatively); `SMK_INSTR_GC_OFF=1` runs with the collector off.
`SMK_INSTR_FLUSH=1` splits the flush's Python into zones (the rows' binding, the runs' and
artifacts' inserts, `detach`, `settle_keys`, ...); `=bind` also each column's binding, by table.
The slope a job is the difference of the two sizes over the jobs added. `--before DIR`
(`git archive REV core/src integrations` extracted): the same for that tree (A) and this
checkout (B). The log filter in Snakemake's thread (`live.py`) is not run. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("own", "parse", "journal", "stats", "sources", "calls", "hash", "flush", "sql")
ZONES = 100
ZONES_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *run(PyObject *args, PyObject *kw) {
    PyObject *f = PyTuple_GET_ITEM(args, 0);
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (rest == NULL) return NULL;
    PyObject *r = PyObject_Call(f, rest, kw);
    Py_DECREF(rest);
    return r;
}
"""


def build_zones(folder: Path) -> Path:
    """Compile the zone functions (z0..zN, each calls its first argument with the rest)."""
    source = ZONES_C
    for i in range(ZONES):
        source += (
            f"static PyObject *z{i}(PyObject *s, PyObject *a, PyObject *k) "
            "{ return run(a, k); }\n"
        )
    table = ",".join(
        f'{{"z{i}", (PyCFunction)(void(*)(void))z{i}, METH_VARARGS | METH_KEYWORDS, 0}}'
        for i in range(ZONES)
    )
    source += f"static PyMethodDef methods[] = {{{table}, {{0}}}};\n"
    source += (
        'static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "smkzones", 0, -1, methods};\n'
    )
    source += "PyMODINIT_FUNC PyInit_smkzones(void) { return PyModule_Create(&mod); }\n"
    (folder / "smkzones.c").write_text(source)
    out = folder / f"smkzones{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    command = ["gcc", "-O0", "-g", "-shared", "-fPIC", f"-I{include}", "smkzones.c", "-o", out.name]
    subprocess.run(command, cwd=folder, check=True)
    return folder


def child(folder: Path, jobs: int, steps: int, zones: Path) -> None:
    """One measured run in this process (under callgrind): prints the zones' meaning."""
    import gc
    import importlib
    import logging
    import threading
    import time
    from base64 import urlsafe_b64encode
    from typing import Any

    sys.path.insert(0, str(zones))
    sys.path.insert(0, str(HERE))
    import lakeline as ll
    import smkzones  # type: ignore[import-not-found]
    import snakemake.api  # Snakemake's heap, as in a real run
    import snakemake.workflow  # noqa: F401
    import snakemake_overhead as smk

    local = threading.local()
    nodes: dict[tuple[str | None, str], str] = {}

    def zoned(owner: Any, name: str, part: str) -> None:
        setattr(owner, name, zone_of(getattr(owner, name), part))

    def zone_of(original: Any, part: str) -> Any:
        """`original` counted as `part` (exclusive of the parts timed inside it)."""

        def wrapper(*a: object, **k: object) -> object:
            parent = getattr(local, "part", None)
            if parent == part:
                return original(*a, **k)
            zone = nodes.get((parent, part))
            if zone is None:
                zone = nodes[(parent, part)] = f"z{len(nodes)}"
            local.part = part
            try:
                return getattr(smkzones, zone)(original, *a, **k)
            finally:
                local.part = parent

        return wrapper

    handler = importlib.import_module("snakemake_logger_plugin_lakeline.handler")
    tracker_mod = importlib.import_module("snakemake_logger_plugin_lakeline.tracker")
    journal = importlib.import_module("snakemake_logger_plugin_lakeline.journal")
    metadata = importlib.import_module("snakemake_logger_plugin_lakeline.metadata")
    sources = importlib.import_module("snakemake_logger_plugin_lakeline.sources")
    batching = importlib.import_module("lakeline.lineage.batching")
    hashing = importlib.import_module("lakeline.storage.hashing")
    default = importlib.import_module("sqlalchemy.engine.default")
    zoned(handler, "from_record", "parse")
    zoned(tracker_mod.Tracker, "apply_many", "own")
    zoned(tracker_mod.Tracker, "close", "own")
    zoned(tracker_mod, "stats_of", "stats")
    jobs_mod = importlib.import_module("snakemake_logger_plugin_lakeline.jobs")
    if hasattr(jobs_mod, "stats_of"):  # (Job.observe takes the products' stats there)
        zoned(jobs_mod, "stats_of", "stats")
    zoned(journal.Journal, "write", "journal")
    zoned(journal.Journal, "flush", "journal")
    zoned(metadata, "read", "stats")
    zoned(sources.Sources, "rule", "sources")
    for name in ("start_step", "use", "produce", "finish_step", "use_saved", "finish_workflow"):
        zoned(batching.BatchRecorder, name, "calls")
    zoned(batching.BatchRecorder, "_write", "flush")
    zoned(batching.BatchRecorder, "_insert_runs", "flush")
    zoned(hashing, "hash_local_file", "hash")
    zoned(hashing, "hash_folder", "hash")
    for name in ("do_execute", "do_executemany", "do_execute_no_params", "do_commit"):
        zoned(default.DefaultDialect, name, "sql")
    if os.environ.get("SMK_INSTR_DETAIL"):  # the Recorder's calls, part by part
        records = importlib.import_module("lakeline.lineage.records")
        recorder = importlib.import_module("lakeline.lineage.recorder")
        for name in ("run_params", "checked_params", "new_run", "plan_file", "describe_new"):
            if hasattr(batching, name):  # (run_params: checked_params since rowbind)
                zoned(batching, name, f"calls:{name}")
        file_recording = importlib.import_module("lakeline.lineage.file_recording")
        if hasattr(file_recording, "resolve_existing"):  # else batching's (before stop 30)
            zoned(file_recording, "resolve_existing", "calls:resolve_existing")
        else:
            zoned(batching, "resolve_existing", "calls:resolve_existing")
        zoned(batching, "storage_containing", "calls:storage_containing")
        zoned(records, "check_json", "calls:check_json")
        zoned(recorder.Recorder, "_describe", "calls:describe")
        zoned(handler, "from_record", "parse")
    if os.environ.get("SMK_INSTR_FLUSH"):  # the flush's Python, part by part
        bw = importlib.import_module("lakeline.lineage.batch_write")
        save = importlib.import_module("lakeline.artifacts.save")
        rows = importlib.import_module("lakeline.db.rows")
        sqlite_rows = importlib.import_module("lakeline.db.sqlite_rows")
        settle = importlib.import_module("lakeline.artifacts.settle")
        run_rows = importlib.import_module("lakeline.lineage.run_rows")
        seen = importlib.import_module("lakeline.lineage.seen")
        session_mod = importlib.import_module("lakeline.db.session")
        places = importlib.import_module("lakeline.artifacts.places")
        zoned(bw, "insert_new_runs", "flush:runs_insert")
        zoned(bw, "insert_inputs", "flush:edges")
        zoned(bw, "finish_found", "flush:finish_found")
        zoned(bw, "claim_many", "flush:claims")
        zoned(bw, "fire_each", "flush:fire")
        zoned(save, "write_batch", "flush:save_batch")
        zoned(save, "settle_keys", "flush:settle_keys")
        zoned(save, "_existing", "flush:existing")
        zoned(save, "_insert", "flush:art_insert")
        zoned(save, "_finish", "flush:save_finish")
        zoned(save, "settle", "flush:settle")
        zoned(save, "lock_keys", "flush:lock_keys")
        zoned(places.Places, "lookup", "flush:places_lookup")
        zoned(places.Places, "found", "flush:places_found")
        zoned(sqlite_rows, "_bound", "flush:bound")
        zoned(rows, "_bound", "flush:bound")
        zoned(rows, "bound_values", "flush:bound")
        zoned(settle, "detach", "flush:detach")
        zoned(save, "detach", "flush:detach")
        zoned(run_rows, "_loaded", "flush:loaded")
        zoned(seen.SeenFiles, "remember", "flush:seen")
        if os.environ["SMK_INSTR_FLUSH"] == "bind":  # each column's binding, by table
            plan_of = rows._bind_plan

            def zoned_plan(table: Any, dialect: Any, names: list[str]) -> Any:
                return [
                    [(i, zone_of(f, f"flush:bind:{table.name}.{names[i]}")) for i, f in part]
                    for part in plan_of(table, dialect, names)
                ]

            rows._bind_plan = zoned_plan
        zoned(session_mod, "stamp", "flush:stamp")
    if os.environ.get("SMK_INSTR_DETAIL") == "more":  # the plugin's own and the calls, finer
        writer = importlib.import_module("snakemake_logger_plugin_lakeline.writer")
        for name in ("key_of", "_lookup", "_remember", "use", "produce", "finish"):
            zoned(writer.Writer, name, f"own:writer.{name}")
        for name in ("_start", "_observe", "_finish", "_job_info", "_job_finished", "_write"):
            if hasattr(tracker_mod.Tracker, name):  # (_observe: Job.observe since smkplugin)
                zoned(tracker_mod.Tracker, name, f"own:tracker.{name}")
        if hasattr(jobs_mod.Job, "observe"):
            zoned(jobs_mod.Job, "observe", "own:tracker._observe")
        for name in ("_located", "_queue", "_due", "_check_error"):
            zoned(batching.BatchRecorder, name, f"calls:{name}")
        planning = importlib.import_module("lakeline.artifacts.planning")
        for name in ("hash_in_place", "validate_key", "_ref_place", "Plan"):
            zoned(planning, name, f"calls:plan.{name}")
    tracker_mod.BATCH_STEPS = steps
    tracker_mod.BATCH_MS = tracker_mod.STARTED_MS = 1e9

    os.environ["LAKELINE_HOME"] = str(folder / "home")
    ll.init(storage=folder / "data-store", name="instr")
    ll.disconnect()
    wf = smk.workflow(folder / "wf", jobs)
    (wf / "Snakefile").write_text(smk.SNAKEFILE)
    (wf / "out").mkdir()
    meta = wf / ".snakemake" / "metadata"
    meta.mkdir(parents=True)
    now = time.time()
    for i in range(jobs):
        out = f"out/{i}.txt"
        (wf / out).write_text((wf / "data" / f"{i}.txt").read_text().upper())
        record = {
            "rule": "step",
            "input": [f"data/{i}.txt"],
            "log": [],
            "shellcmd": f"tr a-z A-Z < data/{i}.txt > {out}",
            "params": [],
            "code": "tr a-z A-Z < {input} > {output}",
            "record_format_version": 6,
            "conda_env": None,
            "container_img_url": None,
            "software_stack_hash": "d41d8cd98f00b204e9800998ecf8427e",
            "job_hash": 8780965894437 + i,
            "starttime": now + i * 0.01,
            "endtime": now + i * 0.01 + 0.005,
            "incomplete": False,
            "external_jobid": None,
            "input_checksums": {f"data/{i}.txt": "sha256:" + "0" * 64},
        }
        (meta / urlsafe_b64encode(out.encode()).decode()).write_text(json.dumps(record))

    def record(**fields: Any) -> logging.LogRecord:
        made = logging.LogRecord("snakemake.logging", logging.INFO, __file__, 0, "", None, None)
        made.__dict__.update(fields)
        return made

    snakefile = str(wf / "Snakefile")
    started = record(
        event="workflow_started",
        workflow_id="w-instr",
        snakefile_main=snakefile,
        basedir=str(wf),
        cmd="snakemake --cores 2 all",
        lakeline_workflow={"workdir": str(wf)},
    )

    def info(i: int, inputs: list[str], outputs: list[str], rule: str) -> logging.LogRecord:
        return record(
            event="job_info",
            jobid=i,
            rule_name=rule,
            input=inputs,
            output=outputs,
            log=[],
            wildcards={"i": str(i)} if outputs else {},
            threads=1,
            resources={"tmpdir": "/tmp", "_nodes": 1, "_cores": 1},
            shellcmd=f"tr a-z A-Z < {inputs[0]} > {outputs[0]}" if outputs else None,
            reason="Missing output files: " + ", ".join(outputs or inputs[:1]),
            lakeline_job={"rule_file": snakefile, "rule_line": 15 if outputs else 12},
        )

    batches = [[started]]
    for first in range(0, jobs, 8):
        chunk = range(first, min(first + 8, jobs))
        batch = [info(i + 1, [f"data/{i}.txt"], [f"out/{i}.txt"], "step") for i in chunk]
        batch += [record(event="job_finished", job_id=i + 1) for i in chunk]
        batches.append(batch)
    everything = [f"out/{i}.txt" for i in range(jobs)]
    batches.append([info(0, everything, [], "all"), record(event="job_finished", job_id=0)])

    tracker = tracker_mod.Tracker(report=lambda _: None)
    tracker.connect()
    take = handler.from_record
    gc.collect()
    gc.freeze()  # Snakemake's start-up heap and the set-up's, as the plugin freezes them
    if os.environ.get("SMK_INSTR_GC_OFF"):
        gc.disable()
    profile_to = os.environ.get("SMK_INSTR_PROFILE")  # cProfile instead (no valgrind)
    profiler = None
    instrument = ["callgrind_control", "-i", "on", str(os.getpid())]
    if profile_to:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
    else:
        subprocess.run(instrument, check=True, stdout=subprocess.DEVNULL)
    for batch in batches:
        events = [e for e in (take(r) for r in batch) if e is not None]
        tracker.apply_many(events)
    tracker.close()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)
    else:
        instrument[2] = "off"
        subprocess.run(instrument, check=True, stdout=subprocess.DEVNULL)
    print("NODES " + json.dumps({z: list(k) for k, z in nodes.items()}), file=sys.stderr)


def measure(jobs: int, steps: int, zones: Path, env: dict[str, str]) -> dict[str, float]:
    """Instructions by part of one run of `jobs` jobs (millions)."""
    folder = Path(tempfile.mkdtemp(prefix="lakeline-bench-instr-"))
    out = folder / "callgrind.out"
    try:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        command += [f"--callgrind-out-file={out}", sys.executable, str(Path(__file__).resolve())]
        command += ["--child", str(folder), str(jobs), str(steps), str(zones)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        found = re.search(r"^NODES (.*)$", done.stderr, re.M)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
        nodes = {z: tuple(k) for z, k in json.loads(found.group(1)).items()}
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    inclusive: dict[str, int] = {}
    for line in annotated.splitlines():
        hit = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?\S*:(\w+)(?: |$)", line)
        if hit and hit.group(2) not in inclusive:
            inclusive[hit.group(2)] = int(hit.group(1).replace(",", ""))
    total = re.search(r"^([\d,]+)\s+(?:\([^)]*\)\s+)?PROGRAM TOTALS", annotated, re.M)
    parts = dict.fromkeys(PARTS, 0.0)
    for zone, (parent, part) in nodes.items():
        cost = inclusive.get(zone, 0)
        parts[part] = parts.get(part, 0.0) + cost
        if parent is not None:
            parts[parent] -= cost
    gc_cost = inclusive.get("gc_collect_main", 0)
    figures = {p: v / 1e6 for p, v in parts.items()}
    figures["gc"] = gc_cost / 1e6  # inside the parts above too (not subtracted from them)
    figures["total"] = (int(total.group(1).replace(",", "")) if total else 0) / 1e6
    return figures


def main() -> None:
    if "--child" in sys.argv:
        at = sys.argv.index("--child")
        folder, jobs, steps, zones = sys.argv[at + 1 : at + 5]
        child(Path(folder), int(jobs), int(steps), Path(zones))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", default="100,400", help="two sizes")
    parser.add_argument("--steps", type=int, default=150, help="finished jobs a batch")
    parser.add_argument("--before", type=Path, default=None)
    args = parser.parse_args()
    small, large = (int(j) for j in args.jobs.split(","))
    zones = build_zones(Path(tempfile.mkdtemp(prefix="lakeline-zones-")))
    sides: dict[str, list[Path]] = {"B": []}
    if args.before is not None:
        tree = args.before.resolve()
        sides = {"A": [tree / "core" / "src", *sorted((tree / "integrations").glob("*/src"))]}
        sides["B"] = []
    rows = {}
    for side, roots in sides.items():
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if roots:
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in roots)
        figures = [measure(n, args.steps, zones, env) for n in (small, large)]
        rows[side] = {
            k: (figures[1][k] - figures[0][k]) / (large - small) * 1000 for k in figures[0]
        }
        shown = ", ".join(f"{k} {v:.0f}" for k, v in rows[side].items())
        print(f"{side}: thousand instructions a job ({small + 1} -> {large + 1} jobs): {shown}")
        shown = ", ".join(f"{k} {v:.1f}" for k, v in figures[1].items())
        print(f"{side}: millions at {large + 1} jobs: {shown}", flush=True)
    shutil.rmtree(zones, ignore_errors=True)


if __name__ == "__main__":
    main()
