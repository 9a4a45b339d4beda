"""Trace files read while cut short (copied mid-write, a full disk): the cut is said, the
session stays one, and a later import of the whole file corrects the earlier one."""

from __future__ import annotations

import json
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline_nextflow import import_run
from lakeline_nextflow.lineage_store import read_store
from lakeline_nextflow.rocrate import read_crate
from lakeline_nextflow.trace import read_report
from nf_helpers import (
    CRISPR,
    crate_document,
    fixture,
    lineage_store,
    log_line,
    workflows,
    write,
)

SESSION = "7e1d2c3b-aaaa-4bbb-8ccc-9ddd0eee1fff"
HASHES = [f"{i:02x}" + f"{i:x}" * 30 for i in range(1, 6)]
HEADER = "task_id\thash\tname\tstatus\texit\tsubmit\tduration\tpeak_rss\n"


def short(h: str) -> str:
    return f"{h[:2]}/{h[2:8]}"


def trace_text() -> str:
    """Five completed tasks; the last one's peak_rss is 10.3 MB (the trace's last cell)."""
    rows = [
        f"{i}\t{short(h)}\tSTEP ({i})\tCOMPLETED\t0\t2025-02-01 10:00:0{i}.000\t1s\t{i} MB\n"
        for i, h in enumerate(HASHES[:4], start=1)
    ]
    rows.append(
        f"5\t{short(HASHES[4])}\tSTEP (5)\tCOMPLETED\t0\t2025-02-01 10:00:05.000\t1s\t10.3 MB\n"
    )
    return HEADER + "".join(rows)


def task(h: str) -> ll.Run:
    return ll.Run.get(engine="nextflow", engine_ref__endswith=short(h))


def test_trace_cut_in_its_last_row(instance: Instance, tmp_path: Path) -> None:
    launch = tmp_path / "run"
    full = trace_text()
    cut = full[: full.rindex("10.3 MB") + 2]  # "...\t10": 10 bytes instead of 10.3 MB
    write(launch / "trace.txt", cut)
    report = import_run(launch, timezone="UTC")
    assert any("trace.txt" in w and "truncated" in w for w in report.warnings), report.warnings
    assert report.tasks == 4  # the cut row is not read as if it were whole
    (workflow,) = workflows()
    assert workflow.status == "started"  # a cut file does not say the run ended
    assert not ll.Run.filter(engine="nextflow", engine_ref__endswith=short(HASHES[4])).count()

    write(launch / "trace.txt", full)  # the whole file, later
    report = import_run(launch, timezone="UTC")
    assert not any("truncated" in w for w in report.warnings) and report.tasks == 5
    assert [w.engine_ref for w in workflows()] == [workflow.engine_ref]  # the same run
    (workflow,) = workflows()
    assert workflow.status == "completed"  # inferred from the whole file's tasks
    assert workflow.finished_at == task(HASHES[4]).finished_at
    assert task(HASHES[4]).params["metrics"]["peak_rss"] == int(10.3 * 2**20)
    assert task(HASHES[3]).params["metrics"]["peak_rss"] == 4 * 2**20


def test_trace_cut_elsewhere_keeps_the_session(instance: Instance, tmp_path: Path) -> None:
    """No log names the session: the stand-in id must not depend on how much was read."""
    launch = tmp_path / "run"
    full = trace_text()
    lines = full.splitlines(keepends=True)
    write(launch / "trace.txt", "".join(lines[:3]) + lines[3][:12])  # cut inside row 3
    report = import_run(launch, timezone="UTC")
    assert any("truncated" in w for w in report.warnings) and report.tasks == 2
    (first,) = workflows()
    assert first.engine_ref.startswith("nextflow-")  # a stand-in id
    write(launch / "trace.txt", full)
    assert import_run(launch, timezone="UTC").tasks == 5
    (workflow,) = workflows()
    assert workflow.engine_ref == first.engine_ref and workflow.children.count() == 5


