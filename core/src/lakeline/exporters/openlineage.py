"""OpenLineage RunEvents (spec 2-0-2) for a run and everything inside it.

Mapping:

- Run -> `run.runId`: a UUIDv5 of the lakeline uid (stable: exporting twice, or emitting live
  and exporting later, gives the same id). One START event (at `started_at`) and, once the run
  is over, one COMPLETE (completed, cached), FAIL (errored) or ABORT (aborted) event at its end.
  A run that never started (scheduled) has no event.
- Transform -> `job`: namespace = the instance name, name = the transform key; facets
  `jobType` (BATCH, integration = engine, jobType = transform kind), `sourceCode`,
  `sourceCodeLocation` (when the reference is a URL), `documentation`, `ownership`.
- Parent run -> `parent` run facet (with `root`: the top-level run) for child runs.
- Params -> `executionParameters`; scheduled time -> `nominalTime`; errors -> `errorMessage`;
  lakeline's own fields (uid, status, engine ids, host, exit code, cached_from, and the
  environment artifact as `environment` {uid, location, hash}) -> `lakeline`. The environment
  is what the run ran in, not data it read: it is never an input dataset.
- Artifacts -> datasets: namespace = the storage root as a URI (`s3://bucket/prefix`,
  `file:///data/lake`), name = the artifact key, so that the versions of a key are versions of
  one dataset (`version` facet = the artifact uid). The physical location, named as
  OpenLineage's naming spec asks (`s3://bucket` + object key; `file` + absolute path), is a
  `symlinks` identifier of type LOCATION. Other facets: `datasetType`, `documentation`,
  `dataSource`, `lakeline` (uid, key, hash, role); outputs carry `outputStatistics`, inputs
  `inputStatistics`.
  Inputs are listed on every event of a run, outputs on its final event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lakeline.exporters.tree import RunTree, finished_at, is_folder, iso, language_of, producer
from lakeline.lineage.exporters import Exporter

if TYPE_CHECKING:
    from lakeline.models import Artifact, Run

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
FACETS = "https://openlineage.io/spec/facets"
LAKELINE_FACETS = "https://lakeline.dev/spec/facets/1-0-0"
RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://lakeline.dev/ns#Run")
FILENAME = "openlineage.jsonl"
FINAL_EVENTS = {
    "completed": "COMPLETE",
    "cached": "COMPLETE",
    "errored": "FAIL",
    "aborted": "ABORT",
}

# facet name -> (schema file version, schema definition name)
_STANDARD = {
    "parent": ("1-2-0", "ParentRunFacet"),
    "nominalTime": ("1-0-1", "NominalTimeRunFacet"),
    "errorMessage": ("1-0-1", "ErrorMessageRunFacet"),
    "executionParameters": ("1-0-0", "ExecutionParametersRunFacet"),
    "jobType": ("2-0-4", "JobTypeJobFacet"),
    "sourceCode": ("1-0-1", "SourceCodeJobFacet"),
    "sourceCodeLocation": ("1-1-0", "SourceCodeLocationJobFacet"),
    "documentation": ("1-1-0", "DocumentationJobFacet"),
    "ownership": ("1-0-1", "OwnershipJobFacet"),
    "version": ("1-0-1", "DatasetVersionDatasetFacet"),
    "datasetType": ("1-0-1", "DatasetTypeDatasetFacet"),
    "dataSource": ("1-0-1", "DatasourceDatasetFacet"),
    "symlinks": ("1-0-1", "SymlinksDatasetFacet"),
    "outputStatistics": ("1-0-2", "OutputStatisticsOutputDatasetFacet"),
    "inputStatistics": ("1-0-0", "InputStatisticsInputDatasetFacet"),
}
_DATASET_DOCS = ("1-1-0", "DocumentationDatasetFacet")


def run_id(uid: str) -> str:
    """The OpenLineage runId of the lakeline run `uid` (a stable UUIDv5)."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, uid))


def _facet(name: str, fields: dict[str, Any], schema: tuple[str, str] | None = None) -> Any:
    version, definition = schema or _STANDARD[name]
    url = f"{FACETS}/{version}/{definition}.json#/$defs/{definition}"
    return {"_producer": producer(), "_schemaURL": url, **fields}


