"""Real Snakemake workflows run with `--logger lakeline`; the recorded lineage is checked
edge by edge against what each Snakefile implies (on SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.testing import lineage_snapshot
from smk_testkit import Step, run_snakemake, steps, workflow_runs, write_workflow
from snakemake_logger_plugin_lakeline.importer import import_workflow

SAMPLES = ("s1", "s2", "s3")

# shell, run and script rules; wildcards; params, threads, resources; multiple and named
# inputs and outputs; temp(), directory(); logs and benchmarks; a config file. (One `run:`
# job only: Snakemake runs each in a new Python process that imports all of Snakemake.)
SHAPES = """
configfile: "config.yaml"
SAMPLES = config["samples"]

rule all:
    input:
        "results/report.txt",
        "results/tables",

rule split:
    input:
        reads="data/{s}.txt",
    output:
        words=temp("work/{s}.words"),
        lines="work/{s}.lines",
    params:
        sep=" ",
    log:
        "logs/split_{s}.log",
    benchmark:
        "bench/split_{s}.tsv"
    threads: 1
    resources:
        mem_mb=10,
    shell:
        "tr '{params.sep}' '\\\\n' < {input.reads} > {output.words}; "
        "wc -l < {input.reads} > {output.lines}; echo split {wildcards.s} > {log}"

rule stats:
    input:
        words="work/{s}.words",
        lines="work/{s}.lines",
    output:
        "results/{s}.stats",
    shell:
        "printf '%s\\t%s\\n' {wildcards.s} $(wc -w < {input.words}) > {output}"

rule tables:
    input:
        expand("results/{s}.stats", s=SAMPLES),
    output:
        directory("results/tables"),
    run:
        import os, shutil
        os.makedirs(output[0])
        for path in input:
            shutil.copy(path, output[0])

rule report:
    input:
        stats=expand("results/{s}.stats", s=SAMPLES),
        header=config["header"],
    output:
        "results/report.txt",
    script:
        "scripts/report.py"
"""

REPORT = """
with open(snakemake.output[0], "w") as out:
    out.write(open(snakemake.input.header).read())
    for path in snakemake.input.stats:
        out.write(open(path).read())
