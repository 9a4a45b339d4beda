"""RO-Crate 1.1 export: a Workflow Run Crate (profile 0.5) of a workflow run, else a Process
Run Crate of a single run.

The crate folder holds `ro-crate-metadata.json`, a `README.md` and, when the pipeline's source
was recorded, the main workflow file. Artifacts are not copied: each is a web-based data entity
whose `@id` is its storage URL (`s3://...`, or `file:///...` for local storage).

Mapping:

- the workflow run's pipeline Transform -> the main workflow (`File`, `SoftwareSourceCode`,
  `ComputationalWorkflow`; `mainEntity` of the root Dataset), with its `programmingLanguage`;
  a run of anything else -> `SoftwareSourceCode` (Process Run Crate);
- step Transforms -> `SoftwareApplication` tools, `hasPart` of the main workflow;
- every Run -> a `CreateAction` (`instrument` = its transform, `object` = what it used plus its
  parameters as `PropertyValue`s, `result` = what it produced, `agent` = its user,
  start/end times, `actionStatus`: completed/cached -> Completed, errored/aborted -> Failed
  (with `error`), started -> Active, scheduled -> Potential);
- inputs, outputs and parameters -> `FormalParameter`s of the transform (`input`/`output`),
  linked both ways with `workExample`/`exampleOfWork` as the Workflow Run Crate asks;
- artifacts -> `File` (folders: `Dataset`) with `contentSize`, `sha256`, `encodingFormat`;
- a run's Python environment -> a `File` the action names with `lakeline:environment` (not in
  its `object`: it is what the run ran in, not data it used);
- users -> `Person`; lakeline's own fields use the `lakeline:` prefix (`https://lakeline.dev/ns#`).

The license of a run's data is not recorded by lakeline: set `LAKELINE_ROCRATE_LICENSE` to a
license URL (e.g. an SPDX one) before publishing a crate; otherwise the crate says so.
"""

from __future__ import annotations

import mimetypes
import os
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from lakeline.exporters.tree import NS, RunTree, finished_at, is_folder, iso, language_of
from lakeline.ids import STEM_LENGTH, suffix_index
from lakeline.lineage.exporters import Exporter

if TYPE_CHECKING:
    from lakeline.models import Artifact, Run, Transform, User

CONTEXT: list[Any] = [
    "https://w3id.org/ro/crate/1.1/context",
    {"sha256": "https://w3id.org/ro/terms/workflow-run#sha256", "lakeline": NS},
]
RO_CRATE = "https://w3id.org/ro/crate/1.1"
PROCESS_RUN = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
BIOSCHEMAS_WORKFLOW = "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"
PROFILE_NAMES = {
    PROCESS_RUN: ("Process Run Crate", "0.5"),
    WORKFLOW_RUN: ("Workflow Run Crate", "0.5"),
    WORKFLOW_RO_CRATE: ("Workflow RO-Crate", "1.0"),
}
METADATA = "ro-crate-metadata.json"
README = "README.md"
SCHEMA = "http://schema.org/"
ACTION_STATUS = {
    "completed": "CompletedActionStatus",
    "cached": "CompletedActionStatus",
    "errored": "FailedActionStatus",
    "aborted": "FailedActionStatus",
    "started": "ActiveActionStatus",
    "scheduled": "PotentialActionStatus",
}
LANGUAGES = {  # language -> (@id, url)
    "Snakemake": (
        "https://w3id.org/workflowhub/workflow-ro-crate#snakemake",
        "https://snakemake.github.io/",
    ),
    "Nextflow": (
        "https://w3id.org/workflowhub/workflow-ro-crate#nextflow",
        "https://www.nextflow.io/",
    ),
    "CWL": ("https://w3id.org/workflowhub/workflow-ro-crate#cwl", "https://www.commonwl.org/"),
    "Python": ("#python", "https://www.python.org/"),
    "R": ("#r", "https://www.r-project.org/"),
}
MEDIA_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".md": "text/markdown",
    ".html": "text/html",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".parquet": "application/vnd.apache.parquet",
    ".h5ad": "application/x-hdf5",
    ".h5": "application/x-hdf5",
    ".hdf5": "application/x-hdf5",
    ".ipynb": "application/x-ipynb+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".gz": "application/gzip",
    ".vcf": "text/vcf",
    ".fasta": "text/x-fasta",
    ".fa": "text/x-fasta",
    ".py": "text/x-python",
}
_RESERVED = {METADATA, README, "ro-crate-preview.html", "ro-crate-metadata.jsonld"}


