"""Load a run and everything inside it (child runs, transforms, artifacts, users) in one go.

Every exporter works from a `RunTree`: plain detached records read in one session with a
handful of batched queries, so writing a document issues no further database traffic.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from lakeline.errors import LakelineError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.instance import Instance
    from lakeline.models import Artifact, Run, RunInput, Storage, Transform, User

NS = "https://lakeline.dev/ns#"
"""The namespace of lakeline's own terms in PROV and RO-Crate documents."""

_CHUNK = 500  # ids per IN (...) clause
T = TypeVar("T")


def chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    """Sorted ids in slices small enough for any database's parameter limit."""
    values = sorted(set(ids))
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


@dataclass
class RunTree:
    """A run, its descendants and ancestors, with every record the exports refer to."""

    root: Run
    runs: list[Run]  # root first, then descendants ordered by start time
    ancestors: list[Run]  # parent of the root first, up to the top-level run
    transforms: dict[int, Transform]
    artifacts: dict[int, Artifact]
    storages: dict[int, Storage]
    users: dict[int, User]
    inputs: dict[int, list[RunInput]]  # run id -> what it used
    outputs: dict[int, list[Artifact]]  # run id -> what it produced
    related_runs: dict[int, Run]  # runs outside the tree that records point to (cached_from)
    instance_name: str
    instance_uid: str
    run_ids: set[int] = field(default_factory=set)
    _by_id: dict[int, Run] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_ids = {r.id for r in self.runs}
        self._by_id = {r.id: r for r in (*self.related_runs.values(), *self.ancestors, *self.runs)}

    def run(self, run_id: int) -> Run | None:
        """A run of the tree, an ancestor or a related run, by id."""
        return self._by_id.get(run_id)

    def transform(self, run: Run) -> Transform:
        return self.transforms[run.transform_id]

    def user(self, user_id: int | None) -> User | None:
        return None if user_id is None else self.users.get(user_id)

    def top(self) -> Run:
        """The top-level run (the root itself unless it has ancestors)."""
        return self.ancestors[-1] if self.ancestors else self.root

    def url(self, artifact: Artifact) -> str:
        """Where the artifact's bytes live: an absolute local path or a storage URL."""
        from lakeline.storage.roots import join

        return join(self.storages[artifact.storage_id].root, artifact.store_key)

    def uri(self, artifact: Artifact) -> str:
        """The artifact's location as an absolute URI (`file:///...` for local paths)."""
        url = self.url(artifact)
        if "://" in url:
            scheme, rest = url.split("://", 1)
            uri = f"{scheme}://{quote(rest, safe='/')}"
        else:
            uri = Path(url).as_uri()
        return uri + "/" if is_folder(artifact) and not uri.endswith("/") else uri

    def used(self, run: Run) -> list[tuple[Artifact, RunInput]]:
        """What `run` used, with the usage record (role, time)."""
        return [(self.artifacts[i.artifact_id], i) for i in self.inputs.get(run.id, [])]

    def produced(self, run: Run) -> list[Artifact]:
        return self.outputs.get(run.id, [])

    def environment(self, run: Run) -> Artifact | None:
        return None if run.environment_id is None else self.artifacts.get(run.environment_id)

    def report(self, run: Run) -> Artifact | None:
        return None if run.report_id is None else self.artifacts.get(run.report_id)

    def tree_inputs(self) -> list[Artifact]:
        """Artifacts used inside the tree and produced outside it: the workflow's inputs."""
        found: dict[int, Artifact] = {}
        for run in self.runs:
            for artifact, _ in self.used(run):
                if artifact.run_id not in self.run_ids:
                    found.setdefault(artifact.id, artifact)
        return list(found.values())

    def tree_outputs(self) -> list[Artifact]:
        """Artifacts produced inside the tree that no run of it used: the workflow's results.

        Everything the root run produced itself counts, used later or not.
        """
        used = {i.artifact_id for run in self.runs for i in self.inputs.get(run.id, [])}
        found: dict[int, Artifact] = {a.id: a for a in self.produced(self.root)}
        for run in self.runs[1:]:
            for artifact in self.produced(run):
                if artifact.id not in used:
                    found.setdefault(artifact.id, artifact)
        return list(found.values())


def is_folder(artifact: Artifact) -> bool:
    """Whether the artifact is a folder (hashed as a whole tree)."""
    return artifact.hash_type == "sha256-dir"


def _query_in(session: Session, model: type[T], column: Any, ids: Iterable[int]) -> list[T]:
    from sqlalchemy import select

    rows: list[T] = []
    for part in chunks(ids):
        rows.extend(session.scalars(select(model).where(column.in_(part))))
    return rows


def _sort_key(run: Run) -> tuple[datetime, datetime, int]:
    far = datetime.max.replace(tzinfo=UTC)
    return (run.started_at or run.scheduled_at or far, run.created_at or far, run.id)


