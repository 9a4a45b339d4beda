"""The readers, one source at a time: real fixture files and hand-written edge cases (no DB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lakeline_nextflow.lineage_store import read_store
from lakeline_nextflow.nflog import read_history, read_log
from lakeline_nextflow.rocrate import read_crate
from lakeline_nextflow.trace import read_report, read_trace
from lakeline_nextflow.values import duration_ms, hash_of_workdir, percent, short_of, size_bytes
from lakeline_nextflow.workdir import read_header, read_staging, read_workdir
from nf_helpers import (
    CRISPR,
    FASTQC,
    INDEX,
    MULTIQC,
    QUANT,
    SESSION,
    SIMPLE,
    WGS,
    command_run,
    crate_document,
    fixture,
    lineage_store,
    log_line,
    write,
)

# -- values ---------------------------------------------------------------------------------


def test_human_values() -> None:
    assert duration_ms("46m 35s") == 2_795_000
    assert duration_ms("2.8s") == 2800 and duration_ms("119ms") == 119
    assert duration_ms("1d 2h 3m") == 93_780_000 and duration_ms("2785") == 2785
    assert size_bytes("119.3 MB") == int(119.3 * 2**20) and size_bytes("259 KB") == 259 * 1024
    assert size_bytes("4 GB") == 4 * 2**30 and size_bytes("-") is None
    assert short_of("862df53160e07cd823c0c3960545e747") == "86/2df531"
    assert hash_of_workdir("/w/86/2df53160e07cd823c0c3960545e747/x") == (
        "862df53160e07cd823c0c3960545e747"
    )
    with pytest.raises(ValueError, match="not a duration"):
        duration_ms("soon")


def test_a_percentage_nextflow_could_not_compute_is_unknown(tmp_path: Path) -> None:
    """`nan%` (or a NaN number in a report) is unknown like `-`: a run's params are JSON,
    which has no NaN (the Recorders refuse it, PostgreSQL's jsonb too)."""
    assert percent("223.2%") == 223.2 and percent(12) == 12.0 and percent("-") is None
    assert percent("nan%") is None and percent(float("nan")) is None and percent("inf%") is None
    path = write(
        tmp_path / "trace.txt",
        "task_id\thash\tname\tstatus\texit\t%cpu\t%mem\n"
        "1\tab/cdef01\tA (1)\tCOMPLETED\t0\tnan%\t0.1%\n",
    )
    problems: list[str] = []
    (row,) = read_trace(path, problems)
    assert problems == []
    assert "%cpu" not in row.fields and row.fields["%mem"] == 0.1


# -- trace files and reports ----------------------------------------------------------------


def test_trace_of_the_resumed_run() -> None:
    problems: list[str] = []
    rows = read_trace(fixture(WGS) / "pipeline_info" / "execution_trace.txt", problems)
    assert problems == []
    assert len(rows) == 13
    assert [r.status for r in rows].count("CACHED") == 9
    assert [r.status for r in rows].count("COMPLETED") == 4
    assert [r.task_id for r in rows][:5] == [1, 2, 3, 4, 5]
    vep = rows[1]
    assert (vep.short, vep.process, vep.exit_code) == ("8b/3c05bc", "RUN_VEP", 0)
    assert vep.fields["duration"] == 2_795_000 and vep.fields["native_id"] == "52887"
    assert vep.submit == datetime(2026, 5, 11, 14, 38, 2, 40000)  # wall clock, no zone yet
    assert rows[2].fields["peak_rss"] == 4 * 2**30 and rows[2].fields["%cpu"] == 100.8
    assert "peak_rss" not in rows[0].fields  # `-`: unknown


def test_trace_and_report_of_the_nf_core_run() -> None:
    folder = fixture(CRISPR) / "pipeline_info"
    problems: list[str] = []
    trace = read_trace(folder / "execution_trace_2024-11-10_10-13-19.txt", problems)
    report = read_report(
        folder / "execution_report_2024-11-10_10-13-19.window_data.extract.txt", problems
    )
    assert problems == []
    assert len(trace) == len(report) == 486
    assert {r.status for r in trace} == {"COMPLETED"}
    assert {r.process for r in trace} == {r.process for r in report}
    assert len({r.process for r in report}) == 11
    first = next(r for r in report if r.task_id == 1)
    assert first.hash == "4d34ad9fecce4cff85be7eb050910428"  # the full hash, from `workdir`
    assert first.process == "NFCORE_CRISPRISCREEN:CRISPRISCREEN:BOWTIE2_BUILD"
    assert first.submit == datetime(2024, 11, 10, 9, 13, 25, 638000, tzinfo=UTC)
    assert first.fields["cpus"] == 5 and first.fields["memory"] == 12 * 2**30
    assert first.fields["script"].strip().startswith("mkdir bowtie2")


def test_trace_with_unknown_columns_and_bad_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path / "trace.txt",
        "task_id\thash\tname\tstatus\texit\tduration\tgpu_hours\n"
        "1\tab/cdef01\tA (1)\tCOMPLETED\t0\t3s\t0.5\n"
        "2\tab/cdef02\tB (1)\tFAILED\t1\tsoon\t-\n"
        "x\ty\n"
        "3\tab/cdef03\tC (1)\tCOMPL",
    )
    problems: list[str] = []
    rows = read_trace(path, problems)
    assert [r.short for r in rows] == ["ab/cdef01", "ab/cdef02"]
    assert rows[0].fields["gpu_hours"] == "0.5"  # kept, as text
    assert rows[1].fields["duration"] == "soon"
    assert any("unknown trace columns gpu_hours" in p for p in problems)
    assert any("unreadable duration" in p for p in problems)
    assert any(":4: 2 cells for 7 columns" in p for p in problems)
    assert any("truncated (it ends inside line 5" in p for p in problems)