def encoding_format(suffix: str) -> str | None:
    """The media type of a file suffix, when it is known."""
    suffix = suffix.lower()
    if suffix in MEDIA_TYPES:
        return MEDIA_TYPES[suffix]
    return mimetypes.types_map.get(suffix)


def _ref(ident: str) -> dict[str, str]:
    return {"@id": ident}


def _refs(idents: list[str]) -> list[dict[str, str]]:
    return [_ref(i) for i in dict.fromkeys(idents)]


def _clean(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if v is not None and v != []}


def _frag(text: str) -> str:
    return quote(text, safe="")


def is_workflow(tree: RunTree) -> bool:
    """Whether the root run is a workflow run (a Workflow Run Crate) or a single process."""
    return len(tree.runs) > 1 or tree.transform(tree.root).kind in ("pipeline", "flow")


def _workflow_file_name(transform: Transform) -> str:
    name = PurePosixPath(transform.key).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "workflow"
    return f"workflow-{name}" if name in _RESERVED else name


class _Crate:
    """The crate's entities by @id, with helpers that add each kind once."""

    def __init__(self, tree: RunTree) -> None:
        self.tree = tree
        self.entities: dict[str, dict[str, Any]] = {}
        self.files: dict[str, str] = {}  # relative path -> text to write
        self.locations: dict[int, str] = {}  # artifact id -> @id
        self._seen: dict[tuple[str, str], set[str]] = {}  # (entity, key) -> referenced @ids

    def add(self, entity: dict[str, Any]) -> str:
        ident: str = entity["@id"]
        existing = self.entities.setdefault(ident, {})
        for key, value in _clean(entity).items():  # lists of references merge, values stay
            old = existing.get(key)
            if isinstance(value, list) and all(isinstance(v, dict) for v in value):
                merged = existing.setdefault(key, []) if old is None else old
                seen = self._seen.setdefault((ident, key), {r["@id"] for r in merged})
                for item in value:
                    if item["@id"] not in seen:
                        seen.add(item["@id"])
                        merged.append(item)
            elif old is None:
                existing[key] = value
        return ident

    # -- contextual entities ---------------------------------------------------------------------

    def person(self, user: User | None) -> str | None:
        if user is None:
            return None
        return self.add(
            {
                "@id": f"#user-{user.uid}",
                "@type": "Person",
                "name": user.name or user.handle,
                "identifier": user.handle,
            }
        )

    def language(self, name: str | None) -> str:
        name = name or "unknown"
        ident, url = LANGUAGES.get(name, (f"#{_frag(name.lower())}", None))
        return self.add({"@id": ident, "@type": "ComputerLanguage", "name": name, "url": url})

    def tool(self, transform: Transform, run: Run) -> str:
        """The instrument of a run: the main workflow, a step tool or a script."""
        tree = self.tree
        main = tree.transform(tree.root)
        common = {
            "name": transform.key,
            "description": transform.description,
            "version": transform.version or str(suffix_index(transform.uid[STEM_LENGTH:]) + 1),
            "identifier": transform.uid,
            "url": transform.reference if _is_url(transform.reference) else None,
            "lakeline:kind": transform.kind,
            "lakeline:hash": transform.hash,
        }
        if transform.id == main.id:
            workflow = is_workflow(tree)
            types = ["File", "SoftwareSourceCode"] + (["ComputationalWorkflow"] if workflow else [])
            if transform.source_code is not None:
                ident = _workflow_file_name(transform)
                self.files[ident] = transform.source_code
            else:
                ident = f"#transform-{transform.uid}"
                types.remove("File")
            language = language_of(transform.key, run.engine)
            media = encoding_format(PurePosixPath(ident).suffix) or "text/plain"
            return self.add(
                {
                    "@id": ident,
                    "@type": types,
                    **common,
                    "programmingLanguage": _ref(self.language(language)),
                    "conformsTo": _ref(BIOSCHEMAS_WORKFLOW) if workflow else None,
                    "encodingFormat": media if ident in self.files else None,
                }
            )
        ident = self.add(
            {"@id": f"#transform-{transform.uid}", "@type": "SoftwareApplication", **common}
        )
        main_ident = self.tool(main, tree.root)
        self.add({"@id": main_ident, "hasPart": [_ref(ident)]})
        return ident

    def parameter(self, transform_ident: str, direction: str, name: str, kind: str) -> str:
        ident = f"{transform_ident}-{direction}-{_frag(name)}"
        if not ident.startswith("#"):
            ident = "#" + ident
        self.add(
            {
                "@id": ident,
                "@type": "FormalParameter",
                "name": name,
                "additionalType": kind,
                "conformsTo": _ref("https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"),
                "workExample": [],
            }
        )
        key = "input" if direction in ("in", "param") else "output"
        self.add({"@id": transform_ident, key: [_ref(ident)]})
        return ident

    def link_example(self, parameter: str, example: str) -> None:
        self.add({"@id": parameter, "workExample": [_ref(example)]})
        self.add({"@id": example, "exampleOfWork": [_ref(parameter)]})

    # -- data entities ---------------------------------------------------------------------------

    def artifact(self, artifact: Artifact) -> str:
        tree = self.tree
        ident = self.locations.setdefault(artifact.id, tree.uri(artifact))
        if self.entities.get(ident, {}).get("identifier", artifact.uid) != artifact.uid:
            # another artifact shares these stored bytes (same content, other key)
            ident = self.locations[artifact.id] = f"{ident}#lakeline-{artifact.uid}"
        folder = is_folder(artifact)
        name = artifact.key or PurePosixPath(tree.url(artifact)).name
        return self.add(
            {
                "@id": ident,
                "@type": "Dataset" if folder else "File",
                "name": name,
                "description": artifact.description,
                "contentSize": None if artifact.size is None else str(artifact.size),
                "sha256": artifact.hash if artifact.hash_type == "sha256" else None,
                "encodingFormat": None
                if folder
                else encoding_format(artifact.suffix) or "application/octet-stream",
                "dateCreated": iso(artifact.created_at, millis=True),
                "version": artifact.version,
                "identifier": artifact.uid,
                "lakeline:key": artifact.key,
                "lakeline:hash": None if artifact.hash_type == "sha256" else artifact.hash,
                "lakeline:hashType": artifact.hash_type,
                "lakeline:nFiles": artifact.n_files,
                "lakeline:available": False if artifact.available is False else None,
            }
        )

    def action(self, run: Run) -> str:
        tree = self.tree
        transform = tree.transform(run)
        tool = self.tool(transform, run)
        objects: list[str] = []
        for artifact, link in tree.used(run):
            ident = self.artifact(artifact)
            objects.append(ident)
            role = link.role if link.role and link.role != "input" else _name(artifact)
            kind = "Dataset" if is_folder(artifact) else "File"
            self.link_example(self.parameter(tool, "in", role, kind), ident)
        for name, value in (run.params or {}).items():
            value_ident = self.add(
                {
                    "@id": f"#run-{run.uid}-param-{_frag(str(name))}",
                    "@type": "PropertyValue",
                    "name": str(name),
                    "value": _value(value),
                }
            )
            objects.append(value_ident)
            self.link_example(
                self.parameter(tool, "param", str(name), _datatype(value)), value_ident
            )
        environment = tree.environment(run)  # what the run ran in, not one of its inputs
        environment_ident = None if environment is None else self.artifact(environment)
        results: list[str] = []
        for artifact in tree.produced(run):
            ident = self.artifact(artifact)
            results.append(ident)
            kind = "Dataset" if is_folder(artifact) else "File"
            self.link_example(self.parameter(tool, "out", _name(artifact), kind), ident)
        report = tree.report(run)
        if report is not None:
            results.append(self.artifact(report))
        status = ACTION_STATUS.get(run.status, "PotentialActionStatus")
        failed = status == "FailedActionStatus"
        cached = tree.run(run.cached_from_id) if run.cached_from_id else None
        parent = tree.run(run.parent_id) if run.parent_id else None
        return self.add(
            {
                "@id": f"#run-{run.uid}",
                "@type": "CreateAction",
                "name": f"Run of {transform.kind} {transform.key}",
                "description": _describe(run, transform),
                "instrument": _ref(tool),
                "agent": _maybe_ref(self.person(tree.user(run.created_by_id))),
                "startTime": iso(run.started_at, millis=True),
                "endTime": iso(finished_at(run), millis=True),
                "actionStatus": SCHEMA + status,
                "error": (run.error or f"the run was {run.status}") if failed else None,
                "object": _refs(objects),
                "result": _refs(results),
                "identifier": run.uid,
                "lakeline:status": run.status,
                "lakeline:engine": run.engine,
                "lakeline:engineRef": run.engine_ref,
                "lakeline:host": run.host,
                "lakeline:exitCode": run.exit_code,
                "lakeline:parentRun": _parent_ref(tree, parent),
                "lakeline:cachedFrom": cached.uid if cached else None,
                "lakeline:environment": _maybe_ref(environment_ident),
            }
        )