"""


def shapes_workflow(root: Path) -> Path:
    files = {f"data/{s}.txt": f"{s} " + " ".join(["w"] * (i + 2)) for i, s in enumerate(SAMPLES)}
    header = root.parent / "shared" / "header.txt"  # outside the workflow folder
    header.parent.mkdir(parents=True, exist_ok=True)
    header.write_text("sample\twords\n")
    files["config.yaml"] = f"samples: [s1, s2, s3]\nheader: {header}\n"
    files["scripts/report.py"] = REPORT
    return write_workflow(root, SHAPES, files)


def expected_shapes() -> list[Step]:
    stats = frozenset(f"results/{s}.stats" for s in SAMPLES)
    expected = [
        Step("all", frozenset({"results/report.txt", "results/tables"})),
        Step("tables", stats, frozenset({"results/tables"})),
        Step("report", stats | {"header.txt"}, frozenset({"results/report.txt"})),
    ]
    for s in SAMPLES:
        made = {f"work/{s}.words", f"work/{s}.lines", f"logs/split_{s}.log", f"bench/split_{s}.tsv"}
        expected += [
            Step("split", frozenset({f"data/{s}.txt"}), frozenset(made)),
            Step(
                "stats",
                frozenset({f"work/{s}.words", f"work/{s}.lines"}),
                frozenset({f"results/{s}.stats"}),
            ),
        ]
    return sorted(expected, key=lambda s: (s.key, sorted(s.inputs), sorted(s.outputs), s.status))


def test_shapes_edge_by_edge_then_rerun(instance: Instance, tmp_path: Path) -> None:
    root = shapes_workflow(tmp_path / "wf")
    result = run_snakemake(root, cores=2)
    assert "lakeline: recorded 9 jobs" in result.stderr
    assert re.search(r"\(\d+\.\d{3} s recording, \d+\.\d{3} s CPU\)", result.stderr)
    assert not (root / "work" / "s1.words").exists()  # temp() removed by Snakemake
    assert steps() == expected_shapes()

    workflow = ll.Run.get(engine="snakemake", parent_id__isnull=True)
    assert workflow.status == "completed" and workflow.started_at and workflow.finished_at
    assert workflow.params is not None
    header = str(tmp_path / "shared" / "header.txt")
    assert workflow.params["config"] == {"samples": ["s1", "s2", "s3"], "header": header}
    external = ll.Artifact.get(key="header.txt")  # registered where it is, not copied
    assert external.in_place and external.path == header
    assert "--logger lakeline" in workflow.params["command"]
    assert "@lakeline" not in workflow.params  # recorded whole: no note on its lineage
    pipeline = workflow.transform
    assert (pipeline.key, pipeline.kind) == ("wf", "pipeline")
    assert pipeline.source_code == (root / "Snakefile").read_text()

    children = workflow.children.all()
    split = next(
        r
        for r in children
        if r.params and r.params.get("wildcards") == {"s": "s2"} and r.transform.key == "split"
    )
    assert split.params is not None
    assert split.params["params"] == {"sep": " "} and split.params["threads"] == 1
    assert split.params["resources"]["mem_mb"] == 10
    assert "tr ' ' '\\n' < data/s2.txt" in split.params["shellcmd"]
    assert split.exit_code == 0 and split.started_at <= split.finished_at  # type: ignore[operator]
    assert split.transform.parent_id == pipeline.id
    assert split.transform.source_code.startswith("rule split:")  # type: ignore[union-attr]
    assert ll.Artifact.get(key="work/s2.words").kind == "transient"
    assert ll.Artifact.get(key="logs/split_s2.log").kind == "log"
    assert ll.Artifact.get(key="bench/split_s2.tsv").kind == "benchmark"
    assert ll.Artifact.get(key="results/tables").n_files == 4  # + .snakemake_timestamp
    assert text_of("results/s2.stats") == "s2\t4\n"
    roles = {a.key: role for a, role in _inputs_with_roles(split.id)}
    assert roles == {"data/s2.txt": "reads"}

    report = next(r for r in children if r.transform.key == "report")
    script = (root / "scripts" / "report.py").read_text()
    assert report.params is not None and report.params["script"]["sha256"]
    assert report.transform.source_code.endswith(script)  # type: ignore[union-attr]
    tables = next(r for r in children if r.transform.key == "tables")
    assert "shutil.copy(path, output[0])" in (tables.transform.source_code or "")

    # importing the run's journal again changes nothing
    before = lineage_snapshot("snakemake")
    import_workflow(root)
    assert lineage_snapshot("snakemake") == before
    if instance.dialect != "sqlite":
        return  # re-runs: once is enough (they write the same way on both databases)

    # nothing to do: nothing added
    run_snakemake(root, cores=2)
    assert lineage_snapshot("snakemake") == before

    # a changed input: new runs of the affected jobs, new artifact versions linked to them
    (root / "data" / "s1.txt").write_text("s1 a b c d e f g")
    (root / "scripts" / "report.py").write_text(script + "# changed\n")
    run_snakemake(root, cores=2)
    first, second = workflow_runs()
    rerun = steps(second)
    assert sorted({s.key for s in rerun}) == ["all", "report", "split", "stats", "tables"]
    assert len(rerun) == 5  # only sample s1 is split and counted again
    stats_s1 = ll.Artifact.get(key="results/s1.stats")
    assert stats_s1.uid.endswith("0001") and Path(stats_s1.cache()).read_text() == "s1\t8\n"
    assert stats_s1.run is not None and stats_s1.run.parent_id == second
    assert ll.Artifact.get(key="results/s2.stats").run.parent_id == first  # type: ignore[union-attr]
    assert ll.Transform.filter(key="report", is_latest=None).count() == 2  # the script changed
    assert ll.Transform.filter(key="split", is_latest=None).count() == 1


def text_of(key: str) -> str:
    return Path(ll.Artifact.get(key=key).cache()).read_text()


def _inputs_with_roles(run_id: int) -> list[tuple[ll.Artifact, str]]:
    from lakeline.instance import current
    from lakeline.models import Artifact, RunInput
    from sqlalchemy import select

    with current().sessions.read() as session:
        rows = session.execute(
            select(Artifact, RunInput.role)
            .join(RunInput, RunInput.artifact_id == Artifact.id)
            .where(RunInput.run_id == run_id)
        ).all()
        return [(artifact, role) for artifact, role in rows]


FAILING = """
rule all:
    input: "ok.txt", "downstream.txt"

rule ok:
    output: "ok.txt"
    shell: "sleep 1; echo ok > {output}"

rule fails:
    output: "fails.txt"
    log: "logs/fails.log"
    shell: "echo partial > {output}; echo boom > {log}; exit 3"

rule downstream:
    input: "fails.txt"
    output: "downstream.txt"
    shell: "cp {input} {output}"