def test_not_a_trace_file(tmp_path: Path) -> None:
    path = write(tmp_path / "trace.txt", "hello\tworld\n1\t2\n")
    with pytest.raises(ValueError, match="not a trace file"):
        read_trace(path, [])


# -- logs and history -------------------------------------------------------------------------


def test_log_of_the_simple_pipeline() -> None:
    problems: list[str] = []
    launch = read_log(fixture(SIMPLE) / ".nextflow.log", problems)
    assert problems == []
    assert (launch.run_name, launch.session) == ("prickly_ardinghelli", SESSION)
    assert launch.nextflow_version == "22.04.5" and launch.revision == "93b91a657f"
    assert launch.command == "nextflow run main.nf -with-docker"
    assert launch.work_dir == "/home/ubuntu/simple-pipeline/work"
    assert launch.process_names == ["FASTQC", "QUANTIFICATION", "MULTIQC", "INDEX"]
    assert launch.status == "completed" and launch.finished
    assert launch.stats["succeededCount"] == 4
    tasks = {t.hash: t for t in launch.tasks}
    assert set(tasks) == {INDEX, FASTQC, QUANT, MULTIQC}
    assert {t.task_id: t.name for t in tasks.values()} == {
        1: "FASTQC (FASTQC on gut)",
        2: "INDEX",
        3: "QUANTIFICATION (Salmon on gut)",
        4: "MULTIQC",
    }
    assert all(t.status == "COMPLETED" and t.exit_code == 0 for t in tasks.values())
    assert not launch.year_known  # `Sep-20 14:16:01.791`: the year comes later


def test_history_of_the_simple_pipeline() -> None:
    (entry,) = read_history(fixture(SIMPLE) / ".nextflow" / "history", [])
    assert entry.run_name == "prickly_ardinghelli" and entry.session == SESSION
    assert entry.status == "OK" and entry.duration_ms == 14300
    assert entry.started_at == datetime(2022, 9, 20, 14, 15, 58)
    assert entry.revision == "93b91a657ffea64d4a335448f46aa179"


