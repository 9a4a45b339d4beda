"""Every fixture set in ../shared/fixtures/nextflow imported for real (SQLite and PostgreSQL).

Expectations are what each fixture really contains (PROVENANCE.md, FORMATS.md, read by hand).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.testing import ExpectedStep, RecorderConformance, lineage_snapshot
from lakeline_nextflow import import_run
from nf_helpers import (
    CRISPR,
    FASTQC,
    INDEX,
    MULTIQC,
    QUANT,
    SESSION,
    SIMPLE,
    WGS,
    catalog_edges,
    fixture,
    keys,
    lineage_store,
    rebuild_simple,
    references,
    runs,
    work,
    workflows,
    write,
)

SIMPLE_EDGES = [
    (QUANT, INDEX, "salmon_index"),  # INDEX -> QUANTIFICATION
    (MULTIQC, FASTQC, "fastqc_gut_logs"),  # FASTQC + QUANTIFICATION -> MULTIQC
    (MULTIQC, QUANT, "gut"),
]


def test_simple_pipeline_as_committed(instance: Instance) -> None:
    """Log + history + work-dir wrappers; the payload files are not in the fixture."""
    report = import_run(fixture(SIMPLE), timezone="UTC")
    assert report.warnings == []
    assert (report.tasks, report.by_status, report.cached) == (4, {"completed": 4}, 0)
    gone_inputs = {
        "/home/ubuntu/simple-pipeline/data/ggal/gut_1.fq",
        "/home/ubuntu/simple-pipeline/data/ggal/gut_2.fq",
        "/home/ubuntu/simple-pipeline/data/ggal/transcriptome.fa",
    }
    gone_outputs = {
        str(fixture(SIMPLE).resolve() / work(h) / f)
        for h, f in [(INDEX, "salmon_index"), (FASTQC, "fastqc_gut_logs"), (QUANT, "gut")]
    }
    # the report says what the catalog holds: every planned edge written, by reference
    (workflow,) = workflows()
    assert report.producer_edges == catalog_edges(workflow) == sorted(SIMPLE_EDGES)
    assert set(report.referenced) == references() == gone_inputs | gone_outputs
    assert report.missing == []
    index_input = ll.Run.get(engine="nextflow", engine_ref=INDEX).inputs.get()
    assert index_input.location == "/home/ubuntu/simple-pipeline/data/ggal/transcriptome.fa"
    assert (index_input.available, index_input.hash, index_input.run) == (False, None, None)
    salmon_index = ll.Artifact.get(key=f"{work(INDEX)}/salmon_index")
    assert not salmon_index.available and salmon_index.run.engine_ref == INDEX  # type: ignore[union-attr]
    workflow = ll.Run.get(engine="nextflow", engine_ref=SESSION)
    assert workflow.transform.key == "simple-pipeline/main.nf"
    assert workflow.transform.kind == "pipeline" and workflow.status == "completed"
    assert workflow.started_at == datetime(2022, 9, 20, 14, 15, 57, 476000, tzinfo=UTC)
    assert workflow.finished_at == datetime(2022, 9, 20, 14, 16, 12, 353000, tzinfo=UTC)
    (launch,) = workflow.params["launches"]
    assert launch["run_name"] == "prickly_ardinghelli" and launch["nextflow"] == "22.04.5"
    assert launch["revision"] == "93b91a657ffea64d4a335448f46aa179"  # full, from the history
    tasks = {r.engine_ref: r for r in workflow.children}
    assert set(tasks) == {INDEX, FASTQC, QUANT, MULTIQC}
    assert {h: r.transform.key for h, r in tasks.items()} == {
        INDEX: "INDEX",
        FASTQC: "FASTQC",
        QUANT: "QUANTIFICATION",
        MULTIQC: "MULTIQC",
    }
    assert all(r.status == "completed" and r.exit_code == 0 for r in tasks.values())
    assert all(r.transform.parent_id == workflow.transform_id for r in tasks.values())
    index = tasks[INDEX]
    assert index.started_at == datetime(2022, 9, 20, 14, 16, 0, 481000, tzinfo=UTC)
    assert index.finished_at == datetime(2022, 9, 20, 14, 16, 1, 791000, tzinfo=UTC)
    assert index.params["task_id"] == 2 and "salmon index" in index.params["script"]
    # what is on disk: each task's .command.log
    assert {a.key for a in ll.Artifact.filter(kind="log")} == {
        f"{work(h)}/.command.log" for h in (INDEX, FASTQC, QUANT, MULTIQC)
    }
    before = lineage_snapshot("nextflow")
    import_run(fixture(SIMPLE), timezone="UTC")
    assert lineage_snapshot("nextflow") == before


class TestSimplePipelineRebuilt(RecorderConformance):
    """simple-pipeline with its payloads rebuilt from the fixture's listing: every edge real."""

    engine = "nextflow"

    def run_workflow(self, tmp_path: Path) -> list[ExpectedStep]:
        report = import_run(rebuild_simple(tmp_path), timezone="UTC")
        assert report.published == 2 and report.missing == []
        index, fastqc, quant, multiqc = (work(h) for h in (INDEX, FASTQC, QUANT, MULTIQC))
        log = ".command.log"
        return [
            ExpectedStep(
                "INDEX",
                frozenset({"data/ggal/transcriptome.fa"}),
                frozenset({f"{index}/salmon_index", f"{index}/{log}"}),
            ),
            ExpectedStep(
                "FASTQC",
                frozenset({"data/ggal/gut_1.fq", "data/ggal/gut_2.fq"}),
                # `?` holds a Java font cache FastQC left: an old header declares no outputs
                frozenset({f"{fastqc}/fastqc_gut_logs", f"{fastqc}/?", f"{fastqc}/{log}"}),
            ),
            ExpectedStep(
                "QUANTIFICATION",
                frozenset({f"{index}/salmon_index", "data/ggal/gut_1.fq", "data/ggal/gut_2.fq"}),
                frozenset({f"{quant}/gut", f"{quant}/{log}"}),
            ),
            ExpectedStep(
                "MULTIQC",
                frozenset({f"{quant}/gut", f"{fastqc}/fastqc_gut_logs"}),
                frozenset(
                    {
                        f"{multiqc}/multiqc_data",
                        f"{multiqc}/multiqc_report.html",
                        f"{multiqc}/{log}",
                    }
                ),
            ),
            ExpectedStep("publishDir", frozenset({f"{quant}/gut"}), frozenset({"results/gut"})),
            ExpectedStep(
                "publishDir",
                frozenset({f"{multiqc}/multiqc_report.html"}),
                frozenset({"results/multiqc_report.html"}),
            ),
        ]

    def replay(self, tmp_path: Path) -> None:
        import_run(tmp_path / "simple-pipeline", timezone="UTC")


