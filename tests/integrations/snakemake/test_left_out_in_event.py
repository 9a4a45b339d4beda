"""A batch flushed inside a job's event that leaves steps out (StepsNotRecorded): the steps
are counted as left out, not taken for that job's problem (which hid them: the import exited
0 with every job left out)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeline.instance import Instance
from smk_testkit import write_workflow
from sqlalchemy import text


def test_an_import_whose_replay_flushes_in_an_event_counts_the_jobs_left_out(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An output changed since the run: the replay flushes to read the job's own record
    (`Tracker._recorded`), inside the job's event. The import's workflow run is deleted before
    that flush: the jobs are left out, the import says so and exits 1, and importing again
    records them."""
    import os

    import lakeline as ll
    from click.testing import CliRunner
    from lakeline import checkpoints, plugins
    from lakeline.cli import build_cli
    from smk_testkit import SNAKEFILE, run_snakemake

    root = write_workflow(tmp_path / "wf", SNAKEFILE, {"data/raw.txt": "alpha beta gamma"})
    run_snakemake(root, plugin=False)
    total = root / "out" / "total.txt"
    os.utime(total, (total.stat().st_atime, total.stat().st_mtime + 100))  # changed since
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "snakemake")
    plugins.reset()
    deleted: list[int] = []

    def delete_the_workflow_run() -> None:
        if deleted:
            return
        with instance.engine.begin() as conn:
            found = conn.execute(
                text("SELECT id FROM runs WHERE engine = 'snakemake' AND parent_id IS NULL")
            ).scalar()
            if found is not None:
                conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": found})
                deleted.append(found)

    runner = CliRunner()
    with checkpoints.at("source.read", delete_the_workflow_run):
        first = runner.invoke(build_cli(), ["snakemake", "import", str(root)])
    assert deleted
    assert ll.Run.filter(engine="snakemake", parent_id__isnull=False).count() == 0
    assert first.exit_code == 1, first.output
    assert "4 job(s) not recorded: the database refused their steps" in first.output
    assert "the job's event" not in first.output
    again = runner.invoke(build_cli(), ["snakemake", "import", str(root)])
    assert again.exit_code == 0, again.output
    assert ll.Run.filter(engine="snakemake", parent_id__isnull=False).count() == 4
