"""Lineage exports (PROV-JSON, RO-Crate, OpenLineage) and the OpenLineage emitter.

Lineage is built directly with the models: a workflow run with step runs (one nested, one
cached, one failed), their transforms, inputs and outputs. Each export is read back with the
standard's own tooling, offline: `prov`, the RO-Crate 1.1 context with rdflib and
roc-validator's SHACL profiles, the OpenLineage JSON Schemas.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import lakeline as ll
import pytest
from click.testing import CliRunner
from lakeline.cli import cli
from lakeline.exporters import openlineage_emitter
from lakeline.exporters.openlineage import run_id
from lakeline.hookspecs import hookimpl
from lakeline.ids import new_stem, new_uid, versioned_uid
from lakeline.instance import Instance, current
from lakeline.lineage.exporters import Exporter, exporters, get_exporter
from lakeline.models import Run, RunInput, Transform
from lakeline.plugins import get_plugin_manager
from lakeline.testing import unavailable

# rdflib's JSON-LD parser warns about its own use of ConjunctiveGraph
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

SHARED = Path(__file__).parents[3] / "shared"
OPENLINEAGE_SCHEMAS = SHARED / "schemas" / "openlineage"
ROCRATE_CONTEXT = SHARED / "schemas" / "rocrate" / "context-1.1.jsonld"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- a workflow run built from the models ---------------------------------------------------------


@dataclass
class Lineage:
    """The records of one workflow run: runs and artifacts by name."""

    root: Run
    runs: dict[str, Run] = field(default_factory=dict)
    transforms: dict[str, Transform] = field(default_factory=dict)
    artifacts: dict[str, ll.Artifact] = field(default_factory=dict)
    used: set[tuple[str, str, str]] = field(default_factory=set)  # run, artifact, role
    user_uid: str = ""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class Builder:
    def __init__(self, instance: Instance, tmp: Path) -> None:
        self.instance = instance
        self.tmp = tmp
        self.user_id = instance.user.id

    def transform(
        self, key: str, kind: str, parent: Transform | None = None, **kw: Any
    ) -> Transform:
        stem = new_stem()
        t = Transform(
            uid=versioned_uid(stem, 0),
            stem=stem,
            key=key,
            kind=kind,
            parent_id=parent.id if parent else None,
            created_by_id=self.user_id,
            **kw,
        )
        with self.instance.sessions.write() as s:
            s.add(t)
        return t

    def run(
        self, transform: Transform, parent: Run | None, start: float, end: float | None, **kw: Any
    ) -> Run:
        status = kw.pop("status", "completed")
        log = [{"status": "started", "at": at(start).isoformat()}]
        if end is not None:
            log.append({"status": status, "at": at(end).isoformat()})
        r = Run(
            uid=new_uid(),
            transform_id=transform.id,
            status=status,
            status_log=log,
            scheduled_at=at(start - 0.5),
            started_at=at(start),
            finished_at=at(end) if end is not None else None,
            parent_id=parent.id if parent else None,
            created_by_id=self.user_id,
            host="node-1",
            **kw,
        )
        with self.instance.sessions.write() as s:
            s.add(r)
        return r

    def artifact(
        self, name: str, text: str, key: str, run: Run | None = None, **kw: Any
    ) -> ll.Artifact:
        return ll.Artifact(_write(self.tmp / "src" / name, text), key=key, run=run, **kw).save()

    def folder(self, name: str, key: str, run: Run) -> ll.Artifact:
        _write(self.tmp / "src" / name / "a.txt", "a")
        _write(self.tmp / "src" / name / "b.txt", "bb")
        return ll.Artifact(self.tmp / "src" / name, key=key, run=run).save()

    def use(self, run: Run, artifact: ll.Artifact, role: str, minutes: float) -> None:
        with self.instance.sessions.write() as s:
            s.add(RunInput(run_id=run.id, artifact_id=artifact.id, role=role, used_at=at(minutes)))


@pytest.fixture
def lineage(instance: Instance, tmp_path: Path) -> Lineage:
    """A Snakemake-like workflow: align -> count (-> nested normalize) -> summarize (fails);
    a cached `index` step whose outputs came from an earlier run."""
    b = Builder(instance, tmp_path)
    pipeline = b.transform(
        "workflows/rnaseq/Snakefile",
        "pipeline",
        source_code="rule all:\n    input: 'counts/table.csv'\n",
        hash="c0ffee",
        description="A small RNA-seq pipeline",
        reference="https://example.org/lab/rnaseq",
        reference_type="git",
    )
    align = b.transform("align", "rule", pipeline, source_code="bwa mem {input} > {output}")
    count = b.transform("count", "rule", pipeline)
    normalize = b.transform("normalize", "function", count)
    summarize = b.transform("summarize", "rule", pipeline)
    index = b.transform("index", "rule", pipeline)
    earlier = b.run(index, None, -60, -50, engine="snakemake", engine_ref="old-index")

    reads = b.artifact(
        "reads.fastq", "@r1\nACGT\n+\nIIII\n", "raw/reads.fastq", description="reads"
    )
    genome = b.artifact("genome.fa", ">chr1\nACGT\n", "ref/genome.fa")
    index_file = b.artifact("genome.idx", "index", "ref/genome.idx", run=earlier)

    root = b.run(
        pipeline,
        None,
        0,
        30,
        engine="snakemake",
        engine_ref="wf-1",
        params={"samples": 2, "genome": "hg38", "options": {"strict": True}},
    )
    lin = Lineage(root=root, user_uid=instance.user.uid)
    r_index = b.run(
        index,
        root,
        0.5,
        0.6,
        status="cached",
        cached_from_id=earlier.id,
        engine="snakemake",
        engine_ref="3",
    )
    r_align = b.run(
        align,
        root,
        1,
        10,
        engine="snakemake",
        engine_ref="1",
        params={"threads": 4, "min_q": 0.5, "trim": True},
    )
    b.use(r_align, reads, "reads", 1.1)
    b.use(r_align, genome, "reference", 1.2)
    b.use(r_align, index_file, "index", 1.3)
    bam = b.artifact("sample.bam", "BAM", "aligned/sample.bam", run=r_align)
    qc = b.folder("qc", "aligned/qc", run=r_align)
    r_count = b.run(count, root, 11, 20, engine="snakemake", engine_ref="2")
    b.use(r_count, bam, "input", 11.5)
    table = b.artifact("table.csv", "gene,n\na,1\n", "counts/table.csv", run=r_count)
    r_norm = b.run(normalize, r_count, 15, 16, params={"method": "tpm"})
    b.use(r_norm, table, "table", 15.1)
    normed = b.artifact("normalized.csv", "gene,tpm\na,1.0\n", "counts/normalized.csv", run=r_norm)
    r_sum = b.run(
        summarize,
        root,
        21,
        25,
        status="errored",
        error="ValueError: boom",
        exit_code=1,
        engine="snakemake",
        engine_ref="4",
    )
    b.use(r_sum, normed, "input", 21.5)
    lin.runs = {
        "root": root,
        "index": r_index,
        "align": r_align,
        "count": r_count,
        "normalize": r_norm,
        "summarize": r_sum,
        "earlier": earlier,
    }
    lin.transforms = {
        t.key.rsplit("/", 1)[-1]: t for t in (pipeline, align, count, normalize, summarize, index)
    }
    lin.artifacts = {
        "reads": reads,
        "genome": genome,
        "index": index_file,
        "bam": bam,
        "qc": qc,
        "table": table,
        "normed": normed,
    }
    lin.used = {
        (r_align.uid, reads.uid, "reads"),
        (r_align.uid, genome.uid, "reference"),
        (r_align.uid, index_file.uid, "index"),
        (r_count.uid, bam.uid, "input"),
        (r_norm.uid, table.uid, "table"),
        (r_sum.uid, normed.uid, "input"),
    }
    return lin


def tree_runs(lin: Lineage) -> dict[str, Run]:
    return {k: v for k, v in lin.runs.items() if k != "earlier"}


def export(name: str, lin: Lineage, out: Path) -> list[Path]:
    return get_exporter(name).export(lin.root, out)


# -- W3C PROV -------------------------------------------------------------------------------------


def _local(name: Any) -> str:
    return str(name.localpart)


def vals(record: Any, name: str) -> set[Any]:
    """Attribute values as Python values (typed literals such as xsd:long decoded)."""
    from prov.model import Literal

    out = set()
    for value in record.get_attribute(name):
        if isinstance(value, Literal) and str(value.datatype) in ("xsd:long", "xsd:int"):
            value = int(value.value)
        out.add(value)
    return out


def read_prov(path: Path) -> Any:
    """Read PROV-JSON with the `prov` package; any of its warnings about the input fails."""
    import warnings

    from prov.model import ProvDocument

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return ProvDocument.deserialize(source=str(path), format="json")


def test_prov_reads_back_edge_by_edge(lineage: Lineage, tmp_path: Path) -> None:
    from prov.model import (
        PROV_ATTR_ACTIVITY,
        PROV_ATTR_AGENT,
        PROV_ATTR_ENTITY,
        PROV_ATTR_GENERATED_ENTITY,
        PROV_ATTR_PLAN,
        PROV_ATTR_STARTER,
        PROV_ATTR_USED_ENTITY,
        PROV_ROLE,
        ProvActivity,
        ProvAgent,
        ProvAssociation,
        ProvDerivation,
        ProvEntity,
        ProvGeneration,
        ProvStart,
        ProvUsage,
    )

    (path,) = export("prov", lineage, tmp_path / "out")
    assert path.name == "prov.json"
    doc = read_prov(path)
    records = list(doc.get_records())

    def of(kind: type) -> list[Any]:
        return [r for r in records if isinstance(r, kind)]

    def attr(record: Any, name: Any) -> str:
        values = list(record.get_attribute(name))
        assert len(values) == 1, (record, name, values)
        return _local(values[0])

    runs = tree_runs(lineage)
    activities = {_local(a.identifier): a for a in of(ProvActivity)}
    assert set(activities) == {r.uid for r in runs.values()}
    root = activities[lineage.root.uid]
    assert root.get_startTime() == lineage.root.started_at
    assert root.get_endTime() == lineage.root.finished_at
    types = {str(t) for t in root.get_attribute("prov:type")}
    assert {"lakeline:pipeline", "lakeline:Run"} <= types
    assert json.loads(next(iter(root.get_attribute("lakeline:params")))) == lineage.root.params
    assert vals(root, "param:samples") == {2}
    assert set(root.get_attribute("param:genome")) == {"hg38"}
    assert set(activities[runs["align"].uid].get_attribute("param:trim")) == {True}
    summarize = activities[runs["summarize"].uid]
    assert set(summarize.get_attribute("lakeline:status")) == {"errored"}
    assert set(summarize.get_attribute("lakeline:error")) == {"ValueError: boom"}
    assert vals(summarize, "lakeline:exitCode") == {1}
    cached = activities[runs["index"].uid]
    assert {_local(v) for v in cached.get_attribute("lakeline:cachedFrom")} == {
        lineage.runs["earlier"].uid
    }

    entities = {_local(e.identifier): e for e in of(ProvEntity)}
    plans = {
        u
        for u, e in entities.items()
        if "prov:Plan" in {str(t) for t in e.get_attribute("prov:type")}
    }
    assert plans == {t.uid for t in lineage.transforms.values()}
    step_plan = entities[lineage.transforms["align"].uid]
    assert {_local(v) for v in step_plan.get_attribute("lakeline:partOf")} == {
        lineage.transforms["Snakefile"].uid
    }
    artifacts = set(entities) - plans
    assert artifacts == {a.uid for a in lineage.artifacts.values()}
    bam = lineage.artifacts["bam"]
    bam_entity = entities[bam.uid]
    assert set(bam_entity.get_attribute("prov:location")) == {bam.path}
    assert set(bam_entity.get_attribute("lakeline:hash")) == {bam.hash}
    assert vals(bam_entity, "lakeline:size") == {bam.size}
    assert set(bam_entity.get_attribute("lakeline:key")) == {"aligned/sample.bam"}
    assert {str(t) for t in entities[lineage.artifacts["qc"].uid].get_attribute("prov:type")} == {
        "lakeline:Folder"
    }

    used = {
        (
            attr(u, PROV_ATTR_ACTIVITY),
            attr(u, PROV_ATTR_ENTITY),
            next(iter(u.get_attribute(PROV_ROLE))),
        )
        for u in of(ProvUsage)
    }
    assert used == lineage.used
    usage_times = {attr(u, PROV_ATTR_ENTITY): u.get_attribute("prov:time") for u in of(ProvUsage)}
    assert set(usage_times[lineage.artifacts["reads"].uid]) == {at(1.1)}

    generated = {
        (attr(g, PROV_ATTR_ENTITY), attr(g, PROV_ATTR_ACTIVITY)) for g in of(ProvGeneration)
    }
    produced_in_tree = {
        (a.uid, lineage.runs[r].uid)
        for a, r in [
            (lineage.artifacts["bam"], "align"),
            (lineage.artifacts["qc"], "align"),
            (lineage.artifacts["table"], "count"),
            (lineage.artifacts["normed"], "normalize"),
        ]
    }
    assert generated == produced_in_tree  # the cached index was produced outside the tree

    started = {(attr(s, PROV_ATTR_ACTIVITY), attr(s, PROV_ATTR_STARTER)) for s in of(ProvStart)}
    assert started == {
        (runs[k].uid, lineage.root.uid) for k in ("index", "align", "count", "summarize")
    } | {(runs["normalize"].uid, runs["count"].uid)}

    agents = {_local(a.identifier): a for a in of(ProvAgent)}
    assert set(agents) == {lineage.user_uid}
    assert "prov:Person" in {str(t) for t in agents[lineage.user_uid].get_attribute("prov:type")}
    associations = {
        (attr(a, PROV_ATTR_ACTIVITY), attr(a, PROV_ATTR_AGENT), attr(a, PROV_ATTR_PLAN))
        for a in of(ProvAssociation)
    }
    transform_of = {
        r.id: t
        for t in lineage.transforms.values()
        for r in runs.values()
        if r.transform_id == t.id
    }
    assert associations == {
        (r.uid, lineage.user_uid, transform_of[r.id].uid) for r in runs.values()
    }

    derived = {
        (
            attr(d, PROV_ATTR_GENERATED_ENTITY),
            attr(d, PROV_ATTR_USED_ENTITY),
            attr(d, PROV_ATTR_ACTIVITY),
        )
        for d in of(ProvDerivation)
    }
    a = lineage.artifacts
    align_uid, count_uid, norm_uid = (runs[k].uid for k in ("align", "count", "normalize"))
    assert derived == {
        *(
            (out.uid, src.uid, align_uid)
            for out in (a["bam"], a["qc"])
            for src in (a["reads"], a["genome"], a["index"])
        ),
        (a["table"].uid, a["bam"].uid, count_uid),
        (a["normed"].uid, a["table"].uid, norm_uid),
    }


def test_prov_of_a_step_names_its_parent(lineage: Lineage, tmp_path: Path) -> None:
    from prov.model import ProvActivity, ProvStart

    step = lineage.runs["normalize"]
    (path,) = get_exporter("prov").export(step, tmp_path)
    doc = read_prov(path)
    activities = {_local(r.identifier) for r in doc.get_records(ProvActivity)}
    assert activities == {step.uid, lineage.runs["count"].uid}  # the parent is named, not described
    (start,) = doc.get_records(ProvStart)
    assert {_local(v) for v in start.get_attribute("prov:starter")} == {lineage.runs["count"].uid}


# -- RO-Crate -------------------------------------------------------------------------------------

SCHEMA = "http://schema.org/"


def read_crate(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    metadata = json.loads((folder / "ro-crate-metadata.json").read_text())
    return metadata, {e["@id"]: e for e in metadata["@graph"]}


def ids(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v["@id"] for v in values]


def types(entity: dict[str, Any]) -> set[str]:
    value = entity["@type"]
    return set(value) if isinstance(value, list) else {value}


def test_rocrate_workflow_run_crate_structure(lineage: Lineage, tmp_path: Path) -> None:
    """The profile's MUST (and most SHOULD) requirements, checked one by one."""
    out = tmp_path / "crate"
    written = export("rocrate", lineage, out)
    assert {p.name for p in written} == {"ro-crate-metadata.json", "README.md", "Snakefile"}
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "Snakefile",
        "ro-crate-metadata.json",
    ]
    assert (out / "Snakefile").read_text() == lineage.transforms["Snakefile"].source_code
    metadata, graph = read_crate(out)
    assert metadata["@context"][0] == "https://w3id.org/ro/crate/1.1/context"

    # RO-Crate 1.1: the descriptor, the root data entity
    descriptor = graph["ro-crate-metadata.json"]
    assert descriptor["@type"] == "CreativeWork" and descriptor["about"] == {"@id": "./"}
    assert "https://w3id.org/ro/crate/1.1" in ids(descriptor["conformsTo"])
    root = graph["./"]
    assert root["@type"] == "Dataset"
    for key in ("name", "description", "datePublished", "license"):
        assert root[key], key
    datetime.fromisoformat(root["datePublished"])
    assert set(ids(root["conformsTo"])) == {
        "https://w3id.org/ro/wfrun/process/0.5",
        "https://w3id.org/ro/wfrun/workflow/0.5",
        "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
    }
    for profile in ids(root["conformsTo"]):
        assert graph[profile]["@type"] == "CreativeWork"
    assert graph[ids(root["license"])[0]]["@type"] == "CreativeWork"

    # Workflow RO-Crate: the main workflow is a File, SoftwareSourceCode, ComputationalWorkflow
    (main_id,) = ids(root["mainEntity"])
    assert main_id == "Snakefile" and main_id in ids(root["hasPart"])
    main = graph[main_id]
    assert types(main) == {"File", "SoftwareSourceCode", "ComputationalWorkflow"}
    (language,) = ids(main["programmingLanguage"])
    assert graph[language]["@type"] == "ComputerLanguage" and graph[language]["name"] == "Snakemake"
    assert (
        main["name"] == "workflows/rnaseq/Snakefile"
        and main["url"] == "https://example.org/lab/rnaseq"
    )

    # one CreateAction per run, all mentioned by the root; the workflow's has the main entity
    runs = tree_runs(lineage)
    actions = {e["identifier"]: e for e in graph.values() if e["@type"] == "CreateAction"}
    assert set(actions) == {r.uid for r in runs.values()}
    assert set(ids(root["mentions"])) == {a["@id"] for a in actions.values()}
    workflow_action = actions[lineage.root.uid]
    assert ids(workflow_action["instrument"]) == [main_id]
    assert workflow_action["actionStatus"] == SCHEMA + "CompletedActionStatus"
    assert workflow_action["startTime"] == "2024-05-01T10:00:00.000+00:00"
    assert workflow_action["endTime"] == "2024-05-01T10:30:00.000+00:00"
    assert ids(workflow_action["agent"]) == [f"#user-{lineage.user_uid}"]
    assert graph[f"#user-{lineage.user_uid}"]["@type"] == "Person"
    a = lineage.artifacts
    uri = {k: Path(v.path).as_uri() for k, v in a.items()}
    uri["qc"] += "/"
    # the workflow's inputs: what its steps used that was made outside it; results: final outputs
    assert {uri[k] for k in ("reads", "genome", "index")} <= set(ids(workflow_action["object"]))
    assert uri["qc"] in ids(workflow_action["result"])
    assert uri["bam"] not in ids(workflow_action["result"])  # intermediate: used by count
    assert uri["normed"] not in ids(workflow_action["result"])  # used by summarize
    params = [
        graph[i] for i in ids(workflow_action["object"]) if graph[i]["@type"] == "PropertyValue"
    ]
    assert {p["name"]: p["value"] for p in params} == {
        "samples": 2,
        "genome": "hg38",
        "options": json.dumps({"strict": True}),
    }

    align = actions[runs["align"].uid]
    tool = graph[ids(align["instrument"])[0]]
    assert tool["@type"] == "SoftwareApplication" and tool["name"] == "align"
    assert tool["@id"] in ids(main["hasPart"])
    assert set(ids(align["object"])) >= {uri["reads"], uri["genome"], uri["index"]}
    assert set(ids(align["result"])) == {uri["bam"], uri["qc"]}
    failed = actions[runs["summarize"].uid]
    assert failed["actionStatus"] == SCHEMA + "FailedActionStatus"
    assert failed["error"] == "ValueError: boom"
    assert actions[runs["index"].uid]["actionStatus"] == SCHEMA + "CompletedActionStatus"
    assert actions[runs["index"].uid]["lakeline:cachedFrom"] == lineage.runs["earlier"].uid
    assert actions[runs["normalize"].uid]["lakeline:parentRun"] == {
        "@id": f"#run-{runs['count'].uid}"
    }
    for action in actions.values():
        assert "error" not in action or action["actionStatus"].endswith("FailedActionStatus")

    # data entities: referenced by storage URL, never copied
    bam = graph[uri["bam"]]
    assert bam["@type"] == "File"
    assert bam["sha256"] == a["bam"].hash and bam["contentSize"] == str(a["bam"].size)
    assert graph[uri["table"]]["encodingFormat"] == "text/csv"
    assert graph[uri["qc"]]["@type"] == "Dataset" and "sha256" not in graph[uri["qc"]]
    assert set(uri.values()) <= set(ids(root["hasPart"]))

    # Workflow Run Crate: FormalParameters with additionalType, linked both ways with examples
    formal = {i: e for i, e in graph.items() if e["@type"] == "FormalParameter"}
    assert formal
    for ident, parameter in formal.items():
        assert parameter["additionalType"] and parameter["name"]
        for example in ids(parameter["workExample"]):
            assert ident in ids(graph[example]["exampleOfWork"])
    for direction in ("input", "output"):
        for ident in ids(main[direction]):
            assert ident in formal
    by_name = {formal[i]["name"]: formal[i] for i in ids(tool["input"])}
    assert by_name["reads"]["additionalType"] == "File"
    assert by_name["threads"]["additionalType"] == "Integer"
    assert by_name["trim"]["additionalType"] == "Boolean"

    # every local reference points to an entity of the crate; @ids are unique
    assert len(graph) == len(metadata["@graph"])
    for entity in metadata["@graph"]:
        for key, value in entity.items():
            if key.startswith("@"):
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and not item["@id"].startswith("https://"):
                    assert item["@id"] in graph, (entity["@id"], key, item)
    assert lineage.root.uid in (out / "README.md").read_text()


