"""`lakeline snakemake import`, and what happens when the catalog cannot be reached: the
workflow keeps running (or stops, with `strict`), and a later import fills in the gaps."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline import plugins
from lakeline.instance import Instance
from lakeline.testing import lineage_snapshot
from smk_testkit import (
    SNAKEFILE,
    Step,
    ordered,
    run_snakemake,
    steps,
    workflow_runs,
    write_workflow,
)
from snakemake_logger_plugin_lakeline.importer import import_workflow

DATA = {"data/raw.txt": "alpha beta gamma delta epsilon zeta eta theta"}
JOBS = [
    Step("split", frozenset({"data/raw.txt"}), frozenset({"out/a.txt", "out/b.txt"})),
    Step("count", frozenset({"out/a.txt"}), frozenset({"out/a.count"})),
    Step("count", frozenset({"out/b.txt"}), frozenset({"out/b.count"})),
    Step(
        "merge",
        frozenset({"out/a.count", "out/b.count"}),
        frozenset({"out/total.txt", "logs/merge.log"}),
    ),
]
ALL = Step("all", frozenset({"out/total.txt"}))


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_import_a_run_made_without_the_plugin(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeline.cli import build_cli

    root = write_workflow(tmp_path / "wf", SNAKEFILE, DATA)
    run_snakemake(root, plugin=False)
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "snakemake")
    plugins.reset()
    runner = CliRunner()
    first = runner.invoke(build_cli(), ["snakemake", "import", str(root)])
    assert first.exit_code == 0, first.output
    assert "4 from metadata; 5 new runs, 7 new artifacts" in first.output
    assert steps() == ordered(JOBS)  # `all` has no outputs, so no metadata: it is not known
    workflow = ll.Run.get(engine="snakemake", parent_id__isnull=True)
    assert workflow.engine_ref.startswith("import-") and workflow.status == "completed"
    assert workflow.transform.key == "wf"
    merge = ll.Run.get(engine="snakemake", transform__key="merge")
    assert merge.params is not None and "awk" in merge.params["shellcmd"]
    assert merge.transform.source_code.startswith("rule merge:")  # type: ignore[union-attr]
    before = lineage_snapshot("snakemake")
    again = runner.invoke(build_cli(), ["snakemake", "import", str(root)])
    assert again.exit_code == 0 and "0 new runs, 0 new artifacts" in again.output
    assert lineage_snapshot("snakemake") == before
    missing = runner.invoke(build_cli(), ["snakemake", "import", str(tmp_path)])
    assert missing.exit_code == 1 and "no .snakemake folder" in missing.output


FAILING = """
rule all:
    input: "out/total.txt", "out/fail.txt"

rule split:
    input: "data/raw.txt"
    output: temp("tmp/a.txt")
    shell: "cp {input} {output}"

rule total:
    input: "tmp/a.txt"
    output: "out/total.txt"
    shell: "cat {input} > {output}"

rule fail:
    input: "data/raw.txt"
    output: "out/fail.txt"
    log: "logs/fail.log"
    shell: "echo failing > {log}; echo x > {output}; exit 3"