def _lakeline_facet(definition: str, fields: dict[str, Any]) -> dict[str, Any]:
    url = f"{LAKELINE_FACETS}/{definition}.json#/$defs/{definition}"
    clean = {k: v for k, v in fields.items() if v is not None}
    return {"_producer": producer(), "_schemaURL": url, **clean}


def dataset_name(location: str) -> tuple[str, str]:
    """OpenLineage (namespace, name) of a storage location, per the naming spec."""
    if "://" not in location:
        return "file", location
    parts = urlsplit(location)
    if parts.scheme == "file":
        return "file", parts.path
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def _dataset(tree: RunTree, artifact: Artifact, role: str | None = None) -> dict[str, Any]:
    storage = tree.storages[artifact.storage_id]
    location_namespace, location_name = dataset_name(tree.url(artifact))
    facets: dict[str, Any] = {
        "version": _facet("version", {"datasetVersion": artifact.uid}),
        "datasetType": _facet(
            "datasetType",
            {"datasetType": "FILE", "subType": "DIRECTORY" if is_folder(artifact) else "FILE"},
        ),
        "dataSource": _facet(
            "dataSource", {"name": storage.root, "uri": _source_uri(storage.root)}
        ),
        "symlinks": _facet(
            "symlinks",
            {
                "identifiers": [
                    {"namespace": location_namespace, "name": location_name, "type": "LOCATION"}
                ]
            },
        ),
    }
    if artifact.description:
        facets["documentation"] = _facet(
            "documentation", {"description": artifact.description}, _DATASET_DOCS
        )
    facets["lakeline"] = _lakeline_facet(
        "LakelineDatasetFacet",
        {
            "uid": artifact.uid,
            "key": artifact.key,
            "hash": artifact.hash,
            "hashType": artifact.hash_type,
            "size": artifact.size,
            "suffix": artifact.suffix or None,
            "role": role or None,
            "available": False if artifact.available is False else None,
        },
    )
    return {
        "namespace": _source_uri(storage.root),
        "name": artifact.key or artifact.store_key,
        "facets": facets,
    }


def _source_uri(root: str) -> str:
    return root if "://" in root else Path(root).as_uri()


def _statistics(artifact: Artifact) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    if artifact.size is not None:
        stats["size"] = artifact.size
    if artifact.n_files is not None:
        stats["fileCount"] = artifact.n_files
    if artifact.n_observations is not None:
        stats["rowCount"] = artifact.n_observations
    return stats


def _job(tree: RunTree, run: Run) -> dict[str, Any]:
    transform = tree.transform(run)
    facets: dict[str, Any] = {
        "jobType": _facet(
            "jobType",
            {
                "processingType": "BATCH",
                "integration": (run.engine or "lakeline").upper(),
                "jobType": transform.kind.upper(),
            },
        )
    }
    language = language_of(transform.key, run.engine)
    if transform.source_code:
        facets["sourceCode"] = _facet(
            "sourceCode", {"language": language or "unknown", "sourceCode": transform.source_code}
        )
    if transform.reference and urlsplit(transform.reference).scheme in ("http", "https"):
        facets["sourceCodeLocation"] = _facet(
            "sourceCodeLocation",
            {"type": transform.reference_type or "url", "url": transform.reference},
        )
    if transform.description:
        facets["documentation"] = _facet("documentation", {"description": transform.description})
    owner = tree.user(transform.created_by_id)
    if owner is not None:
        facets["ownership"] = _facet("ownership", {"owners": [{"name": f"user:{owner.handle}"}]})
    return {"namespace": tree.instance_name, "name": transform.key, "facets": facets}


def _job_ref(tree: RunTree, run: Run) -> dict[str, str]:
    return {"namespace": tree.instance_name, "name": tree.transform(run).key}


