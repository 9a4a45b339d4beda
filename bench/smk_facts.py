"""The facts a Snakemake run records, normalised, to compare two checkouts (A/B).

    uv run --frozen python bench/smk_facts.py TREE sqlite|postgres OUT
    uv run --frozen python bench/smk_facts.py --compare OUT_A OUT_B

TREE: a `git archive REV core/src integrations` tree, put first on PYTHONPATH. Into fresh
instances (a PostgreSQL server of its own), three real `snakemake --logger lakeline` runs of
one workflow folder (temp(), update(), a checkpoint, a pipe(), a job retried, a failed job
with --keep-going, --quiet progress, symlinks: a link output, an input through a linked
folder); then `import_workflow` of the folder into a second instance and again into the
first. OUT gets each catalog's tables as JSON (live.json, import.json, live_reimport.json):
ids and uids replaced by the records' natural keys, workflow ids by their order, times by
the journal or `.snakemake/metadata` event they equal ("now" if none), the audit log by its
counts of (table, action, columns); and the journals. `--compare` diffs two OUTs, journals
too. What varies between two runs of the same checkout (Snakemake's scheduling): the order
of jobs (which record of a place two links share a later plain use is linked to), the
"reason" lists, a temp() removal Snakemake logs twice, the audit log's insert/update split
(batch timing), the times of the metadata-only import. Asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SNAKEFILE = """
N = 40

rule all:
    input: "out/total.txt", "out/agg.txt", expand("out/many/{i}.txt", i=range(N)), "out/upd.txt",
        "out/piped.txt", "out/fromlink.txt", "out/viadir.txt"

rule split:
    input: "data/raw.txt"
    output: temp("tmp/a.txt"), "out/b.txt"
    log: "logs/split.log"
    benchmark: "bench/split.tsv"
    params: p=1, name="x"
    shell: "head -c 20 {input} > {output[0]}; tail -c +21 {input} > {output[1]}; echo split > {log}"

rule use_a:
    input: a="tmp/a.txt", raw="data/raw.txt"
    output: "out/a2.txt"
    shell: "cat {input.a} {input.raw} > {output}"

rule total:
    input: "out/a2.txt", "out/b.txt"
    output: "out/total.txt"
    shell: "cat {input} > {output}"

checkpoint scatter:
    input: "data/raw.txt"
    output: directory("scat")
    shell: "mkdir -p {output}; for i in 1 2 3; do echo $i > {output}/p$i.txt; done"

rule proc:
    input: "scat/p{i}.txt"
    output: "out/proc/{i}.txt"
    shell: "cat {input} {input} > {output}"

def agg_inputs(wildcards):
    d = checkpoints.scatter.get().output[0]
    ids = glob_wildcards(d + "/p{i}.txt").i
    return expand("out/proc/{i}.txt", i=ids)

rule agg:
    input: agg_inputs
    output: "out/agg.txt"
    shell: "cat {input} > {output}"

rule retry:
    input: "data/raw.txt"
    output: "out/retry.txt"
    retries: 2
    shell: "if [ -e tried.flag ]; then cat {input} > {output}; else touch tried.flag; exit 1; fi"

rule many:
    input: "data/raw.txt"
    output: "out/many/{i}.txt"
    shell: "echo {wildcards.i} > {output}; cat {input} >> {output}"

rule upd:
    input: "out/b.txt"
    output: update("out/upd.txt")
    shell: "cat {input} >> {output}"

rule producer:
    output: pipe("pipe.fifo")
    shell: "echo piped > {output}"

rule consumer:
    input: "pipe.fifo"
    output: "out/piped.txt"
    shell: "cat {input} > {output}"

rule fail:
    input: "out/b.txt"
    output: "out/fail.txt"
    log: "logs/fail.log"
    shell: "echo failing > {log}; echo x > {output}; exit 3"

rule mklink:
    input: "data/raw.txt"
    output: "out/link.txt"
    shell: "ln -s ../data/raw.txt {output}"

rule fromlink:
    input: "out/link.txt"
    output: "out/fromlink.txt"
    shell: "cat {input} > {output}"