def test_rocrate_of_a_single_run_is_a_process_run_crate(lineage: Lineage, tmp_path: Path) -> None:
    step = lineage.runs["normalize"]
    (step_count,) = [lineage.runs["count"]]
    export_dir = tmp_path / "crate"
    get_exporter("rocrate").export(lineage.runs["summarize"], export_dir)
    _, graph = read_crate(export_dir)
    root = graph["./"]
    assert ids(root["conformsTo"]) == ["https://w3id.org/ro/wfrun/process/0.5"]
    assert "mainEntity" not in root
    (action,) = [e for e in graph.values() if e["@type"] == "CreateAction"]
    tool = graph[ids(action["instrument"])[0]]
    assert "SoftwareSourceCode" in types(tool) and "ComputationalWorkflow" not in types(tool)
    assert action["lakeline:parentRun"] == lineage.root.uid  # outside this crate: by uid
    assert step.uid != step_count.uid


def _expand(folder: Path) -> tuple[Any, dict[str, Any], str]:
    """Parse the crate with rdflib, the RO-Crate 1.1 context served from the local file."""
    import rdflib

    if not ROCRATE_CONTEXT.is_file():
        unavailable(f"the RO-Crate context is not at {ROCRATE_CONTEXT}")
    metadata = json.loads((folder / "ro-crate-metadata.json").read_text())
    local = json.loads(ROCRATE_CONTEXT.read_text())["@context"]
    assert metadata["@context"][0] == "https://w3id.org/ro/crate/1.1/context"
    inlined = {**metadata, "@context": [local, *metadata["@context"][1:]]}
    base = folder.as_uri() + "/"
    graph = rdflib.Graph().parse(data=json.dumps(inlined), format="json-ld", base=base)
    return graph, metadata, base


