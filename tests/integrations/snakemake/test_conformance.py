"""lakeline's Recorder conformance kit, run against the Snakemake plugin with real runs."""

from __future__ import annotations

from pathlib import Path

from lakeline.testing import ExpectedStep, RecorderConformance
from smk_testkit import SNAKEFILE, run_snakemake, write_workflow
from snakemake_logger_plugin_lakeline.importer import import_workflow


class TestSnakemakeConformance(RecorderConformance):
    engine = "snakemake"

    def run_workflow(self, tmp_path: Path) -> list[ExpectedStep]:
        root = write_workflow(
            tmp_path / "wf",
            SNAKEFILE,
            {"data/raw.txt": "alpha beta gamma delta epsilon zeta eta theta"},
        )
        run_snakemake(root, cores=2)
        return [
            ExpectedStep("all", frozenset({"out/total.txt"})),
            ExpectedStep(
                "split", frozenset({"data/raw.txt"}), frozenset({"out/a.txt", "out/b.txt"})
            ),
            ExpectedStep("count", frozenset({"out/a.txt"}), frozenset({"out/a.count"})),
            ExpectedStep("count", frozenset({"out/b.txt"}), frozenset({"out/b.count"})),
            ExpectedStep(
                "merge",
                frozenset({"out/a.count", "out/b.count"}),
                frozenset({"out/total.txt", "logs/merge.log"}),
            ),
        ]

    def replay(self, tmp_path: Path) -> None:
        import_workflow(tmp_path / "wf")  # replays the run's journal with its Snakemake ids