"""


@pytest.mark.parametrize("keep", [False, True], ids=["outputs-deleted", "keep-incomplete"])
def test_metadata_import_records_a_failed_job_as_the_plugin_does(
    instance: Instance, tmp_path: Path, keep: bool
) -> None:
    """Snakemake writes a failed job's metadata record as a finished one's (then deletes its
    outputs, unless --keep-incomplete): its own log (.snakemake/log) names the job failed.
    The import records it errored, with that error and exit status and its log file, never
    its output, as the plugin does live. No exit code is claimed for the others (the metadata
    has none). Before: not imported at all, its log lost (or, kept, imported `completed`
    with its half-written output)."""
    root = write_workflow(tmp_path / "wf", FAILING, DATA)
    options = ["--keep-going", *(["--keep-incomplete"] if keep else [])]
    failed = run_snakemake(root, *options, plugin=False, check=False)
    assert failed.returncode != 0
    assert (root / "out" / "fail.txt").exists() == keep
    assert not (root / "tmp" / "a.txt").exists()  # temp(): deleted once `total` ran
    result = import_workflow(root, report=lambda _: None)
    assert [p for p in result.problems if "fail" in p] == [], result.problems
    assert result.metadata_jobs == 3
    fail = Step("fail", frozenset({"data/raw.txt"}), frozenset({"logs/fail.log"}), "errored")
    assert fail in steps(), steps()
    run = ll.Run.get(engine="snakemake", transform__key="fail")
    assert run.exit_code == 3 and "non-zero exit status 3" in (run.error or ""), run.error
    assert "Error in rule fail:" in (run.error or "")
    log = ll.Artifact.get(key="logs/fail.log")
    assert log.run_id == run.id and log.kind == "log"
    assert log.size == len("failing\n")  # the bytes the failed job wrote
    assert ll.Artifact.filter(key="out/fail.txt").count() == 0
    for rule in ("split", "total"):
        done = ll.Run.get(engine="snakemake", transform__key=rule)
        assert (done.status, done.exit_code) == ("completed", None), rule
    before = lineage_snapshot("snakemake")
    import_workflow(root, report=lambda _: None)
    assert lineage_snapshot("snakemake") == before  # importing again changes nothing


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_metadata_import_claims_no_failure_snakemake_did_not_log(
    instance: Instance, tmp_path: Path
) -> None:
    """Without Snakemake's log (deleted), a job whose outputs are all gone and that no later
    job took as input may have failed: it is not imported, and said."""
    root = write_workflow(tmp_path / "wf", FAILING, DATA)
    run_snakemake(root, "--keep-going", plugin=False, check=False)
    for log in (root / ".snakemake" / "log").iterdir():
        log.unlink()
    result = import_workflow(root, report=lambda _: None)
    assert [p for p in result.problems if "fail" in p] == [
        "lakeline: rule fail (out/fail.txt): not imported: its outputs are gone and no later "
        "job used them: it failed, or they were deleted since (.snakemake/metadata cannot tell)"
    ]
    assert result.metadata_jobs == 2
    assert ll.Run.filter(engine="snakemake", transform__key="fail").count() == 0


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_unknown_instance_keeps_the_workflow_running(instance: Instance, tmp_path: Path) -> None:
    root = write_workflow(tmp_path / "wf", SNAKEFILE, DATA)
    result = run_snakemake(root, "--logger-lakeline-instance", "nosuch")
    assert (root / "out" / "total.txt").read_text() == "9\n"  # "...epsi" + "lon ..."
    assert result.stderr.count("lakeline: cannot record lineage in instance nosuch") == 1
    assert "InstanceNotFound" in result.stderr
    assert "lakeline: lineage incomplete: 5 of 5 jobs" in result.stderr
    assert "rule merge (job " in result.stderr and "out/total.txt, logs/merge.log" in result.stderr
    assert f"fill in later with: lakeline snakemake import {root}" in result.stderr
    assert workflow_runs() == []
    # the journal has what Snakemake reported: importing it records the run, with its ids
    (journal,) = (root / ".snakemake" / "lakeline" / "journal").glob("*.jsonl")
    import_workflow(root)
    assert steps() == ordered([*JOBS, ALL])
    assert ll.Run.get(engine="snakemake", parent_id__isnull=True).engine_ref == journal.stem


def _write_unreachable_instance(name: str) -> None:
    folder = Path(os.environ["LAKELINE_HOME"]) / "instances"
    config = {
        "name": name,
        "db": "postgresql://nobody@127.0.0.1:1/nowhere",  # nothing listens on port 1
        "storage": str(folder / "unused"),
        "uid": "unreachable1",
        "storage_options": {},
    }
    (folder / f"{name}.json").write_text(json.dumps(config))


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_strict_unreachable_database_stops_before_any_job(
    instance: Instance, tmp_path: Path
) -> None:
    """(Without `strict`, an unreachable database is reported like an unknown instance;
    a database lost mid-run is tested below.)"""
    _write_unreachable_instance("down")
    strict = write_workflow(tmp_path / "strict", SNAKEFILE, DATA)
    result = run_snakemake(
        strict,
        "--logger-lakeline-instance",
        "down",
        "--logger-lakeline-strict",
        "true",
        check=False,
    )
    assert result.returncode != 0
    assert "lakeline (strict): cannot record lineage: DatabaseUnreachable" in result.stderr
    assert not (strict / "out").exists()  # stopped before any job ran


CUT = """
rule all:
    input: "last.txt"