def test_rebuilt_pipeline_lineage_graph(instance: Instance, tmp_path: Path) -> None:
    launch = rebuild_simple(tmp_path)
    report = import_run(launch, timezone="UTC")
    (workflow,) = workflows()
    assert report.producer_edges == catalog_edges(workflow) == sorted(SIMPLE_EDGES)
    assert report.referenced == [] and references() == set()
    copies = [r.outputs.count() for r in runs() if r.transform.key == "publishDir"]
    assert report.published == sum(copies) == 2
    # walk upstream from the published report: copy <- publishDir <- MULTIQC <- ... <- INDEX
    seen, frontier = set(), [ll.Artifact.get(key="results/multiqc_report.html")]
    while frontier:
        run = frontier.pop().run
        if run is not None and run.engine_ref not in seen:
            seen.add(run.engine_ref)
            frontier.extend(run.inputs)
    assert seen == {f"{MULTIQC}/publish", MULTIQC, QUANT, FASTQC, INDEX}
    index_out = ll.Artifact.get(key=f"{work(INDEX)}/salmon_index")
    assert index_out.n_files == 16 and index_out.run.engine_ref == INDEX  # a folder artifact
    assert ll.Run.get(engine="nextflow", engine_ref=QUANT).inputs.filter(key=index_out.key).count()


