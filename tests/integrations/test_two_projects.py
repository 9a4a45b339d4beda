"""A Snakemake project and a redun project in different folders, with the same file names and
the same input bytes, recorded into one instance: each keeps the graph it gets in an
instance of its own (found by new users: redun's input resolved to Snakemake's record, its
output became a new version of Snakemake's, its runs got no outputs)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance, init

SNAKEFILE = """
rule all:
    input: "results/merged.csv"

rule merge:
    input: "data/s1.csv", "data/s2.csv"
    output: "results/merged.csv"
    shell: "cat {input} > {output}"
"""

REDUN_FLOW = """
from redun import File, task

redun_namespace = "twoproj"


@task()
def merge(a: File, b: File) -> File:
    out = File("results/merged.csv")
    out.write(a.read() + b.read())
    return out


@task()
def main() -> File:
    return merge(File("data/s1.csv"), File("data/s2.csv"))
"""


def make_project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "data" / "s1.csv").write_text("a,b\n1,2\n")
    (root / "data" / "s2.csv").write_text("a,b\n3,4\n")
    return root


def run_snakemake(root: Path, instance_name: str) -> None:
    make_project(root)
    (root / "Snakefile").write_text(textwrap.dedent(SNAKEFILE).lstrip())
    env = {**os.environ, "LAKELINE_INSTANCE": instance_name}
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--logger", "lakeline"]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def run_redun(root: Path) -> None:
    from lakeline_redun import import_redun
    from redun import Scheduler
    from redun.config import Config

    make_project(root)
    (root / "twoproj_flow.py").write_text(REDUN_FLOW)
    (root / ".redun").mkdir()
    db = root / ".redun" / "redun.db"
    config = Config({"backend": {"db_uri": f"sqlite:///{db}", "automigrate": "True"}})
    cwd = os.getcwd()
    os.chdir(root)
    sys.path.insert(0, str(root))
    try:
        import twoproj_flow

        scheduler = Scheduler(config=config)
        scheduler.load()
        scheduler.run(twoproj_flow.main())
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("twoproj_flow", None)
        os.chdir(cwd)
    import_redun(str(db))


def graph(engine: str, root: Path) -> set[tuple[str, str, str]]:
    """(step, used|produced, path in the project) for every edge of `engine`'s step runs; an
    edge to a file outside the project fails."""
    edges = set()
    for run in ll.Run.filter(engine=engine, parent_id__isnull=False):
        step = run.transform.key.split(".")[-1]
        for how, artifacts in (("used", run.inputs.all()), ("produced", run.outputs.all())):
            for artifact in artifacts:
                path = Path(artifact.location)
                assert path.is_relative_to(root), f"{engine}/{step} {how} {path} (not in {root})"
                edges.add((step, how, str(path.relative_to(root))))
    return edges


EXPECTED = {
    ("merge", "used", "data/s1.csv"),
    ("merge", "used", "data/s2.csv"),
    ("merge", "produced", "results/merged.csv"),
}


def test_a_snakemake_and_a_redun_project_in_one_instance(
    instance: Instance, tmp_path: Path
) -> None:
    init(storage=tmp_path / "alone-smk-data", name="alone-smk")
    run_snakemake(tmp_path / "alone-smk", "alone-smk")
    alone_snakemake = graph("snakemake", tmp_path / "alone-smk")
    init(storage=tmp_path / "alone-redun-data", name="alone-redun")
    run_redun(tmp_path / "alone-redun")
    alone_redun = graph("redun", tmp_path / "alone-redun")
    assert alone_snakemake == {*EXPECTED, ("all", "used", "results/merged.csv")}
    assert alone_redun >= EXPECTED

    ll.connect(instance.name)
    run_snakemake(tmp_path / "smk", instance.name)
    run_redun(tmp_path / "redun")
    assert graph("snakemake", tmp_path / "smk") == alone_snakemake
    assert graph("redun", tmp_path / "redun") == alone_redun
    merged = ll.Artifact.filter(key__endswith="results/merged.csv").all()
    assert len(merged) == 2 and all(m.versions.count() == 1 for m in merged)
    assert {m.run.engine for m in merged} == {"snakemake", "redun"}