def _run(tree: RunTree, run: Run, final: bool) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    parent = tree.run(run.parent_id) if run.parent_id else None
    if parent is not None and parent.transform_id in tree.transforms:
        top = tree.top()
        fields: dict[str, Any] = {
            "run": {"runId": run_id(parent.uid)},
            "job": _job_ref(tree, parent),
        }
        if top.transform_id in tree.transforms:
            fields["root"] = {"run": {"runId": run_id(top.uid)}, "job": _job_ref(tree, top)}
        facets["parent"] = _facet("parent", fields)
    if run.scheduled_at is not None:
        facets["nominalTime"] = _facet("nominalTime", {"nominalStartTime": iso(run.scheduled_at)})
    if run.params:
        facets["executionParameters"] = _facet(
            "executionParameters",
            {"parameters": [{"key": str(k), "value": _text(v)} for k, v in run.params.items()]},
        )
    if final and run.status == "errored":
        transform = tree.transform(run)
        language = language_of(transform.key, run.engine) or "unknown"
        facets["errorMessage"] = _facet(
            "errorMessage",
            {"message": run.error or "the run failed", "programmingLanguage": language.upper()},
        )
    cached = tree.run(run.cached_from_id) if run.cached_from_id else None
    environment = tree.environment(run)
    facets["lakeline"] = _lakeline_facet(
        "LakelineRunFacet",
        {
            "uid": run.uid,
            "status": run.status,
            "engine": run.engine,
            "engineRef": run.engine_ref,
            "host": run.host,
            "exitCode": run.exit_code,
            "cachedFrom": cached.uid if cached else None,
            "cachedFromRunId": run_id(cached.uid) if cached else None,
            "environment": None if environment is None else _environment(tree, environment),
        },
    )
    return {"runId": run_id(run.uid), "facets": facets}


def _environment(tree: RunTree, artifact: Artifact) -> dict[str, Any]:
    """The run's Python environment: what it ran in, not a dataset it read."""
    return {"uid": artifact.uid, "location": tree.url(artifact), "hash": artifact.hash}


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _inputs(tree: RunTree, run: Run) -> list[dict[str, Any]]:
    datasets = []
    for artifact, link in tree.used(run):
        dataset = _dataset(tree, artifact, link.role)
        stats = _statistics(artifact)
        if stats:
            dataset["inputFacets"] = {"inputStatistics": _facet("inputStatistics", stats)}
        datasets.append(dataset)
    return datasets


def _outputs(tree: RunTree, run: Run) -> list[dict[str, Any]]:
    produced = list(tree.produced(run))
    report = tree.report(run)
    if report is not None and all(a.id != report.id for a in produced):
        produced.append(report)
    datasets = []
    for artifact in produced:
        dataset = _dataset(tree, artifact)
        stats = _statistics(artifact)
        if stats:
            dataset["outputFacets"] = {"outputStatistics": _facet("outputStatistics", stats)}
        datasets.append(dataset)
    return datasets


def event(tree: RunTree, run: Run, event_type: str) -> dict[str, Any]:
    """One RunEvent of `run` (START, RUNNING, COMPLETE, FAIL, ABORT)."""
    final = event_type in ("COMPLETE", "FAIL", "ABORT")
    if final:
        moment = finished_at(run) or run.started_at or run.created_at
    else:
        moment = run.started_at or run.scheduled_at or run.created_at
    return {
        "eventType": event_type,
        "eventTime": iso(moment),
        "run": _run(tree, run, final),
        "job": _job(tree, run),
        "inputs": _inputs(tree, run),
        "outputs": _outputs(tree, run) if final else [],
        "producer": producer(),
        "schemaURL": f"{SPEC}#/$defs/RunEvent",
    }


def final_event_type(run: Run) -> str | None:
    """COMPLETE, FAIL or ABORT for a finished run, None while it is scheduled or started."""
    return FINAL_EVENTS.get(run.status)


def events(tree: RunTree) -> list[dict[str, Any]]:
    """Every event of every run in `tree`, in time order (a run's start before its end)."""
    found: list[tuple[datetime, int, int, dict[str, Any]]] = []
    for order, run in enumerate(tree.runs):
        if run.status == "scheduled" and run.started_at is None:
            continue
        start = run.started_at or run.scheduled_at or run.created_at
        found.append((start, 0, order, event(tree, run, "START")))
        final = final_event_type(run)
        if final is not None:
            end = finished_at(run) or start
            found.append((max(end, start), 1, -order, event(tree, run, final)))
    found.sort(key=lambda item: item[:3])
    return [item[3] for item in found]


def export(run: Run, out_dir: Path) -> list[Path]:
    """Write `openlineage.jsonl` (one RunEvent per line) for `run` and what it contains."""
    import json

    from lakeline.exporters.tree import load_tree, write_atomic

    lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events(load_tree(run)))
    return [write_atomic(Path(out_dir) / FILENAME, lines)]


EXPORTER = Exporter(
    name="openlineage",
    description="OpenLineage RunEvents (JSON lines): START and COMPLETE/FAIL/ABORT per run",
    export=export,
)