def test_rocrate_terms_resolve_with_the_local_context(lineage: Lineage, tmp_path: Path) -> None:
    """Expanding the JSON-LD offline loses nothing: every key and type maps to an absolute IRI."""
    import rdflib

    export("rocrate", lineage, tmp_path / "crate")
    graph, metadata, base = _expand(tmp_path / "crate")
    for entity in metadata["@graph"]:
        subject = rdflib.URIRef(urljoin(base, entity["@id"]))
        predicates = set(graph.predicates(subject, None))
        keys = [k for k in entity if not k.startswith("@")]
        assert len(predicates) == len(keys) + 1, (entity["@id"], keys, predicates)  # + rdf:type
        for rdf_type in graph.objects(subject, rdflib.RDF.type):
            assert str(rdf_type).startswith(("http://schema.org/", "https://bioschemas.org/")), (
                rdf_type
            )
    sha = rdflib.URIRef("https://w3id.org/ro/terms/workflow-run#sha256")
    assert {str(o) for o in graph.objects(None, sha)} >= {lineage.artifacts["bam"].hash}
    status = rdflib.URIRef(SCHEMA + "actionStatus")
    assert {str(o) for o in graph.objects(None, status)} == {
        SCHEMA + "CompletedActionStatus",
        SCHEMA + "FailedActionStatus",
    }


