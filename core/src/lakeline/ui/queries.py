"""What the UI's pages read: query-string lookups, keyset pages, folders, counts, run details.

Every query is bounded: lists are keyset pages (`LIMIT n + 1` after the last row shown, never
an OFFSET into millions), folders are walked along the key index (one jump per subfolder),
and the overview's counts are made in the background and cached per server (`COUNT_TTL`),
so no page view waits for a count of a big table.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select

from lakeline.errors import QueryError
from lakeline.models import Artifact, Collection, Run, RunInput, Transform, User
from lakeline.query import QuerySet

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
FOLDER_ENTRIES = 200
COUNT_TTL = 60.0  # seconds an overview count is reused
RESERVED = frozenset({"q", "sort", "after", "limit", "view", "prefix", "page", "exhaustive"})
SORTS = {
    "key": ("key", False),
    "-key": ("key", True),
    "-created_at": ("created_at", True),
    "created_at": ("created_at", False),
    "-size": ("size", True),
    "size": ("size", False),
}
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_BOOL_FIELDS = ("is_latest", "available", "in_place")


def parse_lookups(params: list[tuple[str, str]]) -> dict[str, Any]:
    """Query-string pairs (other than the page's own options) as API lookups.

    `__in`/`__not_in`/`__range` take comma-separated values, `__isnull` and boolean fields
    take true/false; `is_latest=all` asks for every version. Everything else is a string the
    QuerySet checks against the column (so `size__gt=10` works and `size__gt=x` is an error).
    """
    lookups: dict[str, Any] = {}
    for name, raw in params:
        if name in RESERVED or raw == "":
            continue
        if name in lookups:
            raise QueryError(f"lookup {name!r} is given twice")
        op = name.rsplit("__", 1)[-1] if "__" in name else "exact"
        value: Any = raw
        if name == "is_latest" and raw == "all":
            value = None
        elif op == "isnull" or (name.split("__")[0] in _BOOL_FIELDS and op in ("exact", "ne")):
            if raw.lower() not in _BOOL:
                raise QueryError(f"{name} takes true or false, got {raw!r}")
            value = _BOOL[raw.lower()]
        elif op in ("in", "not_in"):
            value = [v for v in raw.split(",") if v]
        elif op == "range":
            value = raw.split(",")
            if len(value) != 2:
                raise QueryError(f"{name} takes two values separated by a comma, got {raw!r}")
        lookups[name] = value
    return lookups


def encode_cursor(values: list[Any]) -> str:
    """An opaque, URL-safe page cursor."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The values `encode_cursor` packed; `QueryError` for anything else."""
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise QueryError("malformed page cursor (after=): start again from the first page") from exc
    if (
        not isinstance(values, list)
        or len(values) != 3
        or values[0] not in (0, 1)
        or not isinstance(values[2], int)
    ):
        raise QueryError("malformed page cursor (after=): start again from the first page")
    return values


@dataclass
class Page:
    """One page of artifacts and the cursor of the next (None on the last page)."""

    rows: list[Artifact]
    next_cursor: str | None = None
    creators: dict[int, str] = field(default_factory=dict)
    ranked: bool = False


def artifact_page(
    lookups: dict[str, Any],
    *,
    sort: str = "key",
    after: str | None = None,
    limit: int = PAGE_SIZE,
    search: str | None = None,
    page: int = 1,
) -> Page:
    """A page of artifacts matching `lookups`; with `search`, ranked matches (`page` n)."""
    if sort not in SORTS:
        raise QueryError(f"unknown sort {sort!r}; sorts: {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise QueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    base: QuerySet[Artifact] = Artifact.filter(**lookups)
    if search is not None and search.strip():
        if not 1 <= page <= 100:
            raise QueryError(f"page must be between 1 and 100, got {page}")
        ranked = base.search(search, limit=limit + 1).offset((page - 1) * limit).all()
        result = Page(ranked[:limit], ranked=True)
        result.next_cursor = str(page + 1) if len(ranked) > limit else None
        result.creators = creators(result.rows)
        return result
    name, descending = SORTS[sort]
    column = getattr(Artifact, name)
    phase, value, last_id = decode_cursor(after) if after else (0, None, None)
    rows: list[Artifact] = []
    if phase == 0:  # rows with a value, in order; then (phase 1) rows without, by id
        query = base.filter(column.isnot(None))
        if last_id is not None:
            value = _cursor_value(name, value)
            beyond = column < value if descending else column > value
            tie = Artifact.id < last_id if descending else Artifact.id > last_id
            # the redundant bound is a range SQLite reads along the index in order; without
            # it, its planner may search both sides of the OR and sort every row after them
            bound = column <= value if descending else column >= value
            query = query.filter(bound, or_(beyond, and_(column == value, tie)))
        order = f"-{name}" if descending else name
        rows = query.order_by(order, "-id" if descending else "id").limit(limit + 1).all()
        if len(rows) <= limit:
            phase, last_id = 1, None
    if phase == 1 and len(rows) <= limit:
        query = base.filter(column.is_(None))
        if last_id is not None:
            query = query.filter(Artifact.id > last_id)
        rows += query.order_by("id").limit(limit + 1 - len(rows)).all()
    result = Page(rows[:limit])
    if len(rows) > limit:
        last = rows[limit - 1]
        raw = getattr(last, name)
        is_null = raw is None
        shown = raw.isoformat() if hasattr(raw, "isoformat") else raw
        result.next_cursor = encode_cursor([1 if is_null else 0, shown, last.id])
    result.creators = creators(result.rows)
    return result


def _cursor_value(name: str, value: Any) -> Any:
    from datetime import datetime

    if name == "created_at":
        if not isinstance(value, str):
            raise QueryError("malformed page cursor (after=): start again from the first page")
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise QueryError("malformed page cursor (after=)") from exc
    expected = str if name == "key" else int
    if not isinstance(value, expected) or isinstance(value, bool):
        raise QueryError("malformed page cursor (after=): start again from the first page")
    return value


def creators(records: list[Any]) -> dict[int, str]:
    """User handles by id for the records' `created_by_id`, in one query."""
    from lakeline.instance import current

    ids = {r.created_by_id for r in records if r.created_by_id is not None}
    if not ids:
        return {}
    with current().sessions.read() as session:
        rows = session.execute(select(User.id, User.handle).where(User.id.in_(ids))).all()
    return {user_id: handle for user_id, handle in rows}


@dataclass
class Folder:
    """What lies directly under a key prefix: subfolders and artifacts."""

    prefix: str
    folders: list[str]
    files: list[Artifact]
    more: str | None = None  # where to go on (`start`), when the listing was cut


def folder(prefix: str, start: str | None = None) -> Folder:
    """Subfolders and artifacts directly under `prefix` (latest versions with a key).

    A skip scan of the key index in one recursive query: from the cursor, the smallest key;
    a key with a `/` after the prefix names a subfolder, and the next step starts past the
    whole subfolder (keys >= `sub0`, as `0` follows `/`), a file's next step right after it
    (`key || chr(1)`: keys hold no control characters). One index probe per entry listed,
    however many keys a subfolder holds.
    """
    from sqlalchemy import text

    from lakeline.instance import current

    if prefix and not prefix.endswith("/"):
        raise QueryError(f"a folder prefix ends with '/': {prefix!r}")
    cursor = start if start else prefix
    if "\x00" in cursor or "\x00" in prefix:
        raise QueryError("a folder prefix or cursor cannot hold a NUL character")
    if not cursor.startswith(prefix):
        raise QueryError("malformed page cursor (after=): start again from the first page")
    upper = _upper(prefix)
    instance = current()
    sql = _walk_sql(instance.dialect, upper is not None)
    params: dict[str, Any] = {"start": cursor, "plen": len(prefix), "limit": FOLDER_ENTRIES}
    if upper is not None:
        params["upper"] = upper
    with instance.sessions.read() as session:
        keys = [k for k in session.execute(text(sql), params).scalars() if k is not None]
    folders: list[str] = []
    file_keys: list[str] = []
    for key in keys:
        rest = key[len(prefix) :]
        if "/" in rest:
            folders.append(prefix + rest.split("/", 1)[0] + "/")
        else:
            file_keys.append(key)
    files = Artifact.filter(key__in=file_keys).order_by("key").all() if file_keys else []
    more = _next_start(keys[-1], prefix) if len(keys) >= FOLDER_ENTRIES else None
    return Folder(prefix, folders, files, more)


def _next_start(key: str, prefix: str) -> str:
    """Where the walk goes on after `key` (the SQL's CASE, in Python)."""
    rest = key[len(prefix) :]
    if "/" in rest:
        return prefix + rest.split("/", 1)[0] + "0"
    return key + "\x01"


def _walk_sql(dialect: str, bounded: bool) -> str:
    """The recursive skip scan of `folder`, for SQLite or PostgreSQL."""
    find = "instr" if dialect == "sqlite" else "strpos"
    one = "char(1)" if dialect == "sqlite" else "chr(1)"
    slash = f"{find}(substr(k, :plen + 1), '/')"
    after = (
        f"CASE WHEN {slash} > 0 THEN substr(k, 1, :plen + {slash} - 1) || '0' ELSE k || {one} END"
    )
    bound = " AND key < :upper" if bounded else ""
    return (
        "WITH RECURSIVE walk(k, n) AS ("
        f" SELECT (SELECT min(key) FROM artifacts WHERE is_latest AND key >= :start{bound}), 1"
        " UNION ALL"
        f" SELECT (SELECT min(key) FROM artifacts WHERE is_latest AND key >= {after}{bound}),"
        " n + 1 FROM walk WHERE k IS NOT NULL AND n < :limit"
        ") SELECT k FROM walk"
    )


def _upper(prefix: str) -> str | None:
    if not prefix:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Counts:
    """Overview counts, always counted in a background thread: first when a page first asks
    (which shows that counting is under way), then again when older than `COUNT_TTL` seconds
    while the page shows the previous figures (and when they were made).

    Counting takes time in proportion to the rows (1 s at 1M artifacts on SQLite, 10x that
    at 10M), so no request waits for it.
    """

    def __init__(self, ttl: float = COUNT_TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: dict[str, int] = {}
        self._at = 0.0
        self._refreshing = False
        self.counted_at: float | None = None

    def get(self) -> dict[str, int]:
        """Counts of artifacts (latest versions), versions, transforms, runs, failed runs,
        collections (latest versions); empty until the first count is done."""
        with self._lock:
            stale = self.counted_at is None or time.monotonic() - self._at >= self.ttl
            if stale and not self._refreshing:
                self._refreshing = True
                threading.Thread(
                    target=self._refresh, name="lakeline-ui-counts", daemon=True
                ).start()
            return self._value

    def _store(self, value: dict[str, int]) -> None:
        self._value, self._at, self.counted_at = value, time.monotonic(), time.time()

    def _refresh(self) -> None:
        try:
            value = _count()
        except Exception:  # the database is away: keep the old figures, retry on a later view
            value = None
        with self._lock:
            if value is not None:
                self._store(value)
            self._refreshing = False


def _count() -> dict[str, int]:
    from lakeline.instance import current

    with current().sessions.read() as session:
        counts = {
            "artifacts": session.scalar(select(func.count()).where(Artifact.is_latest)) or 0,
            "artifact versions": session.scalar(select(func.count(Artifact.id))) or 0,
            "transforms": session.scalar(select(func.count(Transform.id))) or 0,
            "runs": session.scalar(select(func.count(Run.id))) or 0,
        }
        failed = select(func.count(Run.id)).where(Run.status == "errored")
        counts["failed runs"] = session.scalar(failed) or 0
        collections = select(func.count()).where(Collection.is_latest)
        counts["collections"] = session.scalar(collections) or 0
    return counts


@dataclass
class RunDetails:
    """What the run page shows besides the run: transform, edges, children, parent."""

    transform: Transform
    inputs: list[tuple[Artifact, str]]
    outputs: list[Artifact]
    children: list[tuple[Run, Transform]]
    parent: Run | None
    environment: Artifact | None
    report: Artifact | None
    more_inputs: bool = False
    more_outputs: bool = False
    more_children: bool = False


LIST_LIMIT = 200


def run_details(run: Run) -> RunDetails:
    """A run's transform, inputs (with roles), outputs, child runs and linked artifacts."""
    from lakeline.instance import current

    with current().sessions.read() as session:
        transform = session.get(Transform, run.transform_id)
        assert transform is not None
        inputs = session.execute(
            select(Artifact, RunInput.role)
            .join(RunInput, RunInput.artifact_id == Artifact.id)
            .where(RunInput.run_id == run.id)
            .order_by(Artifact.key, Artifact.id)
            .limit(LIST_LIMIT + 1)
        ).all()
        outputs = (
            session.execute(
                select(Artifact)
                .where(Artifact.run_id == run.id)
                .order_by(Artifact.key, Artifact.id)
                .limit(LIST_LIMIT + 1)
            )
            .scalars()
            .all()
        )
        children = session.execute(
            select(Run, Transform)
            .join(Transform, Transform.id == Run.transform_id)
            .where(Run.parent_id == run.id)
            .order_by(Run.id)
            .limit(LIST_LIMIT + 1)
        ).all()
        parent = session.get(Run, run.parent_id) if run.parent_id is not None else None
        environment = session.get(Artifact, run.environment_id) if run.environment_id else None
        report = session.get(Artifact, run.report_id) if run.report_id else None
    return RunDetails(
        transform=transform,
        inputs=[(a, role) for a, role in inputs[:LIST_LIMIT]],
        outputs=list(outputs[:LIST_LIMIT]),
        children=[(r, t) for r, t in children[:LIST_LIMIT]],
        parent=parent,
        environment=environment,
        report=report,
        more_inputs=len(inputs) > LIST_LIMIT,
        more_outputs=len(outputs) > LIST_LIMIT,
        more_children=len(children) > LIST_LIMIT,
    )


def runs_with_transforms(runs: list[Run]) -> list[tuple[Run, Transform]]:
    """Each run with its transform (one query for all)."""
    from lakeline.instance import current

    ids = {r.transform_id for r in runs}
    if not ids:
        return []
    with current().sessions.read() as session:
        found = {t.id: t for t in session.scalars(select(Transform).where(Transform.id.in_(ids)))}
    return [(r, found[r.transform_id]) for r in runs]


def used_by(artifact: Artifact, limit: int = LIST_LIMIT) -> list[tuple[Run, Transform]]:
    """Runs that used `artifact`, newest first (at most `limit`)."""
    from lakeline.instance import current

    with current().sessions.read() as session:
        rows = session.execute(
            select(Run, Transform)
            .join(RunInput, RunInput.run_id == Run.id)
            .join(Transform, Transform.id == Run.transform_id)
            .where(RunInput.artifact_id == artifact.id)
            .order_by(Run.id.desc())
            .limit(limit)
        ).all()
    return [(r, t) for r, t in rows]
