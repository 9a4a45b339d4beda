"""nf-prov's Workflow Run RO-Crate (`ro-crate-metadata.json`, nf-prov >= 1.4).

Each task is a `CreateAction` `#task/<hash>` whose `object` lists inputs and `result` lists
outputs (`#task/<hash>/<relpath>`); an input produced by another task carries that task's
output id, which is the producer edge. `#publish/<hash>/<relpath>` actions link published
copies (crate-relative paths) to task outputs; `#<sessionId>` is the workflow run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeline_nextflow.values import FULL_HASH, UUID, iso_time, load_json, strip_uri

FAILED = "http://schema.org/FailedActionStatus"


@dataclass
class CrateTask:
    """A task `CreateAction`."""

    hash: str
    name: str | None
    process: str | None
    failed: bool
    error: str | None
    inputs: list[str] = field(default_factory=list)  # input @ids
    outputs: list[str] = field(default_factory=list)  # relpaths in the task work dir


@dataclass
class Crate:
    """What a Workflow Run RO-Crate says about one run."""

    path: Path
    session: str | None = None
    started: Any = None
    ended: Any = None
    pipeline: str | None = None
    version: str | None = None
    repository: str | None = None
    nextflow: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, CrateTask] = field(default_factory=dict)
    published: list[tuple[str, str, str]] = field(default_factory=list)  # hash, relpath, target


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(i["@id"]) for i in items if isinstance(i, dict) and "@id" in i]


def _types(entity: dict[str, Any]) -> set[str]:
    kind = entity.get("@type")
    return set(kind) if isinstance(kind, list) else {str(kind)}


def task_output(ident: str) -> tuple[str, str] | None:
    """`#task/<hash>/<relpath>` -> (hash, relpath)."""
    if not ident.startswith("#task/"):
        return None
    head, _, rest = ident[len("#task/") :].partition("/")
    return (head, rest) if FULL_HASH.match(head) and rest else None


def read_crate(path: Path, problems: list[str]) -> Crate:
    """The tasks, edges and published copies of a crate."""
    document = load_json(path.read_text(encoding="utf-8"), str(path))
    graph = document.get("@graph") if isinstance(document, dict) else None
    if not isinstance(graph, list):
        raise ValueError(f"{path}: not an RO-Crate (no `@graph` list)")
    crate = Crate(path=path)
    entities = {str(e["@id"]): e for e in graph if isinstance(e, dict) and "@id" in e}
    process_of: dict[str, str] = {}
    for ident, entity in entities.items():
        types = _types(entity)
        if "ControlAction" in types and ident.startswith("#process-control/"):
            for task in _ids(entity.get("object")):
                process_of[task] = ident[len("#process-control/") :]
        elif "ComputationalWorkflow" in types:
            crate.pipeline = entity.get("name")
            crate.version = entity.get("version")
            crate.repository = entity.get("codeRepository")
            crate.nextflow = entity.get("runtimePlatform")
        elif "PropertyValue" in types and ident.startswith("#param/") and "name" in entity:
            crate.params[str(entity["name"])] = entity.get("value")
        elif "CreateAction" in types and UUID.match(ident.lstrip("#")):
            crate.session = ident.lstrip("#")
            crate.started, crate.ended = entity.get("startTime"), entity.get("endTime")
    for ident, entity in entities.items():
        if "CreateAction" not in _types(entity):
            continue
        if ident.startswith("#task/"):
            digest = ident[len("#task/") :]
            if not FULL_HASH.match(digest):
                problems.append(f"{path}: task {ident}: not a full task hash: skipped")
                continue
            outputs = []
            for out in _ids(entity.get("result")):
                parsed = task_output(out)
                if parsed is None or parsed[0] != digest:
                    problems.append(f"{path}: task {ident}: output {out} is not its own: skipped")
                    continue
                outputs.append(parsed[1])
            crate.tasks[digest] = CrateTask(
                hash=digest,
                name=entity.get("name"),
                process=process_of.get(ident),
                failed=_ids(entity.get("actionStatus")) == [FAILED]
                or entity.get("actionStatus") == FAILED,
                error=entity.get("error"),
                inputs=[strip_uri(i) for i in _ids(entity.get("object"))],
                outputs=outputs,
            )
        elif ident.startswith("#publish/"):
            sources = [task_output(i) for i in _ids(entity.get("object"))]
            targets = _ids(entity.get("result"))
            if len(sources) != 1 or sources[0] is None or len(targets) != 1:
                problems.append(f"{path}: publish action {ident} is malformed: skipped")
                continue
            digest, relpath = sources[0]
            crate.published.append((digest, relpath, targets[0]))
    for stamp in ("started", "ended"):
        try:
            setattr(crate, stamp, iso_time(getattr(crate, stamp)))
        except ValueError:
            problems.append(f"{path}: unreadable {stamp} time: left unknown")
            setattr(crate, stamp, None)
    return crate