def roc_validate(folder: Path, profile: str, severity: str, cache: Path) -> list[tuple[str, str]]:
    """Run roc-validator offline: its HTTP cache is seeded with the local RO-Crate context."""
    if not ROCRATE_CONTEXT.is_file():
        unavailable(f"the RO-Crate context is not at {ROCRATE_CONTEXT}")
    if importlib.util.find_spec("rocrate_validator") is None:
        unavailable("roc-validator is not installed (it is a dev dependency)")
    import io

    import requests
    import urllib3
    from requests_cache import CachedSession
    from rocrate_validator import models, services

    body = ROCRATE_CONTEXT.read_bytes()

    class LocalContext(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            raw = urllib3.HTTPResponse(
                body=io.BytesIO(body),
                headers={"Content-Type": "application/ld+json"},
                status=200,
                reason="OK",
                preload_content=False,
                request_url=request.url,
            )
            return self.build_response(request, raw)

    seed = CachedSession(cache_name=str(cache), backend="sqlite", expire_after=-1)
    seed.mount("https://w3id.org/ro/crate/1.1/context", LocalContext())
    assert seed.get("https://w3id.org/ro/crate/1.1/context").status_code == 200
    seed.close()
    settings = models.ValidationSettings(
        rocrate_uri=str(folder),
        profile_identifier=profile,
        requirement_severity=severity,
        offline=True,
        cache_path=cache,
    )
    try:
        result = services.validate(settings)
    finally:  # roc-validator patches rdflib's context loader process-wide: undo it
        from rocrate_validator.utils.document_loader import uninstall_document_loader

        uninstall_document_loader()
    issues = [
        (str(i.check.identifier if i.check else "-"), i.message or "") for i in result.get_issues()
    ]
    assert result.passed() == (not issues), issues
    return issues


# SHOULD-level findings lakeline cannot honestly satisfy from what it records
NOT_RECORDED = {
    "process-run-crate-0.5_11.1",  # "The Action SHOULD have a result": the failed step made none
    "process-run-crate-0.5_3.2",  # "The Application SHOULD have a url": steps have no web page
    "process-run-crate-0.5_5.1",  # "SoftwareApplication id SHOULD be an absolute URI": ditto
    "ro-crate-1.1_22.3",  # "publisher SHOULD be an Organization": no publisher is known
    "ro-crate-1.1_30.2",  # "The author SHOULD have an organizational affiliation": not recorded
    "ro-crate-1.1_30.3",  # ... "a Contextual Entity for that affiliation": idem
}


def test_rocrate_passes_roc_validator_offline(lineage: Lineage, tmp_path: Path) -> None:
    export("rocrate", lineage, tmp_path / "crate")
    cache = tmp_path / "roc-cache"
    assert roc_validate(tmp_path / "crate", "workflow-run-crate", "REQUIRED", cache) == []
    recommended = roc_validate(tmp_path / "crate", "workflow-run-crate", "RECOMMENDED", cache)
    assert {check for check, _ in recommended} <= NOT_RECORDED, recommended


def test_rocrate_validator_catches_a_broken_crate(lineage: Lineage, tmp_path: Path) -> None:
    """The offline validator really checks: drop the main workflow's language and it fails."""
    out = tmp_path / "crate"
    export("rocrate", lineage, out)
    metadata = json.loads((out / "ro-crate-metadata.json").read_text())
    for entity in metadata["@graph"]:
        entity.pop("programmingLanguage", None)
    (out / "ro-crate-metadata.json").write_text(json.dumps(metadata))
    issues = roc_validate(out, "workflow-run-crate", "REQUIRED", tmp_path / "roc-cache")
    assert any("programmingLanguage" in message for _, message in issues), issues


def test_rocrate_single_run_passes_process_run_crate_profile(
    lineage: Lineage, tmp_path: Path
) -> None:
    get_exporter("rocrate").export(lineage.runs["align"], tmp_path / "crate")
    cache = tmp_path / "roc-cache"
    assert roc_validate(tmp_path / "crate", "process-run-crate", "REQUIRED", cache) == []


# -- OpenLineage ----------------------------------------------------------------------------------


class OpenLineageSchemas:
    """The OpenLineage JSON Schemas, each registered under its `$id`: nothing is fetched."""

    def __init__(self) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        if not (OPENLINEAGE_SCHEMAS / "OpenLineage.json").is_file():
            unavailable(f"the OpenLineage schemas are not in {OPENLINEAGE_SCHEMAS}")
        files = [
            OPENLINEAGE_SCHEMAS / "OpenLineage.json",
            *sorted((OPENLINEAGE_SCHEMAS / "facets").glob("*.json")),
        ]
        self.schemas = {s["$id"]: s for s in (json.loads(f.read_text()) for f in files)}
        registry: Any = Registry().with_resources(
            (i, Resource.from_contents(s, default_specification=DRAFT202012))
            for i, s in self.schemas.items()
        )
        self.registry = registry
        self.checker = Draft202012Validator.FORMAT_CHECKER
        self.core = Draft202012Validator(
            self.schemas["https://openlineage.io/spec/2-0-2/OpenLineage.json"],
            registry=registry,
            format_checker=self.checker,
        )

    def validate(self, event: dict[str, Any]) -> int:
        """Validate an event and each standard facet against its own schema; count the facets."""
        from jsonschema import Draft202012Validator

        self.core.validate(event)
        assert (
            event["schemaURL"]
            == "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
        )
        checked = 0
        for name, facet in self._facets(event):
            url = facet["_schemaURL"]
            if url.startswith("https://lakeline.dev/"):
                assert facet["_producer"].startswith("https://lakeline.dev/")
                continue
            schema = self.schemas[url.split("#", 1)[0]]
            assert name in schema["properties"], (name, url)
            Draft202012Validator(
                schema, registry=self.registry, format_checker=self.checker
            ).validate({name: facet})
            checked += 1
        return checked

    @staticmethod
    def _facets(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from event["run"].get("facets", {}).items()
        yield from event["job"].get("facets", {}).items()
        for dataset in (*event.get("inputs", []), *event.get("outputs", [])):
            for key in ("facets", "inputFacets", "outputFacets"):
                yield from dataset.get(key, {}).items()


@pytest.fixture(scope="session")
def ol_schemas() -> OpenLineageSchemas:
    return OpenLineageSchemas()


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_openlineage_events_follow_the_schemas(
    lineage: Lineage, tmp_path: Path, ol_schemas: OpenLineageSchemas
) -> None:
    (path,) = export("openlineage", lineage, tmp_path / "out")
    assert path.name == "openlineage.jsonl"
    events = read_events(path)
    facets = sum(ol_schemas.validate(e) for e in events)
    assert facets > 50
    facet_names = {
        name
        for e in events
        for name, _ in OpenLineageSchemas._facets(e)
        if not name.startswith("lakeline")
    }
    assert {
        "parent",
        "jobType",
        "sourceCode",
        "errorMessage",
        "executionParameters",
        "symlinks",
    } <= facet_names


def test_openlineage_events_map_the_runs(lineage: Lineage, tmp_path: Path) -> None:
    (path,) = export("openlineage", lineage, tmp_path / "out")
    events = read_events(path)
    runs = tree_runs(lineage)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_run.setdefault(e["run"]["runId"], []).append(e)
    expected = {
        "root": "COMPLETE",
        "index": "COMPLETE",  # cached
        "align": "COMPLETE",
        "count": "COMPLETE",
        "normalize": "COMPLETE",
        "summarize": "FAIL",
    }
    assert set(by_run) == {run_id(r.uid) for r in runs.values()}
    for name, final in expected.items():
        run = runs[name]
        start, end = by_run[run_id(run.uid)]
        assert (start["eventType"], end["eventType"]) == ("START", final)
        assert start["eventTime"] == run.started_at.isoformat()
        assert end["eventTime"] == run.finished_at.isoformat()
        assert uuid.UUID(start["run"]["runId"]).version == 5
        assert start["run"]["facets"]["lakeline"]["uid"] == run.uid
    # stable ids: the same uid always gives the same runId; events are in time order
    assert run_id(lineage.root.uid) == run_id(lineage.root.uid) != run_id(runs["align"].uid)
    times = [datetime.fromisoformat(e["eventTime"]) for e in events]
    assert times == sorted(times)
    assert (
        events[0]["run"]["runId"] == run_id(lineage.root.uid) and events[0]["eventType"] == "START"
    )
    assert events[-1]["run"]["runId"] == run_id(lineage.root.uid)

    root_start = by_run[run_id(lineage.root.uid)][0]
    assert root_start["job"] == {
        **root_start["job"],
        "namespace": "test",
        "name": "workflows/rnaseq/Snakefile",
    }
    assert "parent" not in root_start["run"]["facets"]
    assert root_start["job"]["facets"]["jobType"]["integration"] == "SNAKEMAKE"
    assert root_start["job"]["facets"]["sourceCode"]["language"] == "Snakemake"
    params = root_start["run"]["facets"]["executionParameters"]["parameters"]
    assert {p["key"]: p["value"] for p in params} == {
        "samples": "2",
        "genome": "hg38",
        "options": '{"strict": true}',
    }

    norm_start, norm_end = by_run[run_id(runs["normalize"].uid)]
    parent = norm_start["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == run_id(runs["count"].uid)
    assert parent["job"] == {"namespace": "test", "name": "count"}
    assert parent["root"]["run"]["runId"] == run_id(lineage.root.uid)
    storage_ns = Path(current().storage.root).as_uri()
    assert [(d["namespace"], d["name"]) for d in norm_start["inputs"]] == [
        (storage_ns, "counts/table.csv")
    ]
    assert norm_start["outputs"] == []
    (output,) = norm_end["outputs"]
    normed = lineage.artifacts["normed"]
    assert (output["namespace"], output["name"]) == (storage_ns, "counts/normalized.csv")
    assert output["facets"]["version"]["datasetVersion"] == normed.uid
    (location,) = output["facets"]["symlinks"]["identifiers"]
    assert (location["namespace"], location["name"], location["type"]) == (
        "file",
        normed.path,
        "LOCATION",
    )
    assert output["outputFacets"]["outputStatistics"]["size"] == normed.size

    fail = by_run[run_id(runs["summarize"].uid)][1]
    assert fail["run"]["facets"]["errorMessage"]["message"] == "ValueError: boom"
    align_end = by_run[run_id(runs["align"].uid)][1]
    assert {d["name"] for d in align_end["outputs"]} == {"aligned/sample.bam", "aligned/qc"}
    roles = {d["name"]: d["facets"]["lakeline"]["role"] for d in align_end["inputs"]}
    assert roles == {
        "raw/reads.fastq": "reads",
        "ref/genome.fa": "reference",
        "ref/genome.idx": "index",
    }


def test_openlineage_skips_runs_that_never_started(instance: Instance, tmp_path: Path) -> None:
    b = Builder(instance, tmp_path)
    script = b.transform("scripts/prep.py", "script", source_code="print(1)")
    run = b.run(script, None, 0, None, status="started")
    waiting = b.run(script, run, 1, None, status="scheduled")
    with instance.sessions.write() as s:
        s.get(Run, waiting.id).started_at = None  # type: ignore[union-attr]
    (path,) = get_exporter("openlineage").export(run, tmp_path / "out")
    events = read_events(path)
    assert [(e["eventType"], e["run"]["runId"]) for e in events] == [("START", run_id(run.uid))]
    assert events[0]["job"]["facets"]["sourceCode"]["language"] == "Python"


def test_openlineage_schema_check_is_real(
    lineage: Lineage, tmp_path: Path, ol_schemas: OpenLineageSchemas
) -> None:
    from jsonschema import ValidationError

    (path,) = export("openlineage", lineage, tmp_path / "out")
    child = next(e for e in read_events(path) if "parent" in e["run"]["facets"])
    del child["run"]["facets"]["parent"]["job"]
    with pytest.raises(ValidationError, match="'job' is a required property"):
        ol_schemas.validate(child)
    child["run"]["runId"] = "not-a-uuid"
    with pytest.raises(ValidationError, match="uuid"):
        ol_schemas.core.validate(child)


# -- the OpenLineage emitter (run_started / run_finished hooks) ------------------------------------


@pytest.fixture
def emitter_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("FILE", "URL", "API_KEY", "TIMEOUT"):
        monkeypatch.delenv(f"LAKELINE_OPENLINEAGE_{name}", raising=False)
    openlineage_emitter.reset()
    yield monkeypatch
    openlineage_emitter.reset()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@pytest.fixture
def lineage_server() -> Iterator[tuple[str, list[Received]]]:
    """A real HTTP server on 127.0.0.1 that records the OpenLineage events POSTed to it."""
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            received.append(Received(self.path, dict(self.headers), body))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_hook_run_started(
    lineage: Lineage,
    emitter_env: pytest.MonkeyPatch,
    lineage_server: tuple[str, list[Received]],
) -> None:
    url, received = lineage_server
    emitter_env.setenv("LAKELINE_OPENLINEAGE_URL", url + "/")
    emitter_env.setenv("LAKELINE_OPENLINEAGE_API_KEY", "s3cret")
    hook = get_plugin_manager().hook
    hook.run_started(run=lineage.root)
    hook.run_started(run=lineage.runs["normalize"])
    assert [r.path for r in received] == ["/api/v1/lineage"] * 2
    assert received[0].headers["Authorization"] == "Bearer s3cret"
    assert received[0].headers["Content-Type"] == "application/json"
    root, child = (r.body for r in received)
    assert (root["eventType"], root["run"]["runId"]) == ("START", run_id(lineage.root.uid))
    assert child["run"]["facets"]["parent"]["run"]["runId"] == run_id(lineage.runs["count"].uid)
    assert child["run"]["facets"]["parent"]["root"]["run"]["runId"] == run_id(lineage.root.uid)
    assert [d["name"] for d in child["inputs"]] == ["counts/table.csv"]
    assert child["outputs"] == []
    if (OPENLINEAGE_SCHEMAS / "OpenLineage.json").is_file():
        schemas = OpenLineageSchemas()
        for event in (root, child):
            schemas.validate(event)


def test_hook_run_finished(
    lineage: Lineage, emitter_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "events" / "lineage.jsonl"
    target.parent.mkdir()
    emitter_env.setenv("LAKELINE_OPENLINEAGE_FILE", str(target))
    hook = get_plugin_manager().hook
    hook.run_finished(run=lineage.runs["align"])
    hook.run_finished(run=lineage.runs["summarize"])
    running = Run.get(lineage.runs["count"].uid)
    running.status = "started"
    hook.run_finished(run=running)  # not finished: nothing to say
    complete, fail = read_events(target)
    assert (complete["eventType"], complete["run"]["runId"]) == (
        "COMPLETE",
        run_id(lineage.runs["align"].uid),
    )
    assert {d["name"] for d in complete["outputs"]} == {"aligned/sample.bam", "aligned/qc"}
    assert fail["eventType"] == "FAIL"
    assert fail["run"]["facets"]["errorMessage"]["message"] == "ValueError: boom"
    assert fail["eventTime"] == lineage.runs["summarize"].finished_at.isoformat()


def test_emitter_is_inactive_without_destinations(
    lineage: Lineage,
    emitter_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    assert not openlineage_emitter.active()
    hook = get_plugin_manager().hook
    unsaved = Run(uid=new_uid(), transform_id=0, status="completed")  # would fail to export
    with caplog.at_level(logging.DEBUG, logger="lakeline"):
        hook.run_started(run=unsaved)
        hook.run_finished(run=unsaved)
    assert caplog.records == []
    emitter_env.setenv("LAKELINE_OPENLINEAGE_FILE", str(tmp_path / "x.jsonl"))
    with caplog.at_level(logging.WARNING, logger="lakeline"):
        hook.run_finished(run=unsaved)  # active now: the failure is logged, not raised
    assert "cannot send OpenLineage events" in caplog.text
    assert not (tmp_path / "x.jsonl").exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_emitter_failures_never_break_the_run(
    lineage: Lineage,
    emitter_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    emitter_env.setenv("LAKELINE_OPENLINEAGE_URL", f"http://127.0.0.1:{_closed_port()}")
    emitter_env.setenv("LAKELINE_OPENLINEAGE_TIMEOUT", "0.5")
    emitter_env.setenv("LAKELINE_OPENLINEAGE_FILE", str(tmp_path / "missing-dir" / "events.jsonl"))
    hook = get_plugin_manager().hook
    with caplog.at_level(logging.WARNING, logger="lakeline"):
        for _ in range(3):
            hook.run_started(run=lineage.root)
            hook.run_finished(run=lineage.root)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # once for the URL, once for the file
    assert any("127.0.0.1" in w for w in warnings) and any("events.jsonl" in w for w in warnings)


# -- the registry and the CLI ----------------------------------------------------------------------


class RunListExporter:
    """A third-party exporter plugin: one line per run of the tree."""

    @hookimpl
    def register_exporters(self, register: Callable[[Exporter], None]) -> None:
        def export(run: Run, out_dir: Path) -> list[Path]:
            path = out_dir / "runs.txt"
            path.write_text(f"{run.uid}\n")
            return [path]

        register(Exporter(name="runlist", description="run uids", export=export))


def test_hook_register_exporters(lineage: Lineage, tmp_path: Path) -> None:
    from lakeline import plugins
    from lakeline.lineage import exporters as registry

    assert {"prov", "rocrate", "openlineage"} <= set(exporters())
    assert "runlist" not in exporters()
    plugins.get_plugin_manager().register(RunListExporter())
    registry.reset()
    try:
        assert exporters()["runlist"].description == "run uids"
        result = CliRunner().invoke(
            cli, ["export", "runlist", "--run", lineage.root.uid, "-o", str(tmp_path / "o")]
        )
        assert result.exit_code == 0, result.output
        assert (tmp_path / "o" / "runs.txt").read_text() == f"{lineage.root.uid}\n"
    finally:
        plugins.reset()


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("prov", ["prov.json"]),
        ("rocrate", ["README.md", "Snakefile", "ro-crate-metadata.json"]),
        ("openlineage", ["openlineage.jsonl"]),
    ],
)
def test_cli_export(
    lineage: Lineage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, files: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    uid = lineage.root.uid
    result = CliRunner().invoke(cli, ["export", name, "--run", uid])
    assert result.exit_code == 0, result.output
    out = tmp_path / f"lakeline-export-{uid}"
    assert sorted(p.name for p in out.iterdir()) == files
    assert f"exported run {uid} as {name}" in result.output
    again = CliRunner().invoke(cli, ["export", name, "--run", uid, "-o", "elsewhere/deeper"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "elsewhere" / "deeper").iterdir()) == files


def test_cli_export_errors(
    lineage: Lineage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(cli, ["export", "prov", "--run", "NoSuchRun0000000"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no run with uid 'NoSuchRun0000000' in instance 'test'"
    result = CliRunner().invoke(cli, ["export", "graphml", "--run", lineage.root.uid])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: no exporter named 'graphml'; available: openlineage, prov, rocrate"
    )
    result = CliRunner().invoke(cli, ["export", "prov"])
    assert result.exit_code == 2 and "--run" in result.output
    assert list(work.iterdir()) == []  # nothing half-written
    (work / "file").write_text("x")
    result = CliRunner().invoke(cli, ["export", "prov", "--run", lineage.root.uid, "-o", "file"])
    assert result.exit_code == 2 and "file" in result.output


def test_export_of_an_unknown_run_record_is_a_clear_error(
    instance: Instance, tmp_path: Path
) -> None:
    unsaved = Run(uid=new_uid(), transform_id=1, status="completed")
    for name in ("prov", "rocrate", "openlineage"):
        with pytest.raises(ll.errors.LakelineError, match="is not saved"):
            get_exporter(name).export(unsaved, tmp_path / name)
        assert not (tmp_path / name).exists()


def _copy_step(instance: Instance, tmp_path: Path) -> tuple[Run, ll.Artifact, ll.Artifact]:
    """A step that copies a file: same bytes, two keys, one stored object."""
    b = Builder(instance, tmp_path)
    copy = b.transform("scripts/copy.py", "script", source_code="import shutil")
    run = b.run(copy, None, 0, 1, status="completed")
    source = b.artifact("a.csv", "x,y\n1,2\n", "in/a.csv")
    b.use(run, source, "input", 0.5)
    copied = b.artifact("b.csv", "x,y\n1,2\n", "out/a-copy.csv", run=run)
    assert source.path == copied.path and source.uid != copied.uid
    return run, source, copied


def test_exports_keep_artifacts_that_share_stored_bytes_apart(
    instance: Instance, tmp_path: Path
) -> None:
    run, source, copied = _copy_step(instance, tmp_path)
    get_exporter("rocrate").export(run, tmp_path / "crate")
    _, graph = read_crate(tmp_path / "crate")
    (action,) = [e for e in graph.values() if e["@type"] == "CreateAction"]
    (used,), (made,) = ids(action["object"]), ids(action["result"])
    assert used != made
    assert {graph[used]["identifier"], graph[made]["identifier"]} == {source.uid, copied.uid}
    assert made.split("#")[0] == used.split("#")[0] == Path(source.path).as_uri()
    (path,) = get_exporter("openlineage").export(run, tmp_path / "ol")
    start, complete = read_events(path)
    assert [d["name"] for d in start["inputs"]] == ["in/a.csv"]
    assert [d["name"] for d in complete["outputs"]] == ["out/a-copy.csv"]
    prov = json.loads(get_exporter("prov").export(run, tmp_path / "prov")[0].read_text())
    (derived,) = prov["wasDerivedFrom"].values()
    assert derived["prov:generatedEntity"] == f"artifact:{copied.uid}"
    assert derived["prov:usedEntity"] == f"artifact:{source.uid}"


def test_exports_name_s3_artifacts_by_url(s3_instance: Instance, tmp_path: Path) -> None:
    run, source, copied = _copy_step(s3_instance, tmp_path)
    root = s3_instance.storage.root
    assert root.startswith("s3://")
    bucket, prefix = root[len("s3://") :].split("/", 1)
    (path,) = get_exporter("openlineage").export(run, tmp_path / "ol")
    _, complete = read_events(path)
    (output,) = complete["outputs"]
    assert (output["namespace"], output["name"]) == (root, "out/a-copy.csv")
    (location,) = output["facets"]["symlinks"]["identifiers"]
    assert location["namespace"] == f"s3://{bucket}"
    assert location["name"] == f"{prefix}/{copied.store_key}"
    get_exporter("rocrate").export(run, tmp_path / "crate")
    _, graph = read_crate(tmp_path / "crate")
    assert graph[source.path]["identifier"] == source.uid  # the copy: same URL + #lakeline-<uid>
    assert graph[f"{copied.path}#lakeline-{copied.uid}"]["identifier"] == copied.uid
    prov = json.loads(get_exporter("prov").export(run, tmp_path / "prov")[0].read_text())
    assert prov["entity"][f"artifact:{source.uid}"]["prov:location"] == source.path


def test_exports_include_references(
    instance: Instance, tmp_path: Path, ol_schemas: OpenLineageSchemas
) -> None:
    """A step that read a warehouse table and wrote a file lakeline holds no bytes for."""
    b = Builder(instance, tmp_path)
    load = b.transform("load_words", "script", source_code="copy words")
    run = b.run(load, None, 0, 1, status="completed")
    table = ll.Artifact.reference("postgres://warehouse/public/words", key="tables/words").save()
    b.use(run, table, "input", 0.5)
    out = ll.Artifact.reference(
        tmp_path / "gone" / "words.csv", hash="9" * 64, hash_type="sha256", size=10, run=run
    ).save()
    (path,) = get_exporter("openlineage").export(run, tmp_path / "ol")
    events = read_events(path)
    assert sum(ol_schemas.validate(e) for e in events) > 0
    start, complete = events
    (used,) = start["inputs"]
    assert (used["namespace"], used["name"]) == ("postgres://", "tables/words")
    (made,) = complete["outputs"]
    assert made["facets"]["lakeline"]["available"] is False
    (location,) = made["facets"]["symlinks"]["identifiers"]
    assert location == {"namespace": "file", "name": out.location, "type": "LOCATION"}
    prov_path = get_exporter("prov").export(run, tmp_path / "prov")[0]
    read_prov(prov_path)  # reads back without a warning
    entities = json.loads(prov_path.read_text())["entity"]
    assert entities[f"artifact:{table.uid}"]["prov:location"] == table.location
    assert entities[f"artifact:{out.uid}"]["lakeline:available"] is False
    assert "lakeline:size" in entities[f"artifact:{out.uid}"]
    get_exporter("rocrate").export(run, tmp_path / "crate")
    _, graph = read_crate(tmp_path / "crate")
    assert graph["postgres://warehouse/public/words"]["identifier"] == table.uid
    assert graph[Path(out.location).as_uri()]["lakeline:available"] is False
    cache = tmp_path / "roc-cache"
    assert roc_validate(tmp_path / "crate", "process-run-crate", "REQUIRED", cache) == []


# -- the environment is not an input ------------------------------------------------------------


def test_environment_is_not_an_input_of_tracked_runs(
    instance: Instance, tmp_path: Path, ol_schemas: OpenLineageSchemas
) -> None:
    """A tracked script and its `@tracked` step: the Python environment each run records is
    named as the run's environment in every format, never as data the run used."""
    import os
    import subprocess
    import sys
    import textwrap

    ll.Artifact({"a": 1}, key="raw/in.json").save()
    script = _write(
        tmp_path / "job" / "env_job.py",
        textwrap.dedent(
            """
            import lakeline as ll

            @ll.tracked()
            def step(x: int) -> None:
                data = ll.Artifact.get(key="raw/in.json").load()
                ll.Artifact({**data, "x": x}, key="out/step.json").save()

            ll.track()
            step(1)
            ll.finish()
            """
        ),
    )
    env = {**os.environ, "LAKELINE_INSTANCE": instance.name}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    run = ll.Run.get(transform__kind="script")
    (child,) = run.children.all()
    assert run.environment_id is not None and child.environment_id == run.environment_id
    environment = ll.Artifact.get(id=run.environment_id)
    data = ll.Artifact.get(key="raw/in.json")

    (path,) = get_exporter("openlineage").export(run, tmp_path / "ol")
    events = read_events(path)
    assert sum(ol_schemas.validate(e) for e in events) > 0
    for event in events:
        used = {d["facets"]["lakeline"]["uid"] for d in event["inputs"]}
        assert environment.uid not in used
        lakeline_facet = event["run"]["facets"]["lakeline"]
        assert lakeline_facet["environment"]["uid"] == environment.uid
        if event["run"]["runId"] == run_id(child.uid):
            assert used == {data.uid}
    assert {e["eventType"] for e in events} == {"START", "COMPLETE"} and len(events) == 4

    prov_path = get_exporter("prov").export(run, tmp_path / "prov")[0]
    read_prov(prov_path)
    doc = json.loads(prov_path.read_text())
    entity = f"artifact:{environment.uid}"
    assert entity in doc["entity"]
    used_entities = {u["prov:entity"] for u in doc.get("used", {}).values()}
    assert used_entities == {f"artifact:{data.uid}"}
    derived = {d["prov:usedEntity"] for d in doc.get("wasDerivedFrom", {}).values()}
    assert entity not in derived
    for uid in (run.uid, child.uid):
        assert doc["activity"][f"run:{uid}"]["lakeline:environment"] == {
            "$": entity,
            "type": "prov:QUALIFIED_NAME",
        }

    get_exporter("rocrate").export(run, tmp_path / "crate")
    _, graph = read_crate(tmp_path / "crate")
    (env_id,) = [i for i, e in graph.items() if e.get("identifier") == environment.uid]
    for action in (e for e in graph.values() if e["@type"] == "CreateAction"):
        assert env_id not in ids(action.get("object", []))
        assert ids(action["lakeline:environment"]) == [env_id]
    assert env_id in ids(graph["./"]["hasPart"])
    cache = tmp_path / "roc-cache"
    assert roc_validate(tmp_path / "crate", "process-run-crate", "REQUIRED", cache) == []