def _is_url(value: str | None) -> bool:
    return bool(value) and urlsplit(value or "").scheme in ("http", "https")


def _parent_ref(tree: RunTree, parent: Run | None) -> Any:
    if parent is None:
        return None
    return _ref(f"#run-{parent.uid}") if parent.id in tree.run_ids else parent.uid


def _maybe_ref(ident: str | None) -> dict[str, str] | None:
    return None if ident is None else _ref(ident)


def _single(value: Any) -> Any:
    """RO-Crate 1.1 prefers a single value to a one-element array."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _name(artifact: Artifact) -> str:
    return artifact.key or artifact.uid


def _value(value: Any) -> Any:
    import json

    if isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True)


def _datatype(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    return "Text"


def _describe(run: Run, transform: Transform) -> str:
    text = f"{transform.kind} {transform.key} (lakeline run {run.uid}): {run.status}"
    if run.engine:
        text += f", run by {run.engine}" + (f" as {run.engine_ref}" if run.engine_ref else "")
    return text


def _license() -> tuple[dict[str, str], dict[str, Any]]:
    chosen = os.environ.get("LAKELINE_ROCRATE_LICENSE", "").strip()
    if chosen:
        return _ref(chosen), {"@id": chosen, "@type": "CreativeWork", "name": chosen}
    return _ref("#license"), {
        "@id": "#license",
        "@type": "CreativeWork",
        "name": "No license recorded",
        "description": "lakeline records no license for this run's data: "
        "set LAKELINE_ROCRATE_LICENSE to a license URL before publishing this crate",
    }


def build(tree: RunTree) -> tuple[dict[str, Any], dict[str, str]]:
    """The crate's metadata (JSON-LD) and the extra files to write beside it."""
    crate = _Crate(tree)
    actions = [crate.action(run) for run in tree.runs]
    root_transform = tree.transform(tree.root)
    main = crate.tool(root_transform, tree.root)
    workflow = is_workflow(tree)
    profiles = [PROCESS_RUN, WORKFLOW_RUN, WORKFLOW_RO_CRATE] if workflow else [PROCESS_RUN]
    license_ref, license_entity = _license()
    if workflow:  # the workflow's own inputs and outputs are those of the whole tree
        action = crate.entities[actions[0]]
        inputs, outputs = [], []
        for artifact in tree.tree_inputs():
            inputs.append(crate.artifact(artifact))
            kind = "Dataset" if is_folder(artifact) else "File"
            crate.link_example(crate.parameter(main, "in", _name(artifact), kind), inputs[-1])
        for artifact in tree.tree_outputs():
            outputs.append(crate.artifact(artifact))
            kind = "Dataset" if is_folder(artifact) else "File"
            crate.link_example(crate.parameter(main, "out", _name(artifact), kind), outputs[-1])
        action["object"] = _refs([*(r["@id"] for r in action.get("object", [])), *inputs])
        action["result"] = _refs([*(r["@id"] for r in action.get("result", [])), *outputs])
    data = [i for i, e in crate.entities.items() if e["@type"] in ("File", "Dataset")]
    if main in crate.files:
        data.insert(0, main)
    root = _clean(
        {
            "@id": "./",
            "@type": "Dataset",
            "name": f"{'Workflow' if workflow else 'Process'} run of {root_transform.key}",
            "description": _describe(tree.root, root_transform)
            + f"; exported from lakeline instance {tree.instance_name!r}",
            "datePublished": iso(datetime.now(UTC), millis=True),
            "license": license_ref,
            "conformsTo": _refs(profiles),
            "mainEntity": _ref(main) if workflow else None,
            "hasPart": _refs([*data, README]),
            "mentions": _refs(actions),
            "author": _maybe_ref(crate.person(tree.user(tree.root.created_by_id))),
            "identifier": tree.root.uid,
        }
    )
    descriptor = {
        "@id": METADATA,
        "@type": "CreativeWork",
        "about": _ref("./"),
        "conformsTo": _refs([RO_CRATE, WORKFLOW_RO_CRATE] if workflow else [RO_CRATE]),
    }
    readme = {
        "@id": README,
        "@type": "File",
        "name": "README",
        "about": _ref("./"),
        "encodingFormat": "text/markdown",
    }
    profile_entities = [
        {
            "@id": p,
            "@type": "CreativeWork",
            "name": PROFILE_NAMES[p][0],
            "version": PROFILE_NAMES[p][1],
        }
        for p in profiles
    ]
    entities = [
        descriptor,
        root,
        readme,
        *profile_entities,
        license_entity,
        *crate.entities.values(),
    ]
    graph = [{k: _single(v) for k, v in e.items()} for e in entities]
    files = {README: _readme(tree, workflow), **crate.files}
    return {"@context": CONTEXT, "@graph": graph}, files