rule cut:
    output: "cut.txt"
    script: "cut.py"

rule after:
    input: "cut.txt"
    output: "after.txt"
    shell: "sleep {config[pause]}; cp {input} {output}"

rule last:
    input: "after.txt"
    output: "last.txt"
    shell: "cp {input} {output}"
"""


CUT_SCRIPT = """
import time

import psycopg

config = snakemake.config
# the cut comes once the plugin's first batch (the workflow's run) is written: under load its
# thread may not have flushed yet when this job starts
with psycopg.connect(config["admin"], dbname=config["db"], autocommit=True) as conn:
    for _ in range(600):
        if conn.execute("SELECT EXISTS (SELECT 1 FROM runs)").fetchone()[0]:
            break
        time.sleep(0.1)
with psycopg.connect(config["admin"], autocommit=True) as conn:
    conn.execute(f'ALTER DATABASE "{config["db"]}" ALLOW_CONNECTIONS false')
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        [config["db"]],
    )
open(snakemake.output[0], "w").write("cut\\n")
"""


def _database_access(url: str, allow: bool) -> tuple[str, str]:
    """(admin URL, database name) of the instance's PostgreSQL database; sets its access."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        flag = "true" if allow else "false"
        conn.execute(f'ALTER DATABASE "{parsed.database}" ALLOW_CONNECTIONS {flag}')
    return admin, str(parsed.database)


@pytest.mark.postgres
@pytest.mark.parametrize("instance", ["postgres"], indirect=True)
@pytest.mark.parametrize(
    "mode", ["warn", "strict", "strict-sigint-ignored"], ids=lambda mode: str(mode)
)
def test_database_lost_mid_run(instance: Instance, tmp_path: Path, mode: str) -> None:
    """`strict-sigint-ignored`: Snakemake started as `cmd &` from a script starts (SIGINT
    ignored), so no interrupt can reach it; strict mode must still refuse the next job
    (before, it ran `last` every time: the same as an interrupt lost under load)."""
    strict = mode != "warn"
    url = instance.config.db
    admin, db = _database_access(url, allow=True)
    root = write_workflow(tmp_path / "wf", CUT, {"cut.py": CUT_SCRIPT})
    options = ["--config", f"admin={admin}", f"db={db}", f"pause={5 if strict else 0}"]
    if strict:
        options += ["--logger-lakeline-strict", "true"]
    ignore = mode == "strict-sigint-ignored"
    result = run_snakemake(root, *options, cores=1, check=not strict, ignore_sigint=ignore)
    _database_access(url, allow=True)
    instance.engine.dispose()  # this process's connections were cut too
    assert result.stderr.count("lakeline: cannot record lineage") == 1
    if strict:
        # the job running when recording failed may end; nothing is scheduled after it
        assert result.returncode != 0 and not (root / "last.txt").exists(), result.stderr
        assert "Stopping the workflow (strict)" in result.stderr
        return
    assert (root / "last.txt").exists()
    assert "lakeline: lineage incomplete" in result.stderr and "rule last (job" in result.stderr
    (workflow,) = workflow_runs()
    assert ll.Run.get(id=workflow).status == "started"  # cut off before it could finish
    import_workflow(root)
    assert steps() == [
        Step("after", frozenset({"cut.txt"}), frozenset({"after.txt"})),
        Step("all", frozenset({"last.txt"})),
        Step("cut", outputs=frozenset({"cut.txt"})),
        Step("last", frozenset({"after.txt"}), frozenset({"last.txt"})),
    ]
    assert ll.Run.get(id=workflow).status == "completed"


