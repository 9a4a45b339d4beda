"""The metadata import's reading of Snakemake's own logs (`.snakemake/log`, failures.py), with
real Snakemake runs: a log's stamps are the run's local time, whatever zone the import runs
in; and a failure's exception is the one naming its very command (`exit 3` is not `exit 35`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from smk_testkit import Step, run_snakemake, steps, write_workflow
from snakemake_logger_plugin_lakeline.importer import import_workflow

DATA = {"data/raw.txt": "alpha beta gamma"}
FAILING = """
rule all:
    input: "out/done.txt", "out/fail.txt"

rule done:
    input: "data/raw.txt"
    output: "out/done.txt"
    shell: "cp {input} {output}"

rule fail:
    input: "data/raw.txt"
    output: "out/fail.txt"
    log: "logs/fail.log"
    shell: "echo failing > {log}; echo half > {output}; exit 3"
"""


@pytest.fixture
def zone() -> Iterator[None]:
    """TZ set by the test, restored (and the process's zone read again) after it."""
    before = os.environ.get("TZ")
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def _set_zone(name: str) -> None:
    os.environ["TZ"] = name
    time.tzset()


@pytest.mark.parametrize(
    ("run_zone", "import_zone"),
    [("EST+5", "JST-9"), ("NPT-5:45", "UTC0")],
    ids=["new-york-run-tokyo-import", "kathmandu-run-utc-import"],
)
def test_a_failed_job_is_found_whatever_zone_the_import_runs_in(
    instance: Instance, tmp_path: Path, zone: None, run_zone: str, import_zone: str
) -> None:
    """Snakemake run in one zone (--keep-incomplete: the failed job's half-written output
    stays), imported in another: the log's stamps are read in the run's zone, so the failure
    is found and the job imported errored, never `completed` with the half-written output
    (before: the stamps were read in the import's zone, hours off, and the failure missed)."""
    root = write_workflow(tmp_path / "wf", FAILING, DATA)
    _set_zone(run_zone)
    failed = run_snakemake(root, "--keep-going", "--keep-incomplete", plugin=False, check=False)
    assert failed.returncode != 0 and (root / "out" / "fail.txt").read_text() == "half\n"
    _set_zone(import_zone)
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == [], result.problems
    fail = Step("fail", frozenset({"data/raw.txt"}), frozenset({"logs/fail.log"}), "errored")
    assert fail in steps(), steps()
    run = ll.Run.get(engine="snakemake", transform__key="fail")
    assert run.exit_code == 3 and "Error in rule fail:" in (run.error or "")
    assert ll.Artifact.filter(key="out/fail.txt").count() == 0  # never the half-written bytes
    assert ll.Run.get(engine="snakemake", transform__key="done").status == "completed"


TWO = """
rule all:
    input: "out/a.txt", "out/b.txt"

rule a:
    output: "out/a.txt"
    shell: "exit 3"

rule b:
    output: "out/b.txt"
    shell: "exit 35"
"""


def _exception_lines(lines: list[str], code: int) -> list[str]:
    """The three lines of the CalledProcessError Snakemake logged for `exit {code}`."""
    (k,) = [k for k, line in enumerate(lines) if line.endswith(f"exit status {code}.")]
    assert lines[k - 2] == "RuleException:", lines[k - 2 : k + 1]
    return lines[k - 2 : k + 1]


def test_a_failure_takes_the_exception_of_its_own_command(
    instance: Instance, tmp_path: Path
) -> None:
    """Two jobs fail at once, `exit 3` and `exit 35`. Snakemake's log, as written under load
    (review54's interleaving: both exceptions before both error blocks; the lines as this run
    wrote them, moved into that order): `a` takes the exception of `exit 3`, not the nearer
    one of `exit 35` that contains it (before: a substring match gave `a` exit status 35)."""
    root = write_workflow(tmp_path / "wf", TWO)
    assert run_snakemake(root, "--keep-going", plugin=False, check=False).returncode != 0
    (path,) = (root / ".snakemake" / "log").iterdir()
    lines = path.read_text().splitlines()
    raised = _exception_lines(lines, 3) + _exception_lines(lines, 35)
    rest = [line for line in lines if line not in raised]
    first = min(k for k, line in enumerate(rest) if line.startswith("Error in rule ")) - 1
    path.write_text("\n".join([*rest[:first], *raised, *rest[first:]]) + "\n")
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == [], result.problems
    for rule, code in (("a", 3), ("b", 35)):
        run = ll.Run.get(engine="snakemake", transform__key=rule)
        assert (run.status, run.exit_code) == ("errored", code), rule
        assert f"exit status {code}." in (
            run.error or ""
        ) and f"    shell:\n        exit {code}\n" in (run.error or "")
        other = 35 if code == 3 else 3
        assert f"exit status {other}." not in (run.error or ""), run.error


@pytest.fixture(autouse=True)
def _no_batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
