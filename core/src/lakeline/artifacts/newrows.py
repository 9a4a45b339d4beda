"""A pipelined PostgreSQL save's new records built off the writer's chain (artifacts/pipeline.py).

The writer thread's chain (its Python, then the server's COPY, batch after batch) is such a
save's critical path, while the saving thread waits for the file worker's results. So:

- before the first batch arrives the writer `survey`s the whole save in its transaction: it
  locks every key (`lock_keys`, as each batch would, sorted and at once), and reads which keys
  some record holds and whether a reference storage exists where the files' locations would
  be recorded;
- the saving thread then `prepare`s each batch whose files are all new, under keys nobody
  holds, as `write_batch` writes such records (a new stem each, the values of a new version
  0), and binds their COPY rows;
- the writer `write`s a prepared batch with one COPY, without reading anything.

Any other batch (a key held, a reference storage to look in, a file in place, no survey yet)
goes to the writer as plans, for `write_batch`, as before. The lock taken by the survey
keeps what it read true until the commit: every writer of an artifact locks its key first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, select, text, update

from lakeline.db.copy_rows import copy_bound, copy_columns, table_defaults
from lakeline.db.locks import lock_keys
from lakeline.db.rows import bound_values, chunks, fill_new, one_of
from lakeline.ids import STEM_LENGTH, new_uids, suffix_index, versioned_uid
from lakeline.models import Artifact, Storage
from lakeline.models.base import utcnow
from lakeline.storage.keys import REFERENCE_STORAGE

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.artifacts.planning import Plan
    from lakeline.models import Run


@dataclass
class Survey:
    """What the writer read for the whole save: the keys some record holds (`held`), and
    whether records may wait at the files' locations (`references`: a reference storage of
    their roots exists), with the table's database defaults (for the COPY's columns)."""

    held: frozenset[str]
    references: bool
    defaults: dict[str, str]


@dataclass
class Prepared:
    """A batch of new records ready to COPY: `bound` rows of columns `names` (`added`: columns
    the database fills once per COPY, `expressions` theirs)."""

    plans: Sequence[Plan]
    names: list[str]
    bound: list[list[Any]]
    added: list[str]
    expressions: list[str]


def survey(session: Session, keys: Sequence[str], roots: Sequence[str]) -> Survey | None:
    """In the save's transaction (PostgreSQL): lock `keys` and read which of them some record
    holds, and whether a reference storage with one of `roots` exists. None when the keys
    cannot be one text of lines (a NUL byte or a line break: `write_batch` says what is
    wrong)."""
    lines = "\n".join(keys)
    if "\x00" in lines or lines.count("\n") != len(keys) - 1:
        return None
    lock_keys(session, "artifact", keys)
    # the keys as one text both ways: a list of 10k texts bound as an array, and the held ones
    # read back as rows, cost the client ~1.5 and ~1.3 us a key; one text each way ~0.2-0.4
    found = session.execute(_HELD, {"keys": lines}).scalar()
    held = frozenset(found.split("\n")) if found is not None else frozenset()
    storages = select(Storage.id).where(Storage.type == REFERENCE_STORAGE, Storage.root.in_(roots))
    references = bool(roots) and session.execute(storages.limit(1)).first() is not None
    return Survey(held, references, table_defaults(session, _table().name))


# the keys some record holds, of those given as lines (keys hold no line break: validate_key)
_HELD = text(
    "SELECT string_agg(key, chr(10)) FROM artifacts "
    "WHERE key = ANY(string_to_array(CAST(:keys AS text), chr(10)))"
)


def prepare(
    plans: Sequence[Plan], found: Survey | None, user_id: int, run: Run | None, dialect: Any
) -> Prepared | None:
    """`plans`' records as `write_batch` would write them, when every one is a new file
    stored into its storage under a key no record holds and no reference may wait at its
    location (`found`); else None. Their objects take the values (a new, transient object's
    own dict, as `write_batch` fills it)."""
    if found is None or found.references:
        return None
    held = found.held
    for plan in plans:
        key = vars(plan.artifact).get("key")
        if plan.digest is None or plan.in_place or plan.storage is None or key is None:
            return None
        if key in held:
            return None
    stems = iter(new_uids(len(plans), STEM_LENGTH))
    run_id = run.id if run is not None else None
    storage_ids: dict[Any, int] = {}
    columns = _insert_columns()
    wanted = frozenset(columns)
    rows = []
    for plan in plans:
        artifact, digest, storage = plan.artifact, plan.digest, plan.storage
        assert digest is not None and storage is not None
        storage_id = storage_ids.get(storage)
        if storage_id is None:
            storage_id = storage_ids[storage] = storage.id
        values = record_values(plan, next(stems), 0, user_id, storage_id, run_id)
        own = vars(artifact)
        fill_new(artifact, values)  # a new object: no per-attribute events
        for name in wanted.difference(own):
            own[name] = None  # stored as NULL: say so, or a detached record can't tell
        rows.append(own)
    names, added, expressions = copy_columns(columns, rows, found.defaults)
    bound = bound_values(_table(), dialect, names, rows)
    return Prepared(plans, names, bound, added, expressions)


def record_values(
    plan: Plan, stem: str, index: int, user_id: int, storage_id: int, run_id: int | None
) -> dict[str, Any]:
    """A new record's column values, as `write_batch` and `prepare` write them: version
    `index` of `stem` in storage `storage_id`, a file's digest (a reference: no bytes), and
    `run_id` as the producing run unless the artifact names one."""
    digest = plan.digest
    values: dict[str, Any] = {
        "stem": stem,
        "uid": versioned_uid(stem, index),
        "is_latest": True,
        "store_key": plan.store_key,
        "in_place": plan.in_place,
        "created_by_id": user_id,
        "created_at": utcnow(),
        "storage_id": storage_id,
        "through_link": plan.through_link,
    }
    if digest is None:  # a reference: hash, hash type and size as described
        values["n_files"], values["available"] = None, False
    else:
        values["hash"], values["hash_type"] = digest.hash, digest.hash_type
        values["size"], values["n_files"] = digest.size, digest.n_files
        values["available"] = True
    if run_id is not None and vars(plan.artifact).get("run_id") is None:
        values["run_id"] = run_id  # saved while a run is current: its output
    return values


def next_indexes(session: Session, stems: Sequence[str]) -> dict[str, int]:
    """The index the next version of each of `stems` takes (after its highest uid: versions
    sort by uid), one statement per chunk of stems (not one a stem: ~0.4 ms each on SQLite);
    a stem without records is left out."""
    found: dict[str, int] = {}
    for chunk in chunks(stems):
        stmt = select(Artifact.stem, func.max(Artifact.uid)).where(
            _among(session, Artifact.stem, chunk)
        )
        for stem, top in session.execute(stmt.group_by(Artifact.stem)):
            found[stem] = suffix_index(top[-4:]) + 1
    return found


def retire(session: Session, ids: Sequence[int]) -> None:
    """Records `ids` are no longer their keys' latest (new versions follow): one UPDATE per
    chunk of ids, before the new versions are inserted (one latest record a key and stem)."""
    for chunk in chunks(ids):
        stmt = update(_table()).where(_among(session, _table().c.id, chunk))
        session.execute(stmt.values(is_latest=False))


def _among(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """`column = value` for one value (a save of one file: a bound parameter, one SQL text
    for every such save, which PostgreSQL's driver prepares; `one_of` inlines a short list
    there, a new SQL text each time, parsed and planned each time), else `one_of`."""
    return column == values[0] if len(values) == 1 else one_of(session, column, values)


def write(session: Session, prepared: Prepared) -> list[Artifact]:
    """In the save's transaction: COPY `prepared`'s rows; each object takes its id and is its
    plan's result. Returns the new records."""
    ids = copy_bound(
        session, _table(), prepared.names, prepared.bound, prepared.added, prepared.expressions
    )
    created = []
    for plan, new_id in zip(prepared.plans, ids, strict=True):
        artifact = plan.artifact
        vars(artifact)["id"] = new_id
        plan.result = artifact
        created.append(artifact)
    return created


def _table() -> Table:
    table = Artifact.__table__
    assert isinstance(table, Table)
    return table


@cache
def _insert_columns() -> list[str]:
    """The columns a new record's row lists (`save._insert`'s: all but the primary key)."""
    return [c.key for c in _table().columns if not c.primary_key]
