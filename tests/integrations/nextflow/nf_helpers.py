"""Helpers for the Nextflow tests: the shared fixtures, launch dirs rebuilt in tmp_path.

Fixture files are read from `../shared/fixtures/nextflow/` (never copied into the repo);
launch dirs that need real payload files are rebuilt under `tmp_path` from the fixture's own
listing, and hand-written edge cases are written there by the tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from lakeline.testing import unavailable

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures" / "nextflow"
SIMPLE = "simple-pipeline-22.04.5"
CRISPR = "nf-core-crispriscreen-1.2.0-nf24.04.4"
WGS = "wgs-varml-resumed-trace"
WEBLOG = "weblog-nf-core-hlatyping-docs-example"
LINEAGE = "lineage-docs-rnaseq-nf-example"

# simple-pipeline: task hashes (work dirs) as the fixture's log and work dirs give them.
INDEX = "304becaab039a55ec2a84ea6c48f1864"
FASTQC = "0476346662b5be55683f429d4bed8745"
QUANT = "253fd6dbae1d06d7eed4d86f546549ba"
MULTIQC = "bf525af5a68c74ffd7459380a1b37d40"
SESSION = "8cedf01b-c1d4-4e1b-ba4d-57f1b2373132"
ORIGINAL_LAUNCH = "/home/ubuntu/simple-pipeline"


def fixture(name: str) -> Path:
    """A fixture set's folder; skips (fails in CI) when ../shared is not there."""
    path = FIXTURES / name
    if not path.is_dir():
        unavailable(f"Nextflow fixtures not found at {path}")
    return path


