"""W3C PROV-JSON export of a run and everything inside it.

Mapping (identifiers are `urn:lakeline:<kind>:<uid>` URNs, lakeline's own terms live in
`https://lakeline.dev/ns#`, prefix `lakeline`):

- Run -> `prov:Activity` (`run:<uid>`): startTime/endTime, `prov:type` = `lakeline:<kind>`
  of its transform (plus `lakeline:Run`), status, engine, host, exit code, error, and params
  (all of them as one JSON string `lakeline:params`, scalars also as `param:<name>`).
- Transform -> `prov:Entity` typed `prov:Plan` (`transform:<uid>`); a step's transform points
  to its pipeline with `lakeline:partOf`.
- User -> `prov:Agent` typed `prov:Person` (`user:<uid>`).
- `wasAssociatedWith(run, user, plan=transform)`: who ran it and which code it followed.
- Artifact -> `prov:Entity` (`artifact:<uid>`): `prov:location` (storage URL), key, size,
  hash and hash type, suffix, version; `wasAttributedTo` its creator.
- RunInput -> `used(run, artifact, time=used_at, prov:role=role)`. A run's Python environment
  is an entity the activity names with `lakeline:environment`: what it ran in, not data it
  used (so no `used`, and no output `wasDerivedFrom` it).
- Artifact.run -> `wasGeneratedBy(artifact, run, time=created_at)`.
- Within each run, every output `wasDerivedFrom` every input, with `prov:activity` = the run.
- Child run -> `wasStartedBy(child, trigger=-, starter=parent run, time=child start)`: PROV-DM's
  "starter" is the activity that started another one, which is what a workflow run does to
  its step runs (`wasInformedBy` would claim an entity passed between them, which is only
  true through `used`/`wasGeneratedBy` and is already explicit there).
- A cached run points to the run that really produced its outputs with `lakeline:cachedFrom`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.exporters.tree import NS, RunTree, finished_at, is_folder, iso
from lakeline.lineage.exporters import Exporter

if TYPE_CHECKING:
    from lakeline.models import Artifact, Run, Transform, User

PREFIXES = {
    "lakeline": NS,
    "param": "https://lakeline.dev/ns/param#",
    "run": "urn:lakeline:run:",
    "transform": "urn:lakeline:transform:",
    "artifact": "urn:lakeline:artifact:",
    "user": "urn:lakeline:user:",
}
FILENAME = "prov.json"
_LOCAL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _qname(value: str) -> dict[str, str]:
    return {"$": value, "type": "prov:QUALIFIED_NAME"}


def _literal(value: Any) -> Any:
    """A PROV-JSON attribute value: strings and booleans as they are, numbers typed."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"$": str(value), "type": "xsd:long"}
    if isinstance(value, float):
        return {"$": repr(value), "type": "xsd:double"}
    return json.dumps(value, sort_keys=True)


def _time(value: Any) -> dict[str, str]:
    return {"$": value, "type": "xsd:dateTime"}