def test_a_later_import_completes_an_earlier_one(instance: Instance, tmp_path: Path) -> None:
    """Imported while running (the log only), then with the trace: the metrics are added and
    a value a later source gives differently is corrected."""
    launch = tmp_path / "run"
    h = HASHES[0]
    write(
        launch / ".nextflow.log",
        log_line("Feb-01 10:00:00.000", f"Session UUID: {SESSION}")
        + log_line("Feb-01 10:00:00.500", "Launching `main.nf` [shy_pike] DSL2 - revision: 1")
        + log_line(
            "Feb-01 10:00:02.000",
            f"Task completed > TaskHandler[id: 1; name: STEP (1); status: COMPLETED; exit: 0; "
            f"error: -; workDir: /gone/work/{h[:2]}/{h[2:]}]",
        ),
    )
    import_run(launch, timezone="UTC")
    run = ll.Run.get(engine="nextflow", engine_ref=h)
    assert "metrics" not in (run.params or {})
    write(launch / "trace.txt", HEADER + f"1\t{short(h)}\tSTEP (1)\tCOMPLETED\t0\t"
          "2025-02-01 10:00:01.000\t1s\t2 MB\n")  # fmt: skip
    import_run(launch, timezone="UTC")
    assert ll.Run.get(engine="nextflow", engine_ref=h).params["metrics"]["peak_rss"] == 2 * 2**20
    write(launch / "trace.txt", HEADER + f"1\t{short(h)}\tSTEP (1)\tCOMPLETED\t0\t"
          "2025-02-01 10:00:01.000\t1s\t3 MB\n")  # fmt: skip
    import_run(launch, timezone="UTC")
    run = ll.Run.get(engine="nextflow", engine_ref=h)
    assert run.params["metrics"] == {"duration": 1000, "peak_rss": 3 * 2**20}
    assert len(workflows()) == 1


def test_the_nf_core_trace_cut_then_whole(instance: Instance, tmp_path: Path) -> None:
    """The fixture's 486-row trace copied while 3/5 written, then whole: one run, said."""
    folder = fixture(CRISPR) / "pipeline_info"
    text = (folder / "execution_trace_2024-11-10_10-13-19.txt").read_bytes()
    launch = tmp_path / "run"
    write(launch / "trace.txt", text[: len(text) * 3 // 5])
    report = import_run(launch, timezone="UTC")
    assert any("truncated" in w for w in report.warnings) and 0 < report.tasks < 486
    (first,) = workflows()
    assert first.status == "started"
    write(launch / "trace.txt", text)
    report = import_run(launch, timezone="UTC")
    assert report.tasks == 486 and report.warnings == []
    (workflow,) = workflows()
    assert workflow.engine_ref == first.engine_ref and workflow.children.count() == 486
    assert workflow.status == "completed"


def test_a_cut_report_is_said_to_be_cut(tmp_path: Path) -> None:
    folder = fixture(CRISPR) / "pipeline_info"
    text = (folder / "execution_report_2024-11-10_10-13-19.window_data.extract.txt").read_text()
    cut = write(tmp_path / "execution_report.html", text[: len(text) // 2])
    with pytest.raises(ValueError, match="truncated"):
        read_report(cut, [])


def test_cut_json_sources_are_said_to_be_cut(tmp_path: Path) -> None:
    """An RO-Crate or a lineage record cut short: truncated, not just 'not JSON'."""
    text = json.dumps(crate_document("a1" * 16, "b2" * 16, SESSION), indent=1)
    crate = write(tmp_path / "ro-crate-metadata.json", text[: len(text) // 3])
    with pytest.raises(ValueError, match="truncated"):
        read_crate(crate, [])
    store = lineage_store(tmp_path)
    record = next(store.rglob(".data.json"))
    record.write_bytes(record.read_bytes()[:-20])
    problems: list[str] = []
    read_store(store, problems)
    assert any(str(record) in p and "truncated" in p for p in problems), problems
    write(tmp_path / "broken" / "x" / ".data.json", "{]")  # not cut: malformed
    problems = []
    read_store(tmp_path / "broken", problems)
    assert any("not JSON" in p for p in problems), problems
