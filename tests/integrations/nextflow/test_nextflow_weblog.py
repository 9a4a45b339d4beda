"""The weblog receiver over real HTTP on 127.0.0.1, with the fixture's payloads."""

from __future__ import annotations

import copy
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.testing import lineage_snapshot
from lakeline_nextflow import WeblogReceiver, WeblogServer, import_run
from nf_helpers import WEBLOG, fixture, keys, log_line, task_dir, work, workflows

RUN_ID = "170aa09c-105f-49d0-99b4-8eb6a146e4a7"  # the fixture events' envelope `runId`


@pytest.fixture
def server(instance: Instance) -> Iterator[WeblogServer]:
    running = WeblogServer("127.0.0.1", 0, WeblogReceiver(instance))
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(5)


def post(server: WeblogServer, body: bytes | str | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    data = data.encode() if isinstance(data, str) else data
    request = urllib.request.Request(
        server.url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_fixture_payloads(server: WeblogServer) -> None:
    folder = fixture(WEBLOG)
    started = (folder / "event_started.json.txt").read_text()  # trailing comma, verbatim
    status, answer = post(server, started)
    assert status == 200 and answer["ok"]
    assert any("trailing comma" in w for w in server.receiver.warnings)
    status, _ = post(server, (folder / "event_process_completed.json").read_text())
    assert status == 200
    workflow = ll.Run.get(engine="nextflow", engine_ref=RUN_ID)
    assert workflow.status == "started"
    assert (workflow.transform.key, workflow.transform.version) == ("nf-core/hlatyping", "1.1.4")
    assert workflow.started_at == datetime(2019, 3, 25, 12, 9, 52, tzinfo=UTC)  # workflow.start
    assert workflow.params["params"]["solver"] == "glpk"  # `params` (Nextflow 19.03)
    assert workflow.params["launches"][0]["nextflow"] == "19.03.0-edge"
    task = ll.Run.get(engine="nextflow", engine_ref="a10024fd028375e2b601aaed44d112e3")
    assert task.transform.key == "make_ot_config" and task.parent_id == workflow.id
    assert task.status == "completed" and task.exit_code == 0
    assert task.started_at == datetime.fromtimestamp(1538912529.629, UTC)
    assert task.finished_at == datetime.fromtimestamp(1538912730.599, UTC)
    assert task.params["resources"] == {"cpus": 1, "memory": 7516192768, "time": 7200000}
    assert task.params["metrics"]["peak_rss"] == 574972928
    completed = json.loads(started.replace("},\n    },", "}\n    },"))
    completed["event"] = "completed"
    completed["metadata"]["workflow"]["complete"] = "2019-03-25T12:30:00Z"
    completed["metadata"]["success"] = True
    assert post(server, completed)[0] == 200
    workflow = ll.Run.get(engine="nextflow", engine_ref=RUN_ID)
    assert workflow.status == "completed"
    assert workflow.finished_at == datetime(2019, 3, 25, 12, 30, tzinfo=UTC)
    assert server.receiver.counts == {"started": 1, "process_completed": 1, "completed": 1}


def test_malformed_payloads_are_refused(server: WeblogServer) -> None:
    bad: list[bytes | str | dict[str, Any]] = [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        {"event": "exploded", "runId": RUN_ID},
        {"event": "process_started", "runId": RUN_ID},  # no trace
        {"event": "started", "runId": RUN_ID},  # no metadata
        {"event": "process_completed", "trace": {"hash": "ab/cdef01"}},  # no runId
        {"event": "process_started", "runId": RUN_ID, "trace": {"status": "RUNNING"}},
        '{"runName": "x", "runId": "' + RUN_ID + '", "event": "started", "metadata": {',
    ]
    for body in bad:
        status, answer = post(server, body)
        assert status == 400 and not answer["ok"], body
    assert len(server.receiver.warnings) == len(bad)
    assert server.receiver.counts["rejected"] == len(bad)
    with urllib.request.urlopen(server.url, timeout=10) as response:  # still serving
        assert response.status == 200
    assert ll.Run.filter(engine="nextflow").count() == 0  # nothing half-recorded


SESSION = "5d4c3b2a-1111-4222-8333-944455556666"
MAKE, USE = "12" + "a" * 30, "34" + "b" * 30


def events(launch: Path) -> list[dict[str, Any]]:
    """A live run as the current nf-weblog plugin sends it (hand-built, real shapes)."""
    workflow = {
        "runName": "tender_curie",
        "sessionId": SESSION,
        "start": "2025-06-01T08:00:00Z",
        "launchDir": str(launch),
        "workDir": str(launch / "work"),
        "projectDir": str(launch),
        "scriptName": "main.nf",
        "manifest": {"name": None, "version": None},
        "commandLine": "nextflow run main.nf -with-weblog http://127.0.0.1:8765",
        "nextflow": {"version": "25.10.4"},
    }
    base = {"runName": "tender_curie", "runId": SESSION, "utcTime": "2025-06-01T08:00:00Z"}

    def task(h: str, name: str, status: str, exit_code: int | None, t: int) -> dict[str, Any]:
        return {
            "task_id": 1 if h == MAKE else 2, "hash": f"{h[:2]}/{h[2:8]}", "name": name,
            "process": name, "status": status, "exit": exit_code, "submit": t, "start": t + 100,
            "complete": t + 900 if exit_code is not None else None,
            "workdir": str(launch / work(h)), "cpus": 1, "attempt": 1,
        }  # fmt: skip

    t0 = 1748764800000
    sequence: list[tuple[str, dict[str, Any] | None]] = [
        ("started", None),
        ("process_submitted", task(MAKE, "MAKE", "SUBMITTED", None, t0)),
        ("process_started", task(MAKE, "MAKE", "RUNNING", None, t0)),
        ("process_completed", task(MAKE, "MAKE", "COMPLETED", 0, t0)),
        ("process_submitted", task(USE, "USE", "SUBMITTED", None, t0 + 1000)),
        ("process_started", task(USE, "USE", "RUNNING", None, t0 + 1000)),
        ("process_completed", task(USE, "USE", "FAILED", 1, t0 + 1000)),
        ("error", task(USE, "USE", "FAILED", 1, t0 + 1000)),
        ("completed", None),
    ]
    finished = dict(
        workflow,
        complete="2025-06-01T08:00:03Z",
        success=False,
        errorMessage="Process `USE` terminated with an error exit status (1)",
    )
    payloads = []
    for event, trace in sequence:
        payload: dict[str, Any] = dict(base, event=event)
        if trace is not None:
            payload["trace"] = trace
        if event in ("started", "completed"):
            meta = workflow if event == "started" else finished
            payload["metadata"] = {"parameters": {"outdir": "results"}, "workflow": meta}
        payloads.append(payload)
    return payloads


def test_live_run_with_files_then_import(server: WeblogServer, tmp_path: Path) -> None:
    launch = tmp_path / "live"
    made = launch / work(MAKE) / "made.txt"
    task_dir(launch / "work", MAKE, "MAKE", outputs={"made.txt": "42"}, declared=["made.txt"])
    task_dir(
        launch / "work",
        USE,
        "USE",
        staged=[(str(made), "made.txt")],
        outputs={"half.txt": "4"},
        declared=["used.txt"],
        exit_code=1,
    )
    payloads = events(launch)
    for payload in payloads[:4]:  # up to MAKE's completion: it is recorded already
        assert post(server, payload)[0] == 200
    make = ll.Run.get(engine="nextflow", engine_ref=MAKE)
    assert make.status == "completed" and keys(make.outputs) == {
        f"{work(MAKE)}/made.txt",
        f"{work(MAKE)}/.command.log",
    }
    for payload in payloads[4:]:
        assert post(server, payload)[0] == 200
    (workflow,) = workflows()
    assert (workflow.engine_ref, workflow.transform.key) == (SESSION, "live/main.nf")
    assert workflow.status == "errored" and "exit status (1)" in (workflow.error or "")
    use = ll.Run.get(engine="nextflow", engine_ref=USE)
    assert use.status == "errored" and use.exit_code == 1
    assert keys(use.inputs) == {f"{work(MAKE)}/made.txt"}  # the producer edge, live
    assert keys(use.outputs) == {f"{work(USE)}/.command.log"}  # a failed task's files: no
    before = lineage_snapshot("nextflow")
    for payload in copy.deepcopy(payloads):  # Nextflow retrying, or a replayed log
        assert post(server, payload)[0] == 200
    assert lineage_snapshot("nextflow") == before
    # the launch dir imported afterwards merges with what the receiver recorded
    text = (
        log_line("Jun-01 08:00:00.000", f"Session UUID: {SESSION}")
        + log_line("Jun-01 08:00:00.000", "Launching `main.nf` [tender_curie] DSL2 - revision: 1")
        + "".join(
            log_line(
                "Jun-01 08:00:02.000",
                f"Task completed > TaskHandler[id: {i}; name: {n}; status: COMPLETED; "
                f"exit: {e}; error: -; workDir: {launch / work(h)}]",
            )
            for i, n, h, e in ((1, "MAKE", MAKE, 0), (2, "USE", USE, 1))
        )
        + log_line("Jun-01 08:00:02.500", "Error executing process > 'USE'", "ERROR")
        + log_line("Jun-01 08:00:02.600", "Session aborted -- Cause: Process `USE` failed")
        + log_line("Jun-01 08:00:03.000", "> Execution complete -- Goodbye")
    )
    (launch / ".nextflow.log").write_text(text)
    import_run(launch, timezone="UTC")
    assert lineage_snapshot("nextflow") == before