def work(h: str) -> str:
    """`work/30/4becaa...` (a task work dir key relative to the launch dir)."""
    return f"work/{h[:2]}/{h[2:]}"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def rebuild_simple(tmp_path: Path, *, results: bool = True) -> Path:
    """simple-pipeline's launch dir as it was after the run, under tmp_path.

    Log, history and `.command.*` wrappers are the fixture's own bytes; payload files (which the
    fixture lists but does not hold) get content derived from their git blob SHA-1, so equal
    blobs (a published copy and its source) have equal content; staged inputs become symlinks
    to the rebuilt files, as Nextflow made them. The wrappers keep their original paths
    (/home/ubuntu/simple-pipeline): the importer must map them onto the moved launch dir.
    """
    source = fixture(SIMPLE)
    launch = tmp_path / "simple-pipeline"
    for rel in (".nextflow.log", ".nextflow/history"):
        write(launch / rel, (source / rel).read_bytes())
    for wrapper in sorted((source / "work").glob("*/*/.[ce]*")):
        write(launch / wrapper.relative_to(source), wrapper.read_bytes())
    lines = (source / "work_and_results_listing.tsv").read_text().splitlines()[1:]
    links = []
    for line in lines:
        path, kind, _size, blob, target = (line.split("\t") + [""] * 5)[:5]
        if path.startswith("results/") and not results:
            continue
        if kind == "symlink":
            links.append((path, target))
        elif not (launch / path).exists():
            write(launch / path, f"blob {blob}\n".encode())
    for name in ("gut_1.fq", "gut_2.fq", "transcriptome.fa"):
        write(launch / "data" / "ggal" / name, f"{name} reads\n")
    for path, target in links:
        local = launch / target.removeprefix(ORIGINAL_LAUNCH + "/")
        (launch / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(local, launch / path)
    return launch


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """A fixture set copied to tmp_path (to add files to it, or to move it)."""
    target = tmp_path / name
    shutil.copytree(fixture(name), target, symlinks=True)
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def digest(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def log_line(when: str, message: str, level: str = "DEBUG", thread: str = "main") -> str:
    """A `.nextflow.log` line: `MMM-dd HH:mm:ss.SSS [thread] LEVEL logger - message`."""
    return f"{when} [{thread}] {level:<5} nextflow.Session - {message}\n"


def command_run(name: str, staged: list[tuple[str, str]], outputs: list[str] | None) -> str:
    """A `.command.run` with a >= 24.04 header (or an old one when `outputs` is None)."""
    if outputs is None:
        header = f"#!/bin/bash\n# NEXTFLOW TASK: {name}\n"
    else:
        listed = "".join(f"### - '{o}'\n" for o in outputs)
        header = f"#!/bin/bash\n### ---\n### name: '{name}'\n### outputs:\n{listed}### ...\n"
    stage = "".join(f"    rm -f {n}\n" for _, n in staged)
    stage += "".join(f"    ln -s {src} {n}\n" for src, n in staged)
    return (
        f"{header}set -e\nset -u\n\nnxf_stage() {{\n    true\n    # stage input files\n"
        f"{stage}}}\n\nnxf_unstage() {{\n    true\n}}\n"
    )


def task_dir(
    root: Path,
    h: str,
    name: str,
    *,
    staged: list[tuple[str, str]] = (),  # type: ignore[assignment]
    outputs: dict[str, str] | None = None,
    declared: list[str] | None = None,
    exit_code: int | None = 0,
) -> Path:
    """A task work dir under `root` (the work dir) with wrapper files and outputs."""
    path = root / h[:2] / h[2:]
    write(path / ".command.run", command_run(name, list(staged), declared))
    write(path / ".command.sh", f"#!/bin/bash -ue\necho {name}\n")
    write(path / ".command.log", f"{name} ran\n")
    write(path / ".command.begin", "")
    if exit_code is not None:
        write(path / ".exitcode", str(exit_code))
    for rel, text in (outputs or {}).items():
        write(path / rel, text)
    for source, stage_name in staged:
        if Path(source).exists():
            os.symlink(source, path / stage_name)
    return path


def runs(engine_ref_prefix: str = "") -> list[Any]:
    """The nextflow runs, ordered by engine ref."""
    import lakeline as ll

    query = ll.Run.filter(engine="nextflow")
    if engine_ref_prefix:
        query = query.filter(engine_ref__startswith=engine_ref_prefix)
    return query.order_by("engine_ref").all()


def workflows() -> list[Any]:
    """The nextflow workflow runs (sessions)."""
    import lakeline as ll

    return ll.Run.filter(engine="nextflow", parent_id__isnull=True).order_by("engine_ref").all()


def keys(query: Any) -> set[str]:
    return {a.key for a in query}


def catalog_edges(workflow: Any) -> list[tuple[str, str, str]]:
    """(consumer, producer, file name) for every input of a task of `workflow` that another
    run of it produced, as the catalog holds them (run.inputs, artifact.run)."""
    from pathlib import PurePosixPath

    tasks = {run.id: run for run in workflow.children}
    edges = set()
    for run in tasks.values():
        if run.transform.key == "publishDir":  # copies, not tasks
            continue
        for artifact in run.inputs:
            producer = artifact.run
            if producer is not None and producer.id in tasks and producer.id != run.id:
                name = PurePosixPath(artifact.key or artifact.location).name
                edges.add((run.engine_ref, producer.engine_ref, name))
    return sorted(edges)


def references() -> set[str]:
    """Locations of the artifacts lakeline holds no bytes for."""
    import lakeline as ll

    return {a.location for a in ll.Artifact.filter(available=False)}


def lineage_store(tmp_path: Path) -> Path:
    """The fixture's records laid out as Nextflow stores them (`<key>/.data.json`)."""
    source = fixture(LINEAGE)
    store = tmp_path / ".lineage"
    for record in source.glob("*.json"):
        kind, *key = record.stem.split("__")
        write(store / "/".join(key) / ".data.json", record.read_bytes())
        assert kind in ("TaskRun", "FileOutput")
    return store


def crate_document(h1: str, h2: str, session: str) -> dict[str, object]:
    """A Workflow Run RO-Crate shaped as nf-prov's WrrocRenderer writes one (hand-built)."""
    return {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [
            {"@id": "./", "@type": "Dataset", "mainEntity": {"@id": "main.nf"}},
            {
                "@id": "main.nf",
                "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
                "name": "demo/pipeline",
                "version": "0123abc",
                "codeRepository": "https://github.com/demo/pipeline",
            },
            {
                "@id": f"#{session}",
                "@type": "CreateAction",
                "startTime": "2025-01-02T03:04:05Z",
                "endTime": "2025-01-02T03:14:05Z",
                "object": [],
                "result": [],
            },
            {
                "@id": "#process-control/DEMO:SPLIT",
                "@type": "ControlAction",
                "object": [{"@id": f"#task/{h1}"}],
            },
            {
                "@id": "#process-control/DEMO:COUNT",
                "@type": "ControlAction",
                "object": [{"@id": f"#task/{h2}"}],
            },
            {
                "@id": f"#task/{h1}",
                "@type": "CreateAction",
                "name": "SPLIT (1)",
                "object": [{"@id": "samples.csv"}],
                "result": [{"@id": f"#task/{h1}/parts"}],
                "actionStatus": "http://schema.org/CompletedActionStatus",
            },
            {
                "@id": f"#task/{h2}",
                "@type": "CreateAction",
                "name": "COUNT (1)",
                "object": [{"@id": f"#task/{h1}/parts"}, {"@id": "#tmp/all.txt"}],
                "result": [{"@id": f"#task/{h2}/counts.txt"}],
                "actionStatus": "http://schema.org/CompletedActionStatus",
            },
            {
                "@id": f"#publish/{h2}/counts.txt",
                "@type": "CreateAction",
                "name": "publish",
                "object": {"@id": f"#task/{h2}/counts.txt"},
                "result": {"@id": "counts.txt"},
            },
        ],
    }