def test_import_of_live_runs_compares_with_their_own_records(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files that later runs rewrote are not "changed since the run" for a run that recorded
    them live: its own records say what it used and made."""
    from lakeline.cli import build_cli

    root = write_workflow(tmp_path / "wf", SNAKEFILE, DATA)
    run_snakemake(root)
    (root / "data" / "raw.txt").write_text("one two three four five six seven eight nine ten")
    run_snakemake(root)  # every job runs again: every file of the first run is rewritten
    before = lineage_snapshot("snakemake")
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "snakemake")
    plugins.reset()
    result = CliRunner().invoke(build_cli(), ["snakemake", "import", str(root)])
    assert result.exit_code == 0, result.output
    assert "10 jobs from 2 journal(s)" in result.output
    assert "0 new runs, 0 new artifacts" in result.output
    assert "changed since the run" not in result.output
    assert "lineage incomplete" not in result.output
    assert lineage_snapshot("snakemake") == before
    first, second = workflow_runs()
    assert ll.Run.get(id=first).status == ll.Run.get(id=second).status == "completed"


BLIP = """
rule all:
    input: "last.txt"

rule cut:
    output: "cut.txt"
    script: "cut.py"

rule after:
    input: "cut.txt"
    output: "after.txt"
    shell: "sleep 2; cp {input} {output}"

rule back:
    input: "after.txt"
    output: "back.txt"
    script: "back.py"

rule last:
    input: "back.txt"
    output: "last.txt"
    shell: "cp {input} {output}"
"""

BACK_SCRIPT = """
import psycopg

config = snakemake.config
with psycopg.connect(config["admin"], autocommit=True) as conn:
    conn.execute(f'ALTER DATABASE "{config["db"]}" ALLOW_CONNECTIONS true')
open(snakemake.output[0], "w").write("back\\n")
"""


@pytest.mark.postgres
@pytest.mark.parametrize("instance", ["postgres"], indirect=True)
def test_database_lost_for_a_while_is_recovered_at_the_end(
    instance: Instance, tmp_path: Path
) -> None:
    """The database goes away while jobs run and comes back before the end: the step runs
    are not left `started`; the plugin records the run from its journal when it closes."""
    url = instance.config.db
    admin, db = _database_access(url, allow=True)
    files = {"cut.py": CUT_SCRIPT, "back.py": BACK_SCRIPT}
    root = write_workflow(tmp_path / "wf", BLIP, files)
    result = run_snakemake(root, "--config", f"admin={admin}", f"db={db}", cores=1)
    _database_access(url, allow=True)
    instance.engine.dispose()  # this process's connections were cut too
    assert result.stderr.count("lakeline: cannot record lineage") == 1, result.stderr
    assert "lineage incomplete" not in result.stderr
    assert "lakeline: the catalog is back: recorded the run from its journal" in result.stderr
    assert steps() == [
        Step("after", frozenset({"cut.txt"}), frozenset({"after.txt"})),
        Step("all", frozenset({"last.txt"})),
        Step("back", frozenset({"after.txt"}), frozenset({"back.txt"})),
        Step("cut", outputs=frozenset({"cut.txt"})),
        Step("last", frozenset({"back.txt"}), frozenset({"last.txt"})),
    ]
    (workflow,) = workflow_runs()
    assert ll.Run.get(id=workflow).status == "completed"
    assert ll.Run.filter(engine="snakemake", status="started").count() == 0


INTERLEAVED = """\
[Mon Dec  7 13:50:23 2026]
localrule fail:
    output: out/fail.txt
    log: logs/fail.log
    jobid: 3
RuleException:
CalledProcessError in file "/wf/Snakefile", line 18:
Command 'set -euo pipefail;  echo failing > logs/fail.log; exit 3' returned non-zero exit status 3.
RuleException:
CalledProcessError in file "/wf/Snakefile", line 24:
Command 'set -euo pipefail;  exit 5' returned non-zero exit status 5.
[Mon Dec  7 13:50:23 2026]
Finished jobid: 2 (Rule: split)
[Mon Dec  7 13:50:24 2026]
Error in rule fail:
    message: None
    jobid: 3
    output: out/fail.txt
    log: logs/fail.log (check log file(s) for error details)
    shell:
        echo failing > logs/fail.log; exit 3
        (command exited with non-zero exit code)
[Mon Dec  7 13:50:24 2026]
Error in rule other:
    message: None
    jobid: 4
    output: out/other.txt, out/other2.txt
    shell:
        exit 5
        (command exited with non-zero exit code)
"""


def test_failures_are_read_from_snakemake_logs_whose_jobs_interleave(tmp_path: Path) -> None:
    """Two jobs failing at once, another job's line between an exception and its block (as
    seen under load): each failure gets its own command's exit status and text."""
    from snakemake_logger_plugin_lakeline.failures import read_failures

    (tmp_path / ".snakemake" / "log").mkdir(parents=True)
    (tmp_path / ".snakemake" / "log" / "x.snakemake.log").write_text(INTERLEAVED)
    fail, other = read_failures(tmp_path)
    assert (fail.rule, fail.outputs, fail.logs, fail.exit_code) == (
        "fail",
        ["out/fail.txt"],
        ["logs/fail.log"],
        3,
    )
    assert "exit status 3" in fail.text and "exit 5" not in fail.text
    assert (other.rule, other.outputs, other.logs, other.exit_code) == (
        "other",
        ["out/other.txt", "out/other2.txt"],
        [],
        5,
    )
    assert other.at - fail.at == 0 and "Finished jobid" not in fail.text