def test_newer_log_with_cached_and_failed_tasks(tmp_path: Path) -> None:
    a, b = "df" + "ab0d14" + "c" * 24, "87" + "da150b" + "9" * 24
    text = (
        log_line("Nov-29 22:36:34.258", "$> nextflow run main.nf -resume")
        + log_line("Nov-29 22:36:34.305", "N E X T F L O W  ~  version 25.10.4")
        + log_line("Nov-29 22:36:34.675", "Launching `main.nf` [mad_curie] DSL2 - revision: abc")
        + log_line("Nov-29 22:36:34.705", "Session UUID: 0f6a3a1e-1111-2222-3333-444455556666")
        + log_line(
            "Nov-29 22:36:35.000", f"[{a[:2]}/{a[2:8]}] Cached process > INTEGRATE (1)", "INFO"
        )
        + log_line(
            "Nov-29 22:36:35.088", f"[{b[:2]}/{b[2:8]}] Submitted process > PLOT (x)", "INFO"
        )
        + log_line(
            "Nov-29 22:36:35.435",
            f"Task completed > TaskHandler[id: 2; name: PLOT (x); status: COMPLETED; exit: 2; "
            f"error: -; workDir: /u/work/{b[:2]}/{b[2:]}]",
        )
        + log_line("Nov-29 22:36:35.454", "Error executing process > 'PLOT (x)'", "ERROR")
        + "\nCaused by:\n  Process `PLOT (x)` terminated with an error exit status (2)\n\n"
        + "Command error:\n  python: can't open file 'plot.py'\n\nWork dir:\n"
        + f"  /u/work/{b[:2]}/{b[2:]}\n"
        + log_line("Nov-29 22:36:35.459", "Session aborted -- Cause: Process `PLOT (x)` failed")
        + log_line(
            "Nov-29 22:36:35.501",
            "Workflow completed > WorkflowStats[succeededCount=0; failedCount=1; cachedCount=1; ]",
        )
        + log_line("Nov-29 22:36:35.600", "> Execution complete -- Goodbye")
    )
    problems: list[str] = []
    launch = read_log(write(tmp_path / ".nextflow.log", text), problems)
    assert problems == []
    assert launch.session == "0f6a3a1e-1111-2222-3333-444455556666"  # `UUID`, not `uuid`
    assert launch.status == "errored"
    assert launch.error == "Process `PLOT (x)` terminated with an error exit status (2)"
    cached, failed = launch.tasks
    assert (cached.short, cached.status, cached.hash) == (f"{a[:2]}/{a[2:8]}", "CACHED", None)
    assert (failed.hash, failed.status, failed.exit_code) == (b, "FAILED", 2)
    assert "can't open file 'plot.py'" in (failed.error or "")


def test_truncated_log_and_localised_months(tmp_path: Path) -> None:
    text = (
        log_line("11月-29 22:36:34.705", "Session UUID: 0f6a3a1e-1111-2222-3333-444455556666")
        + log_line("11月-29 22:36:35.088", "[ab/cdef01] Submitted process > A (1)", "INFO")
        + "11月-29 22:36:35.435 [Task monitor] DEBUG n.processor.TaskPollingMonitor - Task compl"
    )
    problems: list[str] = []
    launch = read_log(write(tmp_path / ".nextflow.log", text), problems)
    assert any("cut off" in p for p in problems)
    assert any("ends before the run finished" in p for p in problems)
    assert launch.status is None and not launch.finished
    (task,) = launch.tasks
    assert task.status == "SUBMITTED" and task.submit is not None and task.submit.month == 11


