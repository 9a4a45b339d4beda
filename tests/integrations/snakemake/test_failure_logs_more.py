"""review58's cases of the metadata import's reading of Snakemake's logs (failures.py).

A log's UTC offset read from its jobs' starts against their metadata records
(failures.py) must not take a record of a later run of the job for one of the log's own run:
the user fixes a failing job and runs Snakemake again a quarter of an hour later (or any whole
number of quarter hours, within the slack); the first run's failure must not be moved onto
the second run's job, which completed.

A failure's exception is found by its command also where the Snakefile sets its own
`shell.prefix` and `shell.suffix` (Snakemake's command: prefix, command and suffix joined by
spaces), as on main."""

from __future__ import annotations

import calendar
import json
import os
import re
import time
from base64 import urlsafe_b64decode
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from smk_testkit import Step, run_snakemake, steps, write_workflow
from snakemake_logger_plugin_lakeline.importer import import_workflow

X = """
rule x:
    output: "out/x.txt"
    shell: "if [ -e broken ]; then exit 3; fi; echo x > {output}"
"""
A = """
rule a:
    output: "out/a.txt"
    shell: "echo a > {output}"
"""
ALONE = 'rule all:\n    input: "out/x.txt"\n' + X
WITH_A = 'rule all:\n    input: "out/a.txt", "out/x.txt"\n' + A + X
_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_FORMAT = "%a %b %d %H:%M:%S %Y"


def _start_of(lines: list[str], rule: str) -> int:
    """The stamp (its clock read as UTC: no zone) of the start of `rule`'s job in a log."""
    (k,) = [k for k, line in enumerate(lines) if line in (f"rule {rule}:", f"localrule {rule}:")]
    match = _STAMP.match(lines[k - 1])
    assert match is not None, lines[k - 1]
    return calendar.timegm(time.strptime(match.group(1), _FORMAT))


def _shifted(lines: list[str], by: int) -> list[str]:
    """The log's lines with every stamp moved `by` seconds (as if written that much earlier)."""
    out = []
    for line in lines:
        match = _STAMP.match(line)
        if match is not None:
            naive = calendar.timegm(time.strptime(match.group(1), _FORMAT)) + by
            line = time.strftime("[%a %b %e %H:%M:%S %Y]", time.gmtime(naive))
        out.append(line)
    return out


def _records_moved(root: Path, *, before: float, by: int) -> None:
    """The metadata records of jobs started `before` (the first run's), and their outputs'
    times, moved `by` seconds, as the log's stamps."""
    folder = root / ".snakemake" / "metadata"
    for path in folder.iterdir():
        record = json.loads(path.read_text())
        if record["starttime"] >= before:
            continue
        record["starttime"] += by
        record["endtime"] += by
        path.write_text(json.dumps(record))
        output = root / urlsafe_b64decode(path.name).decode()
        mtime = output.stat().st_mtime + by
        os.utime(output, (mtime, mtime))


@pytest.mark.parametrize(
    ("snakefile", "earlier", "again"),
    [(ALONE, 900, ()), (ALONE, 3600, ()), (WITH_A, 900, ("--forceall",)), (WITH_A, 900, ())],
    ids=["15-min-later", "an-hour-later", "15-min-later-all-jobs", "15-min-later-a-kept"],
)
def test_a_failure_of_an_earlier_run_is_not_moved_onto_a_later_runs_job(
    instance: Instance, tmp_path: Path, snakefile: str, earlier: int, again: tuple[str, ...]
) -> None:
    """The first three cases failed on leftovers31 (x imported errored, with the first
    run's exit 3); the last passed there by the order of a tie (a's vote, x's vote)."""
    root = write_workflow(tmp_path / "wf", snakefile)
    (root / "broken").touch()
    failed = run_snakemake(root, "--keep-going", plugin=False, check=False)
    assert failed.returncode != 0  # x fails: exit 3 (a, if any, completes)
    (root / "broken").unlink()
    between = time.time()
    run_snakemake(root, *again, plugin=False)  # fixed: x completes (and a again, --forceall)
    first, second = sorted((root / ".snakemake" / "log").iterdir())
    lines = first.read_text().splitlines()
    assert "Error in rule x:" in lines
    # the first run happened `earlier` seconds before the second (its job's start then)
    by = _start_of(second.read_text().splitlines(), "x") - earlier - _start_of(lines, "x")
    first.write_text("\n".join(_shifted(lines, by)) + "\n")
    _records_moved(root, before=between, by=by)  # a's, unless run again
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == [], result.problems
    assert Step("x", outputs=frozenset({"out/x.txt"})) in steps(), steps()
    run = ll.Run.get(engine="snakemake", transform__key="x")
    assert (run.status, run.exit_code, run.error) == ("completed", None, None)


PREFIXED = """
shell.prefix("set -eu; ")
shell.suffix("; true")

rule all:
    input: "out/a.txt", "out/b.txt"

rule a:
    output: "out/a.txt"
    shell: "echo a > {output}; exit 3"

rule b:
    output: "out/b.txt"
    shell: "echo b > {output}; exit 35"
"""


def test_a_failure_takes_its_exception_with_the_snakefiles_own_shell_prefix(
    instance: Instance, tmp_path: Path
) -> None:
    """(Failed on leftovers31: no exception, no exit status, for a command run with a prefix
    other than bash's default; main found them.)"""
    root = write_workflow(tmp_path / "wf", PREFIXED)
    assert run_snakemake(root, "--keep-going", plugin=False, check=False).returncode != 0
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == [], result.problems
    for rule, code in (("a", 3), ("b", 35)):
        run = ll.Run.get(engine="snakemake", transform__key=rule)
        assert (run.status, run.exit_code) == ("errored", code), (rule, run.error)
        assert f"exit {code} ; true' returned non-zero exit status {code}." in (run.error or "")


@pytest.fixture(autouse=True)
def _no_batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKELINE_CAPTURE_BATCH", raising=False)