rule viadir:
    input: "datalink/raw.txt"
    output: "out/viadir.txt"
    shell: "cat {input} > {output}"
"""


def env_for(tree: str, home: Path, name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{tree}/core/src:{tree}/integrations/snakemake/src"
    env["LAKELINE_HOME"] = str(home)
    env["LAKELINE_INSTANCE"] = name
    return env


def py(env, code, cwd=None, check=True):
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    if check and r.returncode:
        raise SystemExit(f"failed: {code}\n{r.stdout}\n{r.stderr}")
    return r


def smk(env, wd, *args):
    cmd = [sys.executable, "-m", "snakemake", "--nocolor", "--logger", "lakeline", *args]
    r = subprocess.run(cmd, env=env, cwd=wd, capture_output=True, text=True, timeout=900)
    lines = [x for x in (r.stdout + r.stderr).splitlines() if "lakeline" in x]
    return r.returncode, lines, r.stdout + r.stderr


def init(env, base: Path, name: str, url: str | None):
    storage = str(base / ("data-" + name))
    code = f"import lakeline as ll; ll.init(storage={storage!r}, db={url!r}, name={name!r})"
    py(env, code)


def journals(wd: Path) -> list[str]:
    return sorted(glob.glob(str(wd / ".snakemake/lakeline/journal/*.jsonl")), key=os.path.getmtime)


def job_names(wd: Path) -> tuple[dict[str, str], dict[tuple[str, int], str]]:
    """workflow id -> WF<i>; (workflow id, jobid) -> rule[wildcards]."""
    wfs, jobs = {}, {}
    for i, path in enumerate(journals(wd)):
        wf = Path(path).stem
        wfs[wf] = f"WF{i}"
        for line in Path(path).read_text().splitlines():
            ev = json.loads(line)
            if ev.get("type") == "JobInfo":
                wc = ",".join(f"{k}={v}" for k, v in sorted((ev.get("wildcards") or {}).items()))
                jobs[(wf, ev["jobid"])] = f"{ev['rule']}[{wc}]"
    return wfs, jobs


def times_of(wd: Path) -> dict[float, str]:
    """Known event times -> a stable label."""
    labels: dict[float, str] = {}
    seen: dict[str, int] = {}
    wfs, jobs = job_names(wd)
    for path in journals(wd):
        wf = Path(path).stem
        for line in Path(path).read_text().splitlines():
            ev = json.loads(line)
            t = ev.get("type")
            job = jobs.get((wf, ev.get("jobid")), ev.get("path", ""))
            what = f"{t}:{job}@{wfs[wf]}"
            n = seen.get(what, 0)
            seen[what] = n + 1
            if "at" in ev:
                labels.setdefault(ev["at"], f"{what}#{n}.at")
            if ev.get("endtime"):
                labels.setdefault(ev["endtime"], f"{what}#{n}.endtime")
            for o, s in (ev.get("started") or {}).items():
                labels.setdefault(s, f"{what}#{n}.started[{o}]")
    for path in glob.glob(str(wd / ".snakemake/metadata/*")):
        try:
            m = json.loads(Path(path).read_text())
        except Exception:
            continue
        for k in ("starttime", "endtime"):
            if m.get(k):
                labels.setdefault(m[k], f"meta.{k}")
    return labels


def label_time(value, labels):
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    ts = value.timestamp()
    for t, label in labels.items():
        if abs(t - ts) < 2e-6:
            return label
    return "now"


def _hash(row: dict) -> str:
    """A record's hash, but a benchmark file's (its timings vary)."""
    return "bench" if row["kind"] == "benchmark" else str(row["hash"])


def dump(url: str, wd: Path, out: Path):
    import sqlalchemy as sa

    labels = times_of(wd)
    eng = sa.create_engine(url)
    md = sa.MetaData()
    md.reflect(eng)
    rows = {}
    with eng.connect() as c:
        for name, table in md.tables.items():
            rows[name] = [dict(r._mapping) for r in c.execute(sa.select(table))]
    # labels for records
    tr = {
        r["id"]: f"T[{r['key']}|{r['kind']}|v{r.get('version')}|h{(r['hash'] or '')[:10]}]"
        for r in rows.get("transforms", [])
    }
    wfs, jobs = job_names(wd)

    def clean(s):
        if isinstance(s, str):
            for w, lab in wfs.items():
                if s.startswith(w + "/"):
                    s = (
                        lab
                        + "/"
                        + jobs.get(
                            (w, int(s.split("/")[1])) if s.split("/")[1].isdigit() else None,
                            s.split("/")[1],
                        )
                    )
                s = s.replace(w, lab)
            s = s.replace(str(wd), "WD")
            s = re.sub(r"import-[0-9a-f]{16}", "import-X", s)
            s = re.sub(r"@\d+\.\d+@", "@T@", s)
            s = re.sub(r"/tmp/catdump-[^/]+", "BASE", s)
        return s

    rn = {
        r["id"]: f"R[{tr.get(r['transform_id'])}|{clean(r['engine_ref'])}]"
        for r in rows.get("runs", [])
    }
    ar = {
        r["id"]: f"A[{r['key']}|{clean(r['store_key'])}|{_hash(r)}|{r.get('version')}]"
        for r in rows.get("artifacts", [])
    }
    uids = {}
    for t, lab in (("transforms", tr), ("runs", rn), ("artifacts", ar)):
        for r in rows.get(t, []):
            uids[r["uid"]] = lab[r["id"]]
    fk = {}
    for name, table in md.tables.items():
        for col in table.columns:
            for f in col.foreign_keys:
                fk[(name, col.name)] = f.column.table.name
    maps = {"transforms": tr, "runs": rn, "artifacts": ar}
    result = {}
    for name, items in rows.items():
        if name in ("alembic_version",):
            result[name] = items
            continue
        if "fts" in name or "search" in name or name.startswith("sqlite_") or name == "audit_head":
            result[name] = "skipped"
            continue
        if name == "audit_log":
            cnt = Counter()
            for r in items:
                ch = r.get("changes")
                ch = json.loads(ch) if isinstance(ch, str) else (ch or {})
                cnt[f"{r['tbl']}|{r['action']}|{','.join(sorted(ch))}"] += 1
            result[name] = dict(sorted(cnt.items()))
            continue
        out_rows = []
        for r in items:
            if name == "artifacts" and r.get("kind") == "benchmark":
                r["hash"], r["size"] = "bench", "bench"
            if (
                name == "runs"
                and isinstance(r.get("params"), (dict, str))
                and r["parent_id"] is not None
            ):
                p = json.loads(r["params"]) if isinstance(r["params"], str) else dict(r["params"])
                p.pop("jobid", None)
                if p.get("reason"):
                    p["reason"] = "; ".join(
                        part.split(": ")[0]
                        + ": "
                        + ", ".join(sorted(part.split(": ", 1)[1].split(", ")))
                        if ": " in part
                        else part
                        for part in p["reason"].split("; ")
                    )
                r["params"] = p
            if "instance_uid" in r:
                r["instance_uid"] = "I"
            if name == "settings" and r.get("key") in ("instance_uid", "default_storage_uid"):
                r["value"] = "V"
            o = {}
            for k, v in r.items():
                target = fk.get((name, k))
                if k == "id":
                    v = maps.get(name, {}).get(v, "id")
                elif target in maps:
                    v = maps[target].get(v, v)
                elif target:
                    v = f"{target}#{v}"
                elif k in ("uid", "stem"):
                    v = uids.get(v, "uid") if k == "uid" else "stem"
                elif isinstance(v, (dt.datetime,)) or k.endswith("_at"):
                    v = label_time(v, labels)
                elif k == "status_log" and v:
                    v = json.loads(v) if isinstance(v, str) else v
                    v = [
                        {kk: (label_time(vv, labels) if kk == "at" else vv) for kk, vv in e.items()}
                        for e in v
                    ]
                elif k == "store_tag" and v:
                    v = "tag"
                elif k == "search_vector":
                    v = "sv"
                elif k in ("pid", "process_started_at"):
                    v = v is not None
                elif isinstance(v, str):
                    v = clean(v)
                elif isinstance(v, (dict, list)):
                    v = json.loads(clean(json.dumps(v, default=str)))
                o[k] = v
            out_rows.append(json.dumps(o, sort_keys=True, default=str))
        result[name] = sorted(out_rows)
    out.write_text(json.dumps(result, indent=1, sort_keys=True))


def main():
    tree, db, outdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    outdir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="catdump-"))
    home = base / "home"
    server = None
    urls = {}
    if db == "postgres":
        from lakeline.testing_servers import PostgresServer

        server = PostgresServer().start()
        for n in ("live", "imp"):
            urls[n] = server.create_database(n)
    else:
        for n in ("live", "imp"):
            urls[n] = None
    try:
        env = env_for(tree, home, "live")
        init(env, base, "live", urls["live"])
        init(env_for(tree, home, "imp"), base, "imp", urls["imp"])
        wd = base / "wf"
        (wd / "data").mkdir(parents=True)
        (wd / "out").mkdir()
        (wd / "Snakefile").write_text(SNAKEFILE)
        (wd / "data/raw.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 3)
        (wd / "out/upd.txt").write_text("seed\n")
        (wd / "datalink").symlink_to(wd / "data")
        log = []
        log.append(smk(env, wd, "--cores", "2", "--keep-going", "all", "fail"))
        log.append(smk(env, wd, "--cores", "1", "all", "retry", "-R", "upd", "split"))
        log.append(smk(env, wd, "--cores", "1", "--quiet", "progress", "-R", "many"))
        (outdir / "runs.log").write_text(json.dumps(log, indent=1))
        live_url = json.loads((home / "instances/live.json").read_text())["db"]
        imp_url = json.loads((home / "instances/imp.json").read_text())["db"]
        dump(live_url, wd, outdir / "live.json")
        code = "from snakemake_logger_plugin_lakeline.importer import import_workflow as i\n"
        code += "print(i('.'))"
        r1 = py(env_for(tree, home, "imp"), code, cwd=wd)
        dump(imp_url, wd, outdir / "import.json")
        r2 = py(env, code, cwd=wd)
        dump(live_url, wd, outdir / "live_reimport.json")
        (outdir / "import.log").write_text(
            r1.stdout + r1.stderr + "\n----\n" + r2.stdout + r2.stderr
        )
        shutil.copytree(wd / ".snakemake/lakeline/journal", outdir / "journal")
    finally:
        if os.environ.get("KEEP") is None:
            shutil.rmtree(base, ignore_errors=True)
        if server is not None:
            server.stop()
    print(base)


def _table_lines(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    lines = []
    for table, rows in sorted(data.items()):
        items = rows if isinstance(rows, list) else [json.dumps(rows, sort_keys=True)]
        lines += [f"{table}: {row}" for row in items]
    return lines


def _journal_lines(out: Path) -> list[str]:
    """Journal events without what varies (times, job ids, paths, messages)."""
    varies = ("at", "endtime", "workflow_id", "jobid", "rule_line", "snakefile", "basedir")
    varies += ("workdir", "cmd", "error", "message", "reason", "rule_file", "resources")
    lines = []
    for path in sorted((out / "journal").glob("*.jsonl"), key=os.path.getmtime):
        for line in path.read_text().splitlines():
            event = json.loads(line)
            kept = {k: v for k, v in event.items() if k not in (*varies, "config", "configfiles")}
            for k in ("files", "started", "input_stats"):
                if isinstance(kept.get(k), dict):
                    kept[k] = sorted(kept[k])
            lines.append(json.dumps(kept, sort_keys=True))
        lines.append("----")
    return sorted(lines)


def compare(a: Path, b: Path) -> None:
    for name in ("live.json", "import.json", "live_reimport.json"):
        diff = list(difflib.unified_diff(_table_lines(a / name), _table_lines(b / name), n=0))
        print(f"== {name}: {len(diff)} diff lines")
        for line in diff:
            print(line[:400])
    diff = list(difflib.unified_diff(_journal_lines(a), _journal_lines(b), n=0))
    print(f"== journals: {len(diff)} diff lines")
    for line in diff:
        print(line[:400])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
