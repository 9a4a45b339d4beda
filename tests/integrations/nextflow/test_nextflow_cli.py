"""`lakeline nextflow ...` through the real plugin entry point and the real CLI group."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline import plugins
from lakeline.cli import build_cli
from lakeline.instance import Instance
from nf_helpers import FASTQC, INDEX, MULTIQC, QUANT, SIMPLE, WEBLOG, fixture, rebuild_simple


@pytest.fixture
def nextflow_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "nextflow")
    plugins.reset()


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(build_cli(), list(args))


def test_hook_register_commands(lakeline_home: Path, nextflow_plugin: None) -> None:
    result = invoke("nextflow", "--help")
    assert result.exit_code == 0, result.output
    assert "import" in result.output and "serve" in result.output
    assert "--lineage-store" in invoke("nextflow", "import", "--help").output


def test_import_command(instance: Instance, nextflow_plugin: None, tmp_path: Path) -> None:
    launch = rebuild_simple(tmp_path)
    dry = invoke("nextflow", "import", str(launch), "--dry-run", "--json", "--timezone", "UTC")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["recorded"] is False and plan["by_status"] == {"completed": 4}
    assert ll.Run.filter(engine="nextflow").count() == 0
    result = invoke("nextflow", "import", str(launch), "--timezone", "UTC")
    assert result.exit_code == 0, result.output
    assert "simple-pipeline/main.nf session 8cedf01b-c1d4-4e1b-ba4d-57f1b2373132" in result.stdout
    assert "recorded 4 tasks of 4 processes (4 completed), 0 cached" in result.stdout
    assert "3 producer edges, 2 published copies" in result.stdout
    assert "note: work dirs from Nextflow < 24.04" in result.stderr
    refs = {r.engine_ref for r in ll.Run.filter(engine="nextflow")}
    assert {INDEX, FASTQC, QUANT, MULTIQC} <= refs


def test_import_of_gone_files(instance: Instance, nextflow_plugin: None) -> None:
    """The fixture in place (its payloads are not there): the edges are recorded and said."""
    dry = invoke("nextflow", "import", str(fixture(SIMPLE)), "--dry-run", "--timezone", "UTC")
    assert "6 files no longer exist: would be recorded as references" in dry.stdout
    result = invoke("nextflow", "import", str(fixture(SIMPLE)), "--timezone", "UTC")
    assert result.exit_code == 0, result.output
    assert "3 producer edges, 0 published copies" in result.stdout
    assert "6 files no longer exist: recorded as references" in result.stdout
    assert "vanished" not in result.stdout
    assert ll.Artifact.filter(available=False).count() == 6


def test_import_errors_are_one_line(
    instance: Instance, nextflow_plugin: None, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in (
        ((str(empty),), "error: no Nextflow run to import in"),
        ((str(empty), "--timezone", "Mars/Olympus"), "error: unknown time zone 'Mars/Olympus'"),
    ):
        result = invoke("nextflow", "import", *args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
        assert "Traceback" not in result.output


def test_serve_command(instance: Instance, tmp_path: Path) -> None:
    """`lakeline nextflow serve` as a real process, fed over HTTP as Nextflow would."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "LAKELINE_LOAD_PLUGINS": "nextflow"}
    command = [sys.executable, "-m", "lakeline.cli", "nextflow", "serve", "--port", str(port)]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    assert response.status == 200
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.05)
        body = (fixture(WEBLOG) / "event_process_completed.json").read_bytes()
        request = urllib.request.Request(url, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert f"listening on {url}" in output
    assert "arrived before its `started` event" in output  # the receiver says what it lacks
    task = ll.Run.get(engine="nextflow", engine_ref="a10024fd028375e2b601aaed44d112e3")
    assert task.status == "completed"