RETRIED = """
rule flaky:
    input: "data/raw.txt"
    output: "out/flaky.txt"
    log: "logs/flaky.log"
    retries: 1
    shell: "if [ -e tried ]; then cp {input} {output}; else touch tried; exit 3; fi"
"""


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_metadata_import_a_job_that_succeeded_on_its_retry_is_completed(
    instance: Instance, tmp_path: Path
) -> None:
    """`retries:` a job's first attempt fails (Snakemake logs `Error in rule`, then `Trying to
    restart job`), its second completes: the job completed, its output is recorded; the
    first attempt's logged failure is not this record's (review54: it was imported errored,
    its output dropped)."""
    root = write_workflow(tmp_path / "wf", RETRIED, DATA)
    run_snakemake(root, plugin=False)
    assert (root / "tried").exists() and (root / "out" / "flaky.txt").exists()
    log = next((root / ".snakemake" / "log").iterdir()).read_text()
    assert "Error in rule flaky:" in log and "Trying to restart job" in log
    result = import_workflow(root, report=lambda _: None)
    assert result.problems == [], result.problems
    run = ll.Run.get(engine="snakemake", transform__key="flaky")
    assert (run.status, run.exit_code, run.error) == ("completed", None, None)
    assert ll.Artifact.get(key="out/flaky.txt").run_id == run.id


def test_a_failure_snakemake_restarted_is_an_attempt_and_its_last_one_the_failure(
    tmp_path: Path,
) -> None:
    """`retries: 1`, both attempts failing: the first error is followed by `Trying to restart
    job 3.`, the last is not; only the last is the job's failure."""
    from snakemake_logger_plugin_lakeline.failures import read_failures

    error = INTERLEAVED[INTERLEAVED.index("[Mon Dec  7 13:50:24 2026]\nError in rule fail:") :]
    error = error[: error.index("[Mon Dec  7 13:50:24 2026]\nError in rule other:")]
    last = error.replace("13:50:24", "13:50:29")
    text = f"{error}Trying to restart job 3.\n{last}"
    (tmp_path / ".snakemake" / "log").mkdir(parents=True)
    (tmp_path / ".snakemake" / "log" / "x.snakemake.log").write_text(text)
    (failure,) = read_failures(tmp_path)
    assert failure.rule == "fail" and time.localtime(failure.at).tm_sec == 29


@pytest.mark.parametrize("instance", ["sqlite"], indirect=True)
def test_metadata_import_an_old_failure_is_not_a_record_without_a_start_time(
    instance: Instance, tmp_path: Path
) -> None:
    """A record without `starttime` (an older Snakemake's): `fail` failed in a first run, then
    completed in a second; the first run's logged error is not its end (review54: the window
    began at 0, the old error was taken and the completed job imported errored)."""
    import base64

    root = write_workflow(tmp_path / "wf", FAILING, DATA)
    run_snakemake(root, "--keep-going", plugin=False, check=False)
    fixed = FAILING.replace("; exit 3", "")
    write_workflow(root, fixed)
    time.sleep(3)  # past BEFORE: the second run's job starts well after the first's error
    run_snakemake(root, plugin=False)
    name = base64.urlsafe_b64encode(b"out/fail.txt").decode()
    record = root / ".snakemake" / "metadata" / name
    data = json.loads(record.read_text())
    del data["starttime"]
    record.write_text(json.dumps(data))
    import_workflow(root, report=lambda _: None)
    run = ll.Run.get(engine="snakemake", transform__key="fail")
    assert (run.status, run.error) == ("completed", None), run.error