"""


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_failing_job_with_keep_going(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", FAILING)
    options = ["--logger-lakeline-pipeline", "demo", "--logger-lakeline-journal", "false"]
    result = run_snakemake(root, "--keep-going", *options, cores=2, check=False)
    assert result.returncode != 0 and (root / "ok.txt").exists()
    assert steps() == [
        Step("fails", outputs=frozenset({"logs/fails.log"}), status="errored"),
        Step("ok", outputs=frozenset({"ok.txt"})),
    ]  # downstream and all never ran; the failed job's output is not an artifact
    failed = ll.Run.get(engine="snakemake", transform__key="fails")
    assert failed.exit_code == 3 and "non-zero exit status 3" in (failed.error or "")
    assert ll.Artifact.filter(key="fails.txt").count() == 0
    workflow = ll.Run.get(engine="snakemake", parent_id__isnull=True)
    assert workflow.status == "errored" and workflow.error
    assert workflow.transform.key == "demo"  # --logger-lakeline-pipeline
    assert not (root / ".snakemake" / "lakeline").exists()  # --logger-lakeline-journal false


QUIET = """
rule all:
    input: "final.txt"

rule make:
    output: temp("tmp/{x}.txt")
    shell: "echo {wildcards.x} > {output}"

rule use:
    input: "tmp/a.txt", "tmp/b.txt", config["reference"]
    output: "final.txt"
    shell: "cat {input} > {output}"
"""


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_quiet_jobs_finish_from_metadata(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", QUIET)
    reference = tmp_path / "shared" / "ref.txt"  # outside the workflow folder: uploaded
    reference.parent.mkdir()
    reference.write_text("reference\n")
    options = ["--config", f"reference={reference}", "--logger-lakeline-upload", "true"]
    result = run_snakemake(root, "--quiet", *options, cores=2)
    assert "Finished jobid" not in result.output and not (root / "tmp").exists()
    assert steps() == [
        Step("all", frozenset({"final.txt"})),
        Step("make", outputs=frozenset({"tmp/a.txt"})),
        Step("make", outputs=frozenset({"tmp/b.txt"})),
        Step("use", frozenset({"tmp/a.txt", "tmp/b.txt", "ref.txt"}), frozenset({"final.txt"})),
    ]
    uploaded = ll.Artifact.get(key="ref.txt")
    assert not uploaded.in_place and uploaded.storage.root == instance.storage.root
    before = lineage_snapshot("snakemake")
    import_workflow(root)  # the journal says the run uploaded: the replay does too
    assert lineage_snapshot("snakemake") == before
    assert ll.Artifact.get(key="tmp/a.txt").kind == "transient"
    use = ll.Run.get(engine="snakemake", transform__key="use")
    assert use.finished_at is not None and use.started_at <= use.finished_at  # type: ignore[operator]
    assert ll.Run.get(engine="snakemake", parent_id__isnull=True).status == "completed"


CHECKPOINT = """
import os

rule all:
    input: "total.txt"

checkpoint scatter:
    output: directory("scatter")
    shell: "mkdir -p scatter; for i in 1 2 3; do echo $i > scatter/part$i.txt; done"

rule double:
    input: "scatter/part{i}.txt"
    output: "doubled/part{i}.txt"
    shell: "cat {input} {input} > {output}"

def gathered(wildcards):
    folder = checkpoints.scatter.get(**wildcards).output[0]
    ids = glob_wildcards(os.path.join(folder, "part{i}.txt")).i
    return expand("doubled/part{i}.txt", i=sorted(ids))

rule gather:
    input: gathered
    output: "total.txt"
    shell: "cat {input} > {output}"
"""


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_checkpoint(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", CHECKPOINT)
    run_snakemake(root, cores=2)
    doubled = frozenset(f"doubled/part{i}.txt" for i in (1, 2, 3))
    expected = [
        Step("all", frozenset({"total.txt"})),
        Step("gather", doubled, frozenset({"total.txt"})),
        Step("scatter", outputs=frozenset({"scatter"})),
    ]
    for i in (1, 2, 3):  # the file inside the checkpoint's folder, and the folder itself
        used = frozenset({f"scatter/part{i}.txt", "scatter"})
        expected.append(Step("double", used, frozenset({f"doubled/part{i}.txt"})))
    assert steps() == sorted(
        expected, key=lambda s: (s.key, sorted(s.inputs), sorted(s.outputs), s.status)
    )
    scatter = ll.Run.get(engine="snakemake", transform__key="scatter")
    assert scatter.params is not None and scatter.params["checkpoint"] is True
    assert text_of("total.txt") == "1\n1\n2\n2\n3\n3\n"