def test_nf_core_trace_and_report(instance: Instance) -> None:
    """486 tasks, trace (14 columns) + the report's full records, no log, no work dirs."""
    report = import_run(fixture(CRISPR))
    assert report.warnings == []
    assert (report.tasks, report.by_status, report.cached) == (486, {"completed": 486}, 0)
    assert any("UTC+01:00" in note for note in report.unknown)  # trace vs report times
    assert any("stand-in id" in note for note in report.unknown)  # no source names the session
    (workflow,) = workflows()
    assert workflow.transform.key == "nf-core/crispriscreen"
    assert workflow.transform.version == "v1.2.0" and workflow.status == "completed"
    assert workflow.params["params"]["outdir"] == "results"  # from params_*.json
    tasks = workflow.children.all()
    assert len(tasks) == 486 and all(len(t.engine_ref) == 32 for t in tasks)  # full hashes
    processes = {t.id: t.key for t in ll.Transform.filter(kind="process")}
    per_process = Counter(processes[t.transform_id].rsplit(":", 1)[1] for t in tasks)
    assert per_process == {
        "TRIMGALORE": 96, "CUTADAPT": 96, "BOWTIE2_ALIGN": 96, "FASTQC": 96,
        "SUBREAD_FEATURECOUNTS": 96, "BOWTIE2_BUILD": 1, "PREPARE_LIBRARY": 1,
        "PREPARE_COUNTS": 1, "FITNESS": 1, "RMARKDOWNNOTEBOOK": 1, "MULTIQC": 1,
    }  # fmt: skip
    build = ll.Run.get(engine="nextflow", engine_ref="4d34ad9fecce4cff85be7eb050910428")
    assert build.started_at == datetime(2024, 11, 10, 9, 13, 25, 719000, tzinfo=UTC)
    assert build.finished_at == datetime(2024, 11, 10, 9, 13, 28, 423000, tzinfo=UTC)
    assert build.params["resources"]["cpus"] == 5 and build.params["tag"] == (
        "selected_barcodes_Nextflow.fa"
    )
    assert build.params["metrics"]["peak_rss"] == 125091840 and build.exit_code == 0
    assert ll.Artifact.filter().count() == 0  # no file is on disk


def test_resumed_trace_with_cached_tasks(instance: Instance) -> None:
    """13 rows: 9 CACHED (from an earlier launch no file describes) and 4 COMPLETED."""
    report = import_run(fixture(WGS), timezone="UTC")
    assert (report.tasks, report.cached) == (13, 9)
    assert any("first seen as cached" in note for note in report.unknown)
    (workflow,) = workflows()
    assert workflow.transform.key == WGS  # no source names the pipeline
    children = workflow.children.all()
    cached = [r for r in children if r.status == "cached"]
    executed = {r.id: r for r in children if r.status == "completed"}
    assert (len(cached), len(executed)) == (9, 13)
    for run in cached:  # each cached run points at the execution of the same task
        original = executed[run.cached_from_id]
        assert run.engine_ref.startswith(original.engine_ref + "@")
        assert run.transform_id == original.transform_id
    by_process = Counter(r.transform.key for r in executed.values())
    assert by_process == {
        "PREPROCESS_VCF": 1, "RUN_VEP": 1, "FEATURE_EXTRACTION": 1, "QC_FEATURES": 1,
        "SPLIT_DATA": 1, "TRAIN_MODEL": 4, "INFER_VARIANTS": 4,
    }  # fmt: skip
    vep = next(r for r in executed.values() if r.transform.key == "RUN_VEP")
    assert vep.engine_ref.endswith("/8b/3c05bc")  # only the short hash is known
    assert vep.started_at == datetime(2026, 5, 11, 14, 38, 2, 40000, tzinfo=UTC)
    assert vep.params["metrics"]["duration"] == 2_795_000  # `46m 35s`
    before = lineage_snapshot("nextflow")
    import_run(fixture(WGS), timezone="UTC")
    assert lineage_snapshot("nextflow") == before


