"""Records at a save's locations: references already recorded there, and filling them in.

Read inside the save's transaction (`artifacts/save.py`). A location has up to two places
(storage id, store key): inside the registered storage root that contains it, and in the
reference storage of its scheme (where a reference went when no root contained it then).
Files only look for unavailable records (the partial index `ix_artifacts_unavailable` makes
that free while an instance holds no references); references look for any record.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from json.encoder import encode_basestring  # json.dumps's, ensure_ascii=False
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    String,
    TextualSelect,
    and_,
    bindparam,
    select,
    text,
)

from lakeline.artifacts.keying import located, may_be
from lakeline.artifacts.settle import detach
from lakeline.db.driver import driver_rows
from lakeline.db.rows import (
    CHUNK,
    chunks,
    connection_of,
    fill_new,
    is_postgres,
    one_of,
    update_row,
)
from lakeline.db.session import stamp
from lakeline.ids import new_uid
from lakeline.models import Artifact, Storage
from lakeline.storage.keys import REFERENCE_STORAGE

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.artifacts.save import Plan

Place = tuple[int, str]
# spelled as the partial index's predicate, so that SQLite's planner can use the index
UNAVAILABLE = text("NOT artifacts.available")
# the root of a record's storage when that is a reference storage, else NULL
REF_ROOT = (
    select(Storage.root)
    .where(Storage.id == Artifact.storage_id, Storage.type == REFERENCE_STORAGE)
    .scalar_subquery()
    .label("ref_root")
)


class Places:
    """Records already at the locations of a batch's plans, read in the save's transaction."""

    def __init__(
        self, session: Session, plans: Sequence[Plan], instance_uid: str, *, files: bool = True
    ) -> None:
        """Looks up the reference storages references need (a reference creates its storage
        when missing), and with `files` those of files too: a big batch then reads no place
        in a reference storage that does not exist. Roots not looked up are named by a
        subquery in `lookup()`/`conditions()`, and `take()` learns their ids from the rows."""
        self.session = session
        self.instance_uid = instance_uid
        self.created = False  # a reference storage was created (the instance must reload)
        self.ref_ids: dict[str, int] = {}
        self.at: dict[Place, list[Artifact]] = {}
        self.plans = plans
        roots = sorted(
            {p.ref_place[0] for p in plans if p.ref_place and (files or p.digest is None)}
        )
        self.looked_up = set(roots)
        self._wanted: tuple[int, dict[tuple[bool, int | str], list[str]]] | None = None
        if roots:
            found = select(Storage.root, Storage.id).where(
                Storage.type == REFERENCE_STORAGE, Storage.root.in_(roots)
            )
            self.ref_ids.update(session.execute(found).tuples().all())

    def wanted(self) -> dict[tuple[bool, int | str], list[str]]:
        """Store keys wanted per (unavailable only, storage id, or the root of a reference
        storage not looked up): unavailable records for files, any record for references.
        Made once while the reference storages known stay the same (`foldable`, then
        `lookup`, ask for it)."""
        known = len(self.ref_ids)  # only grows: the same length, the same storages
        if self._wanted is not None and self._wanted[0] == known:
            return self._wanted[1]
        made = self._wanted_now()
        self._wanted = (known, made)
        return made

    def _wanted_now(self) -> dict[tuple[bool, int | str], list[str]]:
        wanted: dict[tuple[bool, int | str], set[str]] = {}
        for plan in self.plans:
            unavailable_only = plan.digest is not None
            if plan.in_place and plan.storage is not None:
                # a file keyed by its location: every record there (`artifacts/keying.py`)
                group = (unavailable_only and not located(plan), plan.storage.id)
                wanted.setdefault(group, set()).add(plan.store_key)
            if plan.ref_place is None:
                continue
            root, store_key = plan.ref_place
            if root in self.ref_ids:
                wanted.setdefault((unavailable_only, self.ref_ids[root]), set()).add(store_key)
            elif unavailable_only and root not in self.looked_up:
                # a file whose root was not looked up: its reference storage, if any, by root
                wanted.setdefault((True, root), set()).add(store_key)
        return {group: sorted(store_keys) for group, store_keys in wanted.items()}

    def conditions(self) -> list[ColumnElement[bool]]:
        """WHERE clauses (one per chunk) matching the records wanted at the plans' places.
        Rows found go to `take()`."""
        found: list[ColumnElement[bool]] = []
        for (unavailable_only, storage), store_keys in self.wanted().items():
            where = _in_storage(storage, isinstance(storage, str))
            for chunk in chunks(store_keys):
                clause = and_(where, one_of(self.session, Artifact.store_key, chunk))
                found.append(and_(clause, UNAVAILABLE) if unavailable_only else clause)
        return found

    def lookup(self, keys: Sequence[str]) -> tuple[TextualSelect, dict[str, Any]] | None:
        """One statement reading the records with `keys` and those wanted at the plans'
        places (each list at most a chunk long), with its parameters; None if nothing is
        wanted. Each list is one parameter (`_lookup`): the statement's text depends on its
        shape only, so SQLAlchemy's compiled cache and SQLite's prepared statements are hit
        whatever the lists' lengths. Lists holding a NUL cannot be such a parameter: the
        caller reads those with `conditions()` (`foldable`)."""
        wanted = self.wanted()
        if not keys and not wanted:
            return None
        postgres = is_postgres(self.session)
        pack = list if postgres else _json
        params: dict[str, Any] = {"keys": pack(keys)} if keys else {}
        shape = []
        for i, ((unavailable_only, storage), store_keys) in enumerate(wanted.items()):
            shape.append((unavailable_only, isinstance(storage, str)))
            params[f"s{i}"], params[f"v{i}"] = storage, pack(store_keys)
        return _lookup(postgres, bool(keys), tuple(shape)), params

    def found(self, lookup: tuple[TextualSelect, dict[str, Any]]) -> list[tuple[Artifact, Any]]:
        """`lookup()`'s rows: (record, its `REF_ROOT`). Read as SQL for the driver, the values
        converted as the statement's typed columns convert them (`_driver_form`), and each
        made a persistent record of the session as the ORM's load makes it (the identity
        map's own object where it holds one, the instance stamped): the ORM's result set-up
        cost ~0.3 ms on PostgreSQL (~0.06 on SQLite) a statement, a Core result's ~0.3M
        instructions, though most flushes find no row (new files)."""
        session = self.session
        connection = connection_of(session)
        sql, positional, binds, results = _driver_form(lookup[0], connection.dialect)
        given = lookup[1]
        bound = [
            (name, bind(value) if bind else value)
            for name, default, bind in binds
            for value in (given.get(name, default),)
        ]
        params: Any = [value for _, value in bound] if positional else dict(bound)
        rows = driver_rows(connection, sql, params)
        if not rows:
            return []
        if any(results):  # the typed columns' conversions, as a result's rows make them
            rows = [[p(v) if p else v for p, v in zip(results, row, strict=True)] for row in rows]
        names, new = _attributes()
        instance = session.info.get("lakeline_instance")
        found: list[tuple[Artifact, Any]] = []
        made: list[Artifact] = []
        for row in rows:
            values = dict(zip(names, row, strict=False))  # the last value: the ref root
            held = session.identity_map.get(instance_state_key(values["id"]))
            if held is not None:  # as a load: the object the session holds, as it is
                found.append((held, row[-1]))
                continue
            record: Artifact = new()
            fill_new(record, values)
            made.append(record)
            found.append((record, row[-1]))
        detach(made)  # detached records, every column loaded; then the session's own
        for record in made:
            session.add(record)
            if instance is not None:
                stamp(record, instance)
        return found

    def foldable(self, keys: Sequence[str]) -> bool:
        """Whether `lookup(keys)` can read this batch: no list longer than a chunk, no text
        with a NUL byte (SQLite's json_each would cut it, PostgreSQL refuses it)."""
        lists = [keys, *self.wanted().values()]
        if any(len(values) > CHUNK for values in lists):
            return False
        return "\x00" not in "".join(chain.from_iterable(lists))  # texts: keys, store keys

    def take(self, row: Artifact, ref_root: str | None) -> None:
        """A record read at one of the wanted places (or by key: it is at its place too);
        `ref_root`: its storage's root when that is a reference storage (`REF_ROOT`)."""
        if ref_root is not None:
            self.ref_ids.setdefault(ref_root, row.storage_id)
        self.at.setdefault((row.storage_id, row.store_key), []).append(row)

    def places(self, plan: Plan) -> list[Place]:
        """Where a record of `plan`'s data may already be."""
        found: list[Place] = []
        if plan.in_place and plan.storage is not None:
            found.append((plan.storage.id, plan.store_key))
        if plan.ref_place is not None and plan.ref_place[0] in self.ref_ids:
            found.append((self.ref_ids[plan.ref_place[0]], plan.ref_place[1]))
        return found

    def find(self, plan: Plan, *, unavailable_only: bool = False) -> Artifact | None:
        """The record at `plan`'s location with the same hash (and hash type), and the same
        key unless the plan's key was derived (then the record keyed by the place first, never
        a link's, `keying.may_be`): available records first, then the latest.
        With `unavailable_only`, a reference there without a hash matches any bytes."""
        if not self.at:  # no record at any place of the batch (a save of new files)
            return None
        artifact = plan.artifact
        hash_: str | None
        hash_type: str | None
        if plan.digest is not None:
            hash_, hash_type = plan.digest.hash, plan.digest.hash_type
        else:
            hash_, hash_type = artifact.hash, artifact.hash_type
        best: Artifact | None = None
        best_rank: tuple[Any, ...] = ()
        for i, place in enumerate(self.places(plan)):  # the first: its own place, if in place
            for row in self.at.get(place, ()):
                # a reference without a hash takes whatever bytes are saved at its location
                unknown = unavailable_only and row.hash is None and not row.available
                if not unknown and (
                    row.hash != hash_ or (hash_ is not None and row.hash_type != hash_type)
                ):
                    continue
                if (plan.key_given and row.key != artifact.key) or (
                    unavailable_only and row.available
                ):
                    continue
                fit = may_be(plan, row, self.session) if i == 0 and located(plan) else 1
                if not fit:
                    continue
                rank = (fit, bool(row.available), bool(row.is_latest), row.id or 0)
                if best is None or rank > best_rank:
                    best, best_rank = row, rank
        return best

    def add(self, plan: Plan, record: Artifact) -> None:
        """A record written by this batch: later plans of the batch find it too."""
        for place in self.places(plan):
            self.at.setdefault(place, []).append(record)

    def storage_id(self, root: str) -> int:
        """The reference storage of `root`, created (in this transaction) when missing."""
        if root not in self.ref_ids:
            record = Storage(
                uid=new_uid(12), root=root, type=REFERENCE_STORAGE, instance_uid=self.instance_uid
            )
            self.session.add(record)
            self.session.flush()
            self.ref_ids[root] = record.id
            self.created = True
        return self.ref_ids[root]


def promote(session: Session, record: Artifact, plan: Plan) -> None:
    """Fill in a reference with the bytes `plan` stored: it becomes available."""
    assert plan.digest is not None and plan.storage is not None
    values: dict[str, Any] = {
        "available": True,
        "hash": plan.digest.hash,  # the same, or the reference knew none
        "hash_type": plan.digest.hash_type,
        "size": plan.digest.size,
        "n_files": plan.digest.n_files,
        "storage_id": plan.storage.id,
        "store_key": plan.store_key,
        "in_place": plan.in_place,
        "store_tag": getattr(plan.artifact, "store_tag", None),  # read checks: as a new record
        "through_link": plan.through_link,  # at its new place: a link's record, or not (0028)
    }
    for name in ("otype", "n_observations"):
        value = getattr(plan.artifact, name, None)
        if value is not None and getattr(record, name, None) is None:
            values[name] = value
    if record.id is None:  # written by this same batch: not inserted yet
        for name, value in values.items():
            setattr(record, name, value)
        return
    update_row(session, record, values)


def _in_storage(storage: int | str | BindParameter[Any], by_root: bool) -> ColumnElement[bool]:
    """Records in storage `storage` (an id), or in the reference storage of root `storage`
    (`by_root` true), whose id a subquery finds."""
    if by_root:
        ids = select(Storage.id).where(Storage.type == REFERENCE_STORAGE, Storage.root == storage)
        return Artifact.storage_id.in_(ids.scalar_subquery())
    return Artifact.storage_id == storage


def _json(values: Sequence[str]) -> str:
    """`json.dumps(list(values), ensure_ascii=False)`: of texts, the same text without an
    encoder built per call (~20k instructions)."""
    try:
        return "[" + ", ".join(map(encode_basestring, values)) + "]"
    except TypeError:  # not all texts: as json.dumps writes them
        return json.dumps(list(values), ensure_ascii=False)


@lru_cache(maxsize=1)
def _attributes() -> tuple[list[str], Any]:
    """The attribute names of `artifacts`' columns in the table's order, and how a bare
    Artifact is made (no constructor)."""
    mapper = Artifact.__mapper__
    table = Artifact.__table__
    names = [mapper.get_property_by_column(column).key for column in table.columns]
    return names, mapper.class_manager.new_instance


def instance_state_key(artifact_id: Any) -> Any:
    """The identity key of artifact `artifact_id` (the session's identity map's)."""
    return Artifact.__mapper__.identity_key_from_primary_key((artifact_id,))


# a bind's name, its default value and its bind processor
_Binds = list[tuple[str, Any, Callable[[Any], Any] | None]]
# `_lookup`'s statements as `_driver_form` made them, by dialect (an engine's, gone with it)
_forms: weakref.WeakKeyDictionary[Any, dict[TextualSelect, Any]] = weakref.WeakKeyDictionary()


def _driver_form(statement: TextualSelect, dialect: Any) -> tuple[str, bool, _Binds, list[Any]]:
    """`statement` as SQL for the driver (`driver_rows`), compiled once per dialect: its
    text, whether its parameters are positional (else by name), its binds in order (name,
    default, bind processor) and its columns' result processors, as SQLAlchemy's execution
    applies them to the values bound and the rows read (`Places.found`: the statement's
    execution context and result cost ~0.3M instructions, though most flushes find no row)."""
    known = _forms.get(dialect)
    if known is None:
        known = _forms[dialect] = {}
    form = known.get(statement)
    if form is None:
        compiled = statement.compile(dialect=dialect)
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        binds: _Binds = []
        for name in names or ():
            bind = compiled.binds[name]
            binds.append(
                (name, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect))
            )
        results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        form = known[statement] = (compiled.string, compiled.positional, binds, results)
    return form