class _Document:
    """A PROV-JSON document under construction; relation ids are generated in order."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {"prefix": dict(PREFIXES)}
        self._counter = 0

    def node(self, kind: str, ident: str, attributes: dict[str, Any]) -> None:
        clean = {k: v for k, v in attributes.items() if v is not None and v != []}
        self.doc.setdefault(kind, {})[ident] = clean

    def relation(self, kind: str, attributes: dict[str, Any]) -> None:
        self._counter += 1
        clean = {k: v for k, v in attributes.items() if v is not None}
        self.doc.setdefault(kind, {})[f"_:{kind}{self._counter}"] = clean


def _user(doc: _Document, user: User | None) -> str | None:
    if user is None:
        return None
    ident = f"user:{user.uid}"
    doc.node(
        "agent",
        ident,
        {
            "prov:type": _qname("prov:Person"),
            "prov:label": user.name or user.handle,
            "lakeline:handle": user.handle,
        },
    )
    return ident


def _transform(doc: _Document, tree: RunTree, transform: Transform) -> str:
    ident = f"transform:{transform.uid}"
    parent = tree.transforms.get(transform.parent_id) if transform.parent_id else None
    doc.node(
        "entity",
        ident,
        {
            "prov:type": [_qname("prov:Plan"), _qname("lakeline:Transform")],
            "prov:label": transform.key,
            "lakeline:key": transform.key,
            "lakeline:kind": transform.kind,
            "lakeline:version": transform.version,
            "lakeline:description": transform.description,
            "lakeline:hash": transform.hash,
            "lakeline:reference": transform.reference,
            "lakeline:referenceType": transform.reference_type,
            "lakeline:partOf": _qname(f"transform:{parent.uid}") if parent else None,
        },
    )
    return ident


def _artifact(doc: _Document, tree: RunTree, artifact: Artifact) -> str:
    ident = f"artifact:{artifact.uid}"
    if ident in doc.doc.get("entity", {}):
        return ident
    doc.node(
        "entity",
        ident,
        {
            "prov:type": _qname("lakeline:Folder" if is_folder(artifact) else "lakeline:File"),
            "prov:label": artifact.key or artifact.uid,
            "prov:location": tree.url(artifact),
            "lakeline:key": artifact.key,
            "lakeline:description": artifact.description,
            "lakeline:suffix": artifact.suffix or None,
            "lakeline:size": None if artifact.size is None else _literal(artifact.size),
            "lakeline:hash": artifact.hash,
            "lakeline:hashType": artifact.hash_type,
            "lakeline:nFiles": None if artifact.n_files is None else _literal(artifact.n_files),
            "lakeline:version": artifact.version,
            "lakeline:stem": artifact.stem,
            "lakeline:otype": artifact.otype,
            "lakeline:createdAt": _time(iso(artifact.created_at)),
            # a reference: the data is at prov:location, lakeline holds no bytes for it
            "lakeline:available": False if artifact.available is False else None,
        },
    )
    creator = _user(doc, tree.user(artifact.created_by_id))
    if creator is not None:
        doc.relation("wasAttributedTo", {"prov:entity": ident, "prov:agent": creator})
    return ident


def _params(params: dict[str, Any] | None) -> dict[str, Any]:
    if not params:
        return {}
    attributes: dict[str, Any] = {"lakeline:params": json.dumps(params, sort_keys=True)}
    for name, value in params.items():
        scalar = isinstance(value, str | int | float | bool)
        if scalar and _LOCAL_NAME.match(name):
            attributes[f"param:{name}"] = _literal(value)
    return attributes


def _activity(doc: _Document, tree: RunTree, run: Run) -> str:
    ident = f"run:{run.uid}"
    transform = tree.transform(run)
    cached = tree.run(run.cached_from_id) if run.cached_from_id else None
    environment = tree.environment(run)
    attributes: dict[str, Any] = {
        "prov:startTime": iso(run.started_at),
        "prov:endTime": iso(finished_at(run)),
        "prov:type": [_qname(f"lakeline:{transform.kind}"), _qname("lakeline:Run")],
        "prov:label": f"{transform.kind} {transform.key}",
        "lakeline:status": run.status,
        "lakeline:engine": run.engine,
        "lakeline:engineRef": run.engine_ref,
        "lakeline:host": run.host,
        "lakeline:exitCode": None if run.exit_code is None else _literal(run.exit_code),
        "lakeline:error": run.error,
        "lakeline:scheduledAt": _time(iso(run.scheduled_at)) if run.scheduled_at else None,
        "lakeline:cachedFrom": _qname(f"run:{cached.uid}") if cached else None,
        # what the run ran in (an entity of its own), not data it used
        "lakeline:environment": _qname(_artifact(doc, tree, environment)) if environment else None,
        **_params(run.params),
    }
    doc.node("activity", ident, attributes)
    return ident


def build(tree: RunTree) -> dict[str, Any]:
    """The PROV-JSON document (a dict) of `tree`."""
    doc = _Document()
    plans = {t.id: _transform(doc, tree, t) for t in tree.transforms.values()}
    activities = {run.id: _activity(doc, tree, run) for run in tree.runs}
    for run in tree.runs:
        ident = activities[run.id]
        agent = _user(doc, tree.user(run.created_by_id))
        doc.relation(
            "wasAssociatedWith",
            {"prov:activity": ident, "prov:agent": agent, "prov:plan": plans[run.transform_id]},
        )
        if run.parent_id is not None:
            parent = tree.run(run.parent_id)
            if parent is not None:
                if parent.id not in activities:  # the root's parent: named, not described
                    activities[parent.id] = f"run:{parent.uid}"
                    doc.node(
                        "activity", activities[parent.id], {"prov:type": _qname("lakeline:Run")}
                    )
                doc.relation(
                    "wasStartedBy",
                    {
                        "prov:activity": ident,
                        "prov:starter": activities[parent.id],
                        "prov:time": iso(run.started_at),
                    },
                )
        used: list[str] = []
        for artifact, link in tree.used(run):
            entity = _artifact(doc, tree, artifact)
            used.append(entity)
            doc.relation(
                "used",
                {
                    "prov:activity": ident,
                    "prov:entity": entity,
                    "prov:time": iso(link.used_at),
                    "prov:role": link.role or None,
                },
            )
        for artifact in tree.produced(run):
            entity = _artifact(doc, tree, artifact)
            doc.relation(
                "wasGeneratedBy",
                {
                    "prov:entity": entity,
                    "prov:activity": ident,
                    "prov:time": iso(artifact.created_at),
                },
            )
            for source in used:
                if source != entity:
                    doc.relation(
                        "wasDerivedFrom",
                        {
                            "prov:generatedEntity": entity,
                            "prov:usedEntity": source,
                            "prov:activity": ident,
                        },
                    )
        report = tree.report(run)
        if report is not None and report.run_id != run.id:
            doc.relation(
                "wasGeneratedBy",
                {
                    "prov:entity": _artifact(doc, tree, report),
                    "prov:activity": ident,
                    "prov:role": "report",
                },
            )
    return doc.doc


def export(run: Run, out_dir: Path) -> list[Path]:
    """Write `prov.json` (PROV-JSON) for `run` and everything inside it into `out_dir`."""
    from lakeline.exporters.tree import dumps, load_tree, write_atomic

    document = build(load_tree(run))
    return [write_atomic(Path(out_dir) / FILENAME, dumps(document))]


EXPORTER = Exporter(
    name="prov",
    description="W3C PROV-JSON: runs as activities, artifacts as entities, transforms as plans",
    export=export,
)