def test_lineage_store_records(instance: Instance, tmp_path: Path) -> None:
    """The TaskRun and FileOutput records of the docs' rnaseq-nf run, in a real store layout."""
    launch = tmp_path / "launch"
    launch.mkdir()
    report = import_run(launch, lineage_store=lineage_store(tmp_path))
    multiqc = "862df53160e07cd823c0c3960545e747"
    assert report.tasks == 1 and report.by_status == {"completed": 1}
    # the store names the producing tasks of its inputs but holds no record of them: the
    # inputs are recorded (by checksum), with no run to point to as their producer
    assert report.producer_edges == [] and report.warnings == []
    assert any("2 task(s) that produced inputs are not in this import" in n for n in report.unknown)
    run = ll.Run.get(engine="nextflow", engine_ref=multiqc)
    assert {a.location for a in run.inputs} >= {
        f"/{work('eff8846883b46c5a76f11e7e4480a6c8')}/ggal_gut",
        f"/{work('2d8bd92c69f732605bc99941e60d5319')}/fastqc_ggal_gut_logs",
    }
    assert "/results/multiqc_report.html" in report.referenced  # gone, known by checksum
    assert "/results/multiqc_report.html" not in report.missing
    run = ll.Run.get(engine="nextflow", engine_ref=multiqc)
    (made,) = run.outputs.all()
    assert not made.available and made.location == f"/{work(multiqc)}/multiqc_report.html"
    assert (made.hash_type, made.hash) == ("nextflow", "b14f5171a48ce5c22ea27d7b8e57b6c4")
    (published,) = [
        a
        for a in ll.Artifact.filter(available=False)
        if a.location == "/results/multiqc_report.html"
    ]
    assert published.hash_type == "nextflow" and published.run.engine_ref == f"{multiqc}/publish"  # type: ignore[union-attr]
    assert run.transform.key == "MULTIQC" and run.status == "completed"
    assert run.parent.engine_ref == "065bdc6b-89b4-42ee-92c1-2a5af37f2c50"  # type: ignore[union-attr]
    assert run.params["checksums"]["multiqc_report.html"] == (
        "nextflow:b14f5171a48ce5c22ea27d7b8e57b6c4"
    )
    assert run.params["conda"] == "file:///conda/env-4a436c230263dfdbbf4dddd0623505d1"
    assert any(run.engine_ref == f"{multiqc}/publish" for run in runs())


def test_lineage_store_with_the_files_present(instance: Instance, tmp_path: Path) -> None:
    """The store's paths (/work/86/...) found under a moved work dir: edges become real."""
    launch = tmp_path / "launch"
    producers = {
        "eff8846883b46c5a76f11e7e4480a6c8": "ggal_gut/quant.sf",
        "2d8bd92c69f732605bc99941e60d5319": "fastqc_ggal_gut_logs/report.html",
    }
    for h, rel in producers.items():
        write(launch / work(h) / rel, f"{h} output")
    write(launch / work("862df53160e07cd823c0c3960545e747") / "multiqc_report.html", "report")
    import_run(launch, lineage_store=lineage_store(tmp_path), work_dir=launch / "work")
    run = ll.Run.get(engine="nextflow", engine_ref="862df53160e07cd823c0c3960545e747")
    (config,) = run.inputs.filter(available=False).all()  # a remote input: by reference
    assert config.location.startswith("https://github.com/nextflow-io/rnaseq-nf/tree/")
    assert (config.hash_type, config.hash) == ("nextflow", "2aac500cdfb292e961e678433e7dc3d8")
    assert keys(run.inputs.filter(available=True)) == {
        f"{work('eff8846883b46c5a76f11e7e4480a6c8')}/ggal_gut",
        f"{work('2d8bd92c69f732605bc99941e60d5319')}/fastqc_ggal_gut_logs",
    }
    assert keys(run.outputs) == {f"{work('862df53160e07cd823c0c3960545e747')}/multiqc_report.html"}