@lru_cache(maxsize=64)
def _lookup(postgres: bool, keys: bool, shape: tuple[tuple[bool, bool], ...]) -> TextualSelect:
    """`Places.lookup`'s statement for one shape: whether keys are read, and per place group
    whether only unavailable records are wanted and whether its storage is named by root.

    SQL text built once a process, read as rows (`Places.found`): the select construct
    it spells, `select(Artifact, REF_ROOT).where(...)`, cost ~1.6-2 ms to compile per engine
    (every process's first save), its text ~0.2 ms.

    On SQLite the records' ids are found by one `UNION ALL` of joins, each list's
    `json_each` driving its index (`CROSS JOIN` keeps that order), and the records read by
    id: an `IN (SELECT value FROM json_each(...))` per list, ORed, made SQLite build and drop
    a temporary b-tree for each list and one for the root's storage (each ~15k instructions,
    most of it zeroing 4 KiB pages: the library's secure delete), the ids' list makes one.
    A lone flush's look-up (two files, nothing found) 141k -> 82k instructions."""
    from sqlalchemy import column
    from sqlalchemy.types import TypeEngine

    listed: TypeEngine[Any] = String()
    if postgres:  # the dialect imported on PostgreSQL only (~22 ms to import on SQLite)
        from sqlalchemy.dialects.postgresql import ARRAY

        listed = ARRAY(String)
    binds = [bindparam("ref_type", REFERENCE_STORAGE, type_=String)]
    table = Artifact.__table__
    names = ", ".join(f'artifacts."{c.name}"' for c in table.columns)
    head = (
        f"SELECT {names}, (SELECT storages.root FROM storages WHERE storages.id = "
        "artifacts.storage_id AND storages.type = :ref_type) AS ref_root FROM artifacts "
    )
    if postgres:
        sql = head + f"WHERE {' OR '.join(_any_clauses(binds, listed, keys, shape))}"
    else:
        sql = head + f"WHERE artifacts.id IN ({' UNION ALL '.join(_id_joins(binds, keys, shape))})"
    ref_root = column("ref_root", String)
    return text(sql).bindparams(*binds).columns(*table.columns, ref_root)


