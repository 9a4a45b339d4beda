"""review53: a temp() symlink output, removed by Snakemake once its readers ran, is no record
of its target for a job reading the target by its own path (run for real), whether that job
ran before the link was removed (the batch written after) or after."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from smk_testkit import run_snakemake, write_workflow

TEMP_LINK = """
rule all:
    input: "out/fromlink.txt", "out/late.txt"

rule mklink:
    output: temp("out/link.txt")
    shell: "ln -s ../data/raw.txt {{output}}"

rule fromlink:
    input: "out/link.txt"{fromlink_after}
    output: "out/fromlink.txt"
    shell: "cat {{input[0]}} > {{output}}"

rule late:
    input: "data/raw.txt"{late_after}
    output: "out/late.txt"
    shell: "cat {{input[0]}} > {{output}}"
"""


@pytest.mark.parametrize("late", ["before_removal", "after_removal"])
def test_a_file_a_temp_link_pointed_to_is_not_the_output_of_the_linking_rule(
    instance: Instance, tmp_path: Path, late: str
) -> None:
    """`late` reads data/raw.txt, which mklink only linked to (`out/link.txt`, temp(): gone
    once fromlink ran): mklink did not make it. Passed on main (stop 29's rule); failed on
    linkmark fcc2d4c, both: nothing is at `out/link.txt` when the batch is written."""
    before = late == "before_removal"
    snakefile = TEMP_LINK.format(
        fromlink_after=', "out/late.txt"' if before else "",
        late_after="" if before else ', "out/fromlink.txt"',
    )
    root = write_workflow(tmp_path / "wf", snakefile, {"data/raw.txt": "raw\n"})
    run_snakemake(root, cores=1)
    assert not (root / "out" / "link.txt").exists()
    link = ll.Artifact.get(key="out/link.txt")
    assert link.run_id == ll.Run.get(engine="snakemake", transform__key="mklink").id
    late_run = ll.Run.get(engine="snakemake", transform__key="late")
    used = sorted((a.key, a.run_id) for a in late_run.inputs if a.key != "out/fromlink.txt")
    assert used == [("data/raw.txt", None)]


def test_a_temp_link_removed_in_an_earlier_run_is_no_record_of_its_target(
    instance: Instance, tmp_path: Path
) -> None:
    """Two invocations: the first runs mklink and fromlink (the temp() link is gone when it
    ends), the second runs only `late`, reading data/raw.txt by its own path. The second
    process never saw the link: only the link's record says it is one (`through_link`).
    Failed on main (late's input was mklink's `out/link.txt`: a false edge)."""
    snakefile = TEMP_LINK.format(fromlink_after="", late_after="")
    root = write_workflow(tmp_path / "wf", snakefile, {"data/raw.txt": "raw\n"})
    run_snakemake(root, "--until", "fromlink", cores=1)
    assert not (root / "out" / "link.txt").exists()
    run_snakemake(root, "--until", "late", cores=1)
    link = ll.Artifact.get(key="out/link.txt")
    assert link.through_link is True
    assert link.run_id == ll.Run.get(engine="snakemake", transform__key="mklink").id
    late_run = ll.Run.get(engine="snakemake", transform__key="late")
    assert [(a.key, a.run_id) for a in late_run.inputs] == [("data/raw.txt", None)]