def test_a_log_that_is_not_a_log(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no Nextflow log lines"):
        read_log(write(tmp_path / ".nextflow.log", b"\x00\x01 binary"), [])


# -- work dirs ------------------------------------------------------------------------------


def test_work_dirs_of_the_simple_pipeline() -> None:
    problems: list[str] = []
    work = fixture(SIMPLE) / "work"
    quant = read_workdir(work / QUANT[:2] / QUANT[2:], QUANT, problems)
    assert problems == []
    assert quant.name == "QUANTIFICATION (Salmon on gut)" and quant.declared is None
    assert [(s.name, s.source, s.mode) for s in quant.staged] == [
        (
            "salmon_index",
            f"/home/ubuntu/simple-pipeline/work/30/{INDEX[2:]}/salmon_index",
            "symlink",
        ),
        ("gut_1.fq", "/home/ubuntu/simple-pipeline/data/ggal/gut_1.fq", "symlink"),
        ("gut_2.fq", "/home/ubuntu/simple-pipeline/data/ggal/gut_2.fq", "symlink"),
    ]
    assert quant.exit_code == 0 and quant.began and quant.log is not None
    assert quant.script is not None and "salmon quant" in quant.script
    assert quant.outputs == []  # the fixture holds the wrappers, not the payloads
    multiqc = read_workdir(work / MULTIQC[:2] / MULTIQC[2:], MULTIQC, problems)
    assert {s.name for s in multiqc.staged} == {"gut", "fastqc_gut_logs"}


def test_header_of_newer_wrappers_and_staging_modes(tmp_path: Path) -> None:
    header = (
        "#!/bin/bash\n### ---\n### name: 'MODEL (1)'\n### container: 'img:1.0'\n### outputs:\n"
        "### - 'model.pkl'\n### - 'it''s.csv'\n### - 'plots/*.png'\n### ...\nset -e\n"
    )
    assert read_header(header) == ("MODEL (1)", "img:1.0", ["model.pkl", "it's.csv", "plots/*.png"])
    staged = read_staging(
        [
            "rm -f a.txt",
            "ln -s /w/ab/" + "c" * 30 + "/a.txt a.txt",
            "ln -s ../../ab/" + "c" * 30 + "/b.txt b.txt",
            "ln /data/c.txt c.txt",
            "cp -fRL /data/d\\ e.txt d\\ e.txt",
            "mkdir -p sub",
            'downloads+=("nxf_s3_download s3://bucket/x.fq x.fq")',
        ],
        [],
        "test",
    )
    assert [(s.name, s.mode) for s in staged] == [
        ("a.txt", "symlink"),
        ("b.txt", "rellink"),
        ("c.txt", "link"),
        ("d e.txt", "copy"),
        ("x.fq", "download"),
    ]


def test_declared_outputs_matched_against_the_work_dir(tmp_path: Path) -> None:
    path = tmp_path / "ab" / ("c" * 30)
    write(
        path / ".command.run",
        command_run(
            "MODEL (1)",
            [("/data/in.csv", "in.csv")],
            ["model.pkl", "plots/*.png", "*.csv", "absent.txt"],
        ),
    )
    for name in ("model.pkl", "plots/a.png", "plots/b.png", "scores.csv", "tmp.log", ".hidden.csv"):
        write(path / name, name)
    (path / "in.csv").symlink_to(write(tmp_path / "in.csv", "x"))
    info = read_workdir(path, "ab" + "c" * 30, [])
    assert info.outputs == ["model.pkl", "plots/a.png", "plots/b.png", "scores.csv"]
    assert info.unmatched == ["absent.txt"]  # and the staged in.csv is not an output


# -- lineage store and RO-Crate -----------------------------------------------------------------


def test_lineage_store_records(tmp_path: Path) -> None:
    problems: list[str] = []
    store = read_store(lineage_store(tmp_path), problems)
    assert problems == []
    (task,) = store.tasks.values()
    assert task.hash == "862df53160e07cd823c0c3960545e747" and task.name == "MULTIQC"
    assert task.session == "065bdc6b-89b4-42ee-92c1-2a5af37f2c50"
    assert [(i.producer, i.relpath) for i in task.inputs if i.producer] == [
        ("eff8846883b46c5a76f11e7e4480a6c8", "ggal_gut"),
        ("2d8bd92c69f732605bc99941e60d5319", "fastqc_ggal_gut_logs"),
    ]
    (config,) = [i for i in task.inputs if i.producer is None]
    assert config.path.startswith("https://github.com/nextflow-io/rnaseq-nf/")
    assert config.checksum == "nextflow:2aac500cdfb292e961e678433e7dc3d8"
    outputs = {o.key: o for o in store.outputs}
    output = outputs["862df53160e07cd823c0c3960545e747/multiqc_report.html"]
    assert output.task == task.hash and output.size == 5079806
    published = outputs["16b31030474f2e96c55f4940bca3ab64/multiqc_report.html"]
    assert published.task is None and published.path == "/results/multiqc_report.html"
    assert published.source == "lid://862df53160e07cd823c0c3960545e747/multiqc_report.html"


def test_bad_lineage_records_are_skipped(tmp_path: Path) -> None:
    store = tmp_path / ".lineage"
    write(store / "ab" / ".data.json", "{not json")
    write(store / "cd" / ".data.json", json.dumps({"version": "lineage/v1beta1", "kind": "X"}))
    problems: list[str] = []
    assert read_store(store, problems).tasks == {}
    assert len(problems) == 2 and all("skipped" in p for p in problems)


def test_rocrate_tasks_edges_and_publishing(tmp_path: Path) -> None:
    h1, h2 = "a1" * 16, "b2" * 16
    session = "7f344978-999c-480d-8439-741bc7520f6a"
    path = write(tmp_path / "ro-crate-metadata.json", json.dumps(crate_document(h1, h2, session)))
    problems: list[str] = []
    crate = read_crate(path, problems)
    assert problems == []
    assert crate.session == session and crate.pipeline == "demo/pipeline"
    assert crate.started == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert crate.tasks[h1].process == "DEMO:SPLIT" and crate.tasks[h1].outputs == ["parts"]
    assert crate.tasks[h2].inputs == [f"#task/{h1}/parts", "#tmp/all.txt"]
    assert crate.published == [(h2, "counts.txt", "counts.txt")]
    with pytest.raises(ValueError, match="not an RO-Crate"):
        read_crate(write(tmp_path / "other.json", "{}"), [])