def _any_clauses(
    binds: list[BindParameter[Any]],
    listed: Any,
    keys: bool,
    shape: tuple[tuple[bool, bool], ...],
) -> list[str]:
    """PostgreSQL's conditions, ORed: each an index condition (a BitmapOr of index scans)."""
    clauses = []
    if keys:
        binds.append(bindparam("keys", type_=listed))
        clauses.append('artifacts."key" = ANY(:keys)')
    for i, (unavailable_only, by_root) in enumerate(shape):
        binds.append(bindparam(f"s{i}"))
        binds.append(bindparam(f"v{i}", type_=listed))
        if by_root:  # the reference storage of that root, by a subquery
            where = (
                "artifacts.storage_id IN (SELECT storages.id FROM storages WHERE "
                f"storages.type = :ref_type AND storages.root = :s{i})"
            )
        else:
            where = f"artifacts.storage_id = :s{i}"
        clause = f"{where} AND artifacts.store_key = ANY(:v{i})"
        # spelled as the partial index's predicate (`UNAVAILABLE`)
        clauses.append(
            f"({clause} AND NOT artifacts.available)" if unavailable_only else f"({clause})"
        )
    return clauses


def _id_joins(
    binds: list[BindParameter[Any]], keys: bool, shape: tuple[tuple[bool, bool], ...]
) -> list[str]:
    """SQLite's selects of the wanted records' ids, one a list: the list's `json_each` first,
    then the index (the storage by its root before both)."""
    selects = []
    if keys:
        binds.append(bindparam("keys", type_=String()))
        selects.append(
            "SELECT a.id FROM json_each(:keys) AS j CROSS JOIN artifacts AS a "
            'WHERE a."key" = j.value'
        )
    for i, (unavailable_only, by_root) in enumerate(shape):
        binds.append(bindparam(f"s{i}"))
        binds.append(bindparam(f"v{i}", type_=String()))
        # `NOT a.available`: the partial index's predicate (`UNAVAILABLE`)
        rest = " AND NOT a.available" if unavailable_only else ""
        if by_root:  # the reference storage of that root
            selects.append(
                f"SELECT a.id FROM storages AS st CROSS JOIN json_each(:v{i}) AS j CROSS JOIN "
                f"artifacts AS a WHERE st.type = :ref_type AND st.root = :s{i} "
                f"AND a.storage_id = st.id AND a.store_key = j.value{rest}"
            )
        else:
            selects.append(
                f"SELECT a.id FROM json_each(:v{i}) AS j CROSS JOIN artifacts AS a "
                f"WHERE a.storage_id = :s{i} AND a.store_key = j.value{rest}"
            )
    return selects