def _readme(tree: RunTree, workflow: bool) -> str:
    transform = tree.transform(tree.root)
    lines = [
        f"# {'Workflow' if workflow else 'Process'} run of `{transform.key}`",
        "",
        f"Exported from the lakeline instance `{tree.instance_name}`: run `{tree.root.uid}`,"
        f" status **{tree.root.status}**, started {iso(tree.root.started_at) or '-'},"
        f" finished {iso(finished_at(tree.root)) or '-'}.",
        "",
        "The machine-readable description is `ro-crate-metadata.json` (RO-Crate 1.1). Data files"
        " are referenced by their storage location, not copied into this folder.",
        "",
        "| run | transform | status | inputs | outputs |",
        "|---|---|---|---|---|",
    ]
    for run in tree.runs:
        step = tree.transform(run)
        lines.append(
            f"| `{run.uid}` | {step.kind} `{step.key}` | {run.status} |"
            f" {len(tree.used(run))} | {len(tree.produced(run))} |"
        )
    return "\n".join(lines) + "\n"


def export(run: Run, out_dir: Path) -> list[Path]:
    """Write an RO-Crate (metadata, README, workflow source) for `run` into `out_dir`."""
    from lakeline.exporters.tree import dumps, load_tree, write_atomic

    metadata, files = build(load_tree(run))
    out = Path(out_dir)
    written = [write_atomic(out / name, text) for name, text in files.items()]
    written.append(write_atomic(out / METADATA, dumps(metadata)))  # last: the crate is complete
    return written


EXPORTER = Exporter(
    name="rocrate",
    description="RO-Crate 1.1 Workflow Run Crate (Process Run Crate for a single run)",
    export=export,
)