def load_tree(
    run: Run | str, *, descendants: bool = True, instance: Instance | None = None
) -> RunTree:
    """Read `run` (a record or a uid), its descendants (unless told not to) and ancestors,
    from `instance` (default: the instance the record came from; a uid needs one)."""
    from sqlalchemy import select

    from lakeline.models import Artifact, Run, RunInput, Storage, Transform, User

    if instance is None:
        if isinstance(run, str):
            raise TypeError("load_tree(uid) needs the instance to read it from")
        instance = run.instance
    with instance.sessions.read() as s:
        if isinstance(run, str):
            root = s.scalars(select(Run).where(Run.uid == run)).first()
            if root is None:
                raise LakelineError(f"no run with uid {run!r} in instance {instance.name!r}")
        else:
            if getattr(run, "id", None) is None:
                raise LakelineError(f"run {run.uid!r} is not saved: nothing to export")
            root = s.get(Run, run.id)
            if root is None:
                raise LakelineError(f"run {run.uid!r} is not in instance {instance.name!r}")
        runs = [root]
        seen = {root.id}
        frontier = [root.id] if descendants else []
        while frontier:
            found = [r for r in _query_in(s, Run, Run.parent_id, frontier) if r.id not in seen]
            seen.update(r.id for r in found)
            runs.extend(found)
            frontier = [r.id for r in found]
        runs = [root, *sorted(runs[1:], key=_sort_key)]
        ancestors: list[Run] = []
        parent_id = root.parent_id
        while parent_id is not None and parent_id not in seen:
            parent = s.get(Run, parent_id)
            if parent is None:
                break
            seen.add(parent.id)
            ancestors.append(parent)
            parent_id = parent.parent_id
        run_ids = {r.id for r in runs}

        inputs: dict[int, list[RunInput]] = {}
        for link in _query_in(s, RunInput, RunInput.run_id, run_ids):
            inputs.setdefault(link.run_id, []).append(link)
        for links in inputs.values():
            links.sort(key=lambda i: (i.used_at, i.id))
        produced = _query_in(s, Artifact, Artifact.run_id, run_ids)
        outputs: dict[int, list[Artifact]] = {}
        for artifact in sorted(produced, key=lambda a: (a.created_at, a.id)):
            assert artifact.run_id is not None
            outputs.setdefault(artifact.run_id, []).append(artifact)
        artifacts = {a.id: a for a in produced}
        wanted = {i.artifact_id for links in inputs.values() for i in links}
        wanted |= {x for r in runs for x in (r.environment_id, r.report_id) if x is not None}
        for artifact in _query_in(s, Artifact, Artifact.id, wanted - set(artifacts)):
            artifacts[artifact.id] = artifact

        related_ids = {r.cached_from_id for r in runs if r.cached_from_id is not None}
        related = {r.id: r for r in _query_in(s, Run, Run.id, related_ids - seen)}
        transforms: dict[int, Transform] = {}
        todo = {r.transform_id for r in (*runs, *ancestors)}
        while todo:
            for transform in _query_in(s, Transform, Transform.id, todo):
                transforms[transform.id] = transform
            todo = {t.parent_id for t in transforms.values() if t.parent_id} - set(transforms)
        creators: list[Run | Artifact | Transform] = [
            *runs,
            *artifacts.values(),
            *transforms.values(),
        ]
        user_ids = {x.created_by_id for x in creators if x.created_by_id is not None}
        users = {u.id: u for u in _query_in(s, User, User.id, user_ids)}
        storages = {st.id: st for st in s.scalars(select(Storage))}
    return RunTree(
        root=root,
        runs=runs,
        ancestors=ancestors,
        transforms=transforms,
        artifacts=artifacts,
        storages=storages,
        users=users,
        inputs=inputs,
        outputs=outputs,
        related_runs=related,
        instance_name=instance.name,
        instance_uid=instance.uid,
    )


# -- helpers shared by the exporters ------------------------------------------------------------


def iso(moment: datetime | None, *, millis: bool = False) -> str | None:
    """An ISO 8601 timestamp in UTC (`+00:00`), or None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "auto")


def finished_at(run: Run) -> datetime | None:
    """When the run reached its final status (its `finished_at`, else the status log's entry)."""
    if run.finished_at is not None:
        return run.finished_at
    for entry in reversed(run.status_log or []):
        if entry.get("status") == run.status and entry.get("at"):
            try:
                return datetime.fromisoformat(str(entry["at"]))
            except ValueError:
                return None
    return None


def producer() -> str:
    """A URI naming this producer and its version."""
    from lakeline import __version__

    return f"https://lakeline.dev/lakeline/{__version__}"


def language_of(key: str, engine: str | None = None) -> str | None:
    """The programming language of a transform, from its engine or file name."""
    if engine:
        known = {"snakemake": "Snakemake", "nextflow": "Nextflow", "cwl": "CWL"}
        if engine.lower() in known:
            return known[engine.lower()]
        if engine.lower() in ("redun", "prefect", "python", "lakeline"):
            return "Python"
    name = key.rsplit("/", 1)[-1].lower()
    suffixes = {
        ".py": "Python",
        ".ipynb": "Python",
        ".r": "R",
        ".rmd": "R",
        ".qmd": "R",
        ".sh": "Shell",
        ".bash": "Shell",
        ".nf": "Nextflow",
        ".smk": "Snakemake",
        ".cwl": "CWL",
        ".wdl": "WDL",
        ".jl": "Julia",
        ".sql": "SQL",
    }
    if name in ("snakefile",):
        return "Snakemake"
    for suffix, language in suffixes.items():
        if name.endswith(suffix):
            return language
    return None


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write a file through a temporary name in the same folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def dumps(document: Any) -> str:
    """JSON as the exports write it: indented, UTF-8, keys in the order given."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
