"""The bytes of a save: copy-and-hash, place at the content address, check, clean up.

Copies are hashed as they are made (`transfer.stage`), so the recorded hash is the hash of
the stored bytes. The records' transaction locks each object it points to (`object_lock`)
and checks it is still there; deletes, failed saves and `lakeline gc` remove objects under
the same lock after checking no record references them (`delete.remove_unreferenced`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm.attributes import instance_dict

from lakeline.artifacts import transfer
from lakeline.db.locks import lock_keys
from lakeline.db.rows import chunks, fill_new, one_of
from lakeline.errors import SourceChanged
from lakeline.models import Artifact
from lakeline.storage.hashing import Digest, Fingerprint, fingerprint, remote_tag
from lakeline.storage.keys import OBJECTS_PREFIX
from lakeline.storage.roots import join, protocol_of, strip_protocol

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from sqlalchemy.orm import Session

    from lakeline.artifacts.save import InTransaction, Plan, Progress
    from lakeline.instance import Instance
    from lakeline.models import Storage


log = logging.getLogger(__name__)


def storage_of(plan: Plan) -> Storage:
    """The storage of a plan that stores bytes (never a reference's pending one)."""
    assert plan.storage is not None
    return plan.storage


def map_items(fn: Callable[[Any], Any], items: Sequence[Any], *, threads: bool = True) -> list[Any]:
    """`fn` over `items`; in threads only when the work waits on I/O (remote storage, big
    files): small local files are GIL-bound and run faster in one thread."""
    if not threads or len(items) < 16:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(fn, items))


BIG_FILE = 1 << 20


def io_bound(
    instance: Instance, artifacts: Sequence[Artifact], sizes: Sequence[int] | None = None
) -> bool:
    """Whether hashing and copying these wait on I/O (threads help) rather than the GIL.

    `sizes`: the sources' sizes when already known (hashed), else each source is stat'ed.
    """
    if protocol_of(instance.storage.root) != "local":
        return True
    for i, artifact in enumerate(artifacts):
        source = artifact._source
        if protocol_of(source) != "local" or artifact._source_is_dir:
            return True
        try:
            size = sizes[i] if sizes is not None else getattr(artifact, "_source_size", None)
            if size is None:
                size = os.stat(source).st_size
        except OSError:
            return True
        if size >= BIG_FILE:
            return True
    return False


KEEP_IN_MEMORY = 64 << 20  # per save: small files wait in memory up to this many bytes


class Budget:
    """How many bytes of small files a save may hold in memory (thread-safe)."""

    def __init__(self, limit: int = KEEP_IN_MEMORY) -> None:
        self.left = limit
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if n > self.left:
                return False
            self.left -= n
            return True


def copy_hashed(
    path: str, fs: AbstractFileSystem, is_dir: bool, folder: str, budget: Budget | None = None
) -> tuple[str | bytes, Digest]:
    """Copy a source to a temporary name in `folder` (or read a small one into memory, as
    `budget` allows), hashing it on the way: one read."""
    return transfer.stage(path, fs, is_dir, folder, budget.take if budget is not None else None)


def spool_folder(instance: Instance) -> str:
    """Where copies wait to be placed: beside the objects in local storage (a rename places
    them), else in the cache folder (an upload places them)."""
    root = instance.storage.root
    if protocol_of(root) == "local":
        return join(root, OBJECTS_PREFIX)
    from lakeline.config import cache_dir

    return str(cache_dir() / "spool")


def discard(tmp: str | bytes | None) -> None:
    if isinstance(tmp, str):
        transfer.remove_local(Path(tmp))


def referenced_keys(instance: Instance, wanted: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (storage id, store key) pairs some record already references (chunked IN)."""
    found: set[tuple[int, str]] = set()
    by_storage: dict[int, list[str]] = {}
    for storage_id, store_key in wanted:
        by_storage.setdefault(storage_id, []).append(store_key)
    with instance.sessions.read() as session:
        for storage_id, store_keys in by_storage.items():
            for chunk in chunks(sorted(set(store_keys))):
                stmt = select(Artifact.store_key).where(
                    Artifact.storage_id == storage_id, one_of(session, Artifact.store_key, chunk)
                )
                found.update((storage_id, key) for key in session.scalars(stmt.distinct()))
    return found


def upload(instance: Instance, plans: Sequence[Plan], progress: Progress | None) -> None:
    todo = [p for p in plans if not p.in_place]  # references are "in place" too
    if progress and len(todo) < len(plans):
        progress("upload", len(plans) - len(todo))  # registered in place: nothing to move
    if not todo:
        return
    # each storage's id and root read once: an ORM attribute read (~0.5 us) per plan else
    roots = {s: (s.id, s.root) for s in {storage_of(p) for p in todo}}
    local = {s for s, (_, root) in roots.items() if protocol_of(root) == "local"}
    # a small file in memory, for local storage: the object at its address, if any, is read
    # and compared (no query of the catalog; an object a killed save left is taken, one whose
    # bytes changed is replaced); elsewhere only objects a record references, or this save
    # stored, are taken when their size agrees (a request each in an object store)
    compared = {id(p) for p in todo if isinstance(p.tmp, bytes) and storage_of(p) in local}
    asked = [p for p in todo if id(p) not in compared]
    shared = (
        referenced_keys(instance, [(roots[storage_of(p)][0], p.store_key) for p in asked])
        if asked
        else set()
    )
    placed: set[tuple[int, str]] = set()  # objects this save stored (set.add: atomic)
    # whether the last object looked for in memory's way was missing: the next is then
    # written where nothing is yet (a new object costs no look first), else looked for first
    # (a re-save's are there: no write before the compare)
    fresh = [True]

    def one(plan: Plan) -> None:
        storage = storage_of(plan)
        storage_id, root = roots[storage]
        stored: Fingerprint | None = None
        assert plan.digest is not None
        if id(plan) in compared:
            assert isinstance(plan.tmp, bytes)
            target = join(root, plan.store_key)
            if fresh[0] or not os.access(target, os.F_OK):  # access: no exception when new
                written = transfer.place_new(plan.tmp, target)
                if written is not None:
                    _stored(plan, written)
                    placed.add((storage_id, plan.store_key))
                    if progress:
                        progress("upload", 1)
                    fresh[0] = True
                    return
                fresh[0] = False  # something is there: compared
            held = transfer.holding(target, plan.tmp)
            if held is not None:
                stored = Fingerprint(held.st_size, f"m:{held.st_mtime_ns}")
        elif (storage_id, plan.store_key) in shared or (storage_id, plan.store_key) in placed:
            with contextlib.suppress(FileNotFoundError):  # not stored: None
                stored = stored_fingerprint(instance, plan)
        if stored is not None and stored.size == plan.digest.size:
            discard(plan.tmp)  # identical bytes already stored: share them
            plan.tmp = None
            fill_new(plan.artifact, {"store_tag": stored.tag})  # new: no events
            if progress:
                progress("upload", 1)
            return
        store(instance, plan, root)
        placed.add((storage_id, plan.store_key))
        if progress:
            progress("upload", 1)

    sizes = [p.digest.size if p.digest else 0 for p in todo]
    map_items(one, todo, threads=io_bound(instance, [p.artifact for p in todo], sizes))


def _stored(plan: Plan, written: os.stat_result) -> None:
    """`plan`'s bytes in memory were written to its object (`written`: its stat)."""
    plan.tmp = None
    plan.uploaded = True
    fill_new(plan.artifact, {"store_tag": f"m:{written.st_mtime_ns}"})  # new: no events


def stored_fingerprint(instance: Instance, plan: Plan) -> Fingerprint:
    storage = storage_of(plan)
    target = join(storage.root, plan.store_key)
    assert plan.digest is not None
    if plan.digest.n_files is None and protocol_of(target) == "local":  # a file: its stat
        st = os.stat(target)
        return Fingerprint(st.st_size, f"m:{st.st_mtime_ns}")
    return fingerprint(
        instance.fs(storage), strip_protocol(target), is_dir=plan.digest.n_files is not None
    )


def store(instance: Instance, plan: Plan, root: str | None = None) -> None:
    """Put a plan's bytes at its store key and note the stored object's fingerprint.
    `root`: the root of the plan's storage, when the caller read it once for many plans."""
    storage = storage_of(plan)
    target = join(storage.root if root is None else root, plan.store_key)
    local = protocol_of(target) == "local"
    if local and isinstance(plan.tmp, bytes):  # a small file read into memory: written here
        _stored(plan, transfer.place(plan.tmp, target, None))
        return
    place, put, put_local = transfer.place, transfer.put, transfer.put_local
    target_fs = None if local else instance.fs(storage)  # local bytes are written with os
    answer = None
    if plan.tmp is not None:
        try:
            answer = place(plan.tmp, target, target_fs)
        finally:
            discard(plan.tmp)  # renamed away (local) or uploaded
            plan.tmp = None
    elif target_fs is None:  # a staged object: linked, kept until the commit
        put_local(plan.artifact._source, Path(target), link=True)
    else:
        assert plan.source_fs is not None
        put(plan.artifact._source, plan.source_fs, target, target_fs)
    plan.uploaded = True
    etag = answer.get("ETag") if isinstance(answer, dict) else None
    tag: str | None
    if isinstance(answer, os.stat_result):  # a local file just written: its stat
        tag = f"m:{answer.st_mtime_ns}"
    elif etag is not None:  # the PUT's answer: no HEAD request needed
        tag = remote_tag({"ETag": etag})
    else:
        tag = stored_fingerprint(instance, plan).tag
    fill_new(plan.artifact, {"store_tag": tag})  # a new object: no attribute events


def restore(instance: Instance, plans: Sequence[Plan]) -> None:
    """Store again bytes a concurrent delete or gc removed before this save's records were
    written: copied (and hashed) from the source once more; it must not have changed."""
    for plan in plans:
        source, digest = plan.artifact._source, plan.digest
        assert digest is not None and plan.source_fs is not None
        if not plan.artifact._staged:
            path = source if protocol_of(source) == "local" else strip_protocol(source)
            is_dir = digest.n_files is not None
            plan.tmp, again = copy_hashed(path, plan.source_fs, is_dir, spool_folder(instance))
            if again.hash != digest.hash:
                discard(plan.tmp)
                plan.tmp = None
                raise SourceChanged(f"{source} changed while it was being saved: save it again")
        store(instance, plan)


class BytesGone(Exception):
    """Objects this save's records point to were removed before the records were written."""

    def __init__(self, plans: list[Plan]) -> None:
        super().__init__(f"{len(plans)} stored objects disappeared")
        self.plans = plans


def object_lock(storage_id: int, store_key: str) -> str:
    """The name a save and a delete both lock before relying on or removing an object."""
    return f"{storage_id}:{store_key}"


def claim(
    instance: Instance, session: Session, plans: Sequence[Plan], *, locked: bool = False
) -> None:
    """Inside the records' transaction: lock the objects the new records point to and check
    they are still there (a delete or gc removes objects under the same lock, after checking
    no record references them, so once this commits they stay). `locked`: the transaction
    holds those locks already (artifacts/pipeline.py takes them before its last batches)."""
    needed = []
    ids: dict[Storage, int] = {}  # each storage's id read once (an ORM attribute read per plan)
    for p in plans:
        if p.digest is None or p.in_place or p.result is None:
            continue
        storage = storage_of(p)
        storage_id = ids.get(storage)
        if storage_id is None:
            storage_id = ids[storage] = storage.id
        stored = instance_dict(p.result)  # plain reads: a new record's values are all there
        if "store_key" not in stored or "storage_id" not in stored:
            stored = {"store_key": p.result.store_key, "storage_id": p.result.storage_id}
        if stored["store_key"] == p.store_key and stored["storage_id"] == storage_id:
            needed.append(p)
    if not needed:
        return
    if not locked and session.get_bind().dialect.name == "postgresql":  # SQLite: one writer
        locks = [object_lock(ids[storage_of(p)], p.store_key) for p in needed]
        lock_keys(session, "object", locks)

    prefixes = {s: _local_prefix(s.root) for s in ids}
    if all(prefixes.values()):  # local storages: a stat each, no grouping by folder
        missing = [p for p in needed if not _stored_here(p, prefixes[storage_of(p)] + p.store_key)]
    else:
        remote = protocol_of(instance.storage.root) != "local"
        found = map_items(partial(_missing, instance), _by_folder(needed, ids), threads=remote)
        missing = [p for group in found for p in group]
    if missing:
        raise BytesGone(missing)


LIST_FROM = 3  # objects of one folder from which one listing beats a request for each


def _by_folder(plans: Sequence[Plan], ids: dict[Storage, int]) -> list[list[Plan]]:
    """`plans` grouped by the folder of their objects (`ids`: each plan's storage's id)."""
    folders: dict[tuple[int, str], list[Plan]] = {}
    for plan in plans:
        folders.setdefault((ids[storage_of(plan)], plan.store_key.rsplit("/", 1)[0]), []).append(
            plan
        )
    return list(folders.values())


def _local_prefix(root: str) -> str:
    """What a local root's objects' paths start with (as join() makes them); "" elsewhere."""
    if protocol_of(root) != "local":
        return ""
    return root if root.endswith("/") else f"{root}/"


def _missing(instance: Instance, plans: Sequence[Plan]) -> list[Plan]:
    """Which of `plans` (objects in one folder) are not stored: a stat each locally; in an
    object store one listing of the folder for many of them, else a HEAD request each."""
    storage = storage_of(plans[0])
    root = storage.root
    if protocol_of(root) == "local":  # a stat each (a folder: that it is one)
        prefix = root if root.endswith("/") else f"{root}/"  # as join(): a plain local path
        return [p for p in plans if not _stored_here(p, prefix + p.store_key)]
    paths = [strip_protocol(join(root, p.store_key)) for p in plans]
    fs = instance.fs(storage)
    if len(plans) >= LIST_FROM:
        folder = paths[0].rsplit("/", 1)[0]
        listed = {name.rstrip("/") for name in fs.ls(folder, detail=False, refresh=True)}
        return [p for p, path in zip(plans, paths, strict=True) if path not in listed]

    def gone(plan: Plan) -> bool:
        try:
            stored_fingerprint(instance, plan)
        except FileNotFoundError:
            return True
        return False

    return [p for p in plans if gone(p)]


def missing_local(plans: Sequence[Plan]) -> list[Plan]:
    """Which of `plans` (new records' objects in local storages) are not stored, as `claim`
    checks them once they are locked."""
    prefixes: dict[Storage, str] = {}
    missing = []
    for plan in plans:
        storage = storage_of(plan)
        prefix = prefixes.get(storage)
        if prefix is None:
            prefix = prefixes[storage] = _local_prefix(storage.root)
            assert prefix, "a local storage"
        if not _stored_here(plan, prefix + plan.store_key):
            missing.append(plan)
    return missing


def _stored_here(plan: Plan, path: str) -> bool:
    """Whether a local object is there, as `stored_fingerprint` would find it."""
    assert plan.digest is not None
    if plan.digest.n_files is not None:
        return os.path.isdir(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def guarded(instance: Instance, also: InTransaction | None) -> InTransaction:
    def run(session: Session, plans: Sequence[Plan]) -> None:
        if also is not None:
            also(session, plans)
        claim(instance, session, plans)  # last: nothing waits on another lock once it holds these

    return run


def drop_unused(instance: Instance, plans: Sequence[Plan]) -> None:
    """After the commit: remove objects this save stored that its records do not point to
    (the record it turned out to be keeps its bytes elsewhere, e.g. registered in place)."""
    unused = []
    ids: dict[Storage, int] = {}  # each storage's id read once (an ORM attribute read per plan)
    for p in plans:
        if not p.uploaded or p.result is None:
            continue
        stored = instance_dict(p.result)  # plain reads: a saved record's values are all there
        if "store_key" not in stored or "storage_id" not in stored:
            stored = {"store_key": p.result.store_key, "storage_id": p.result.storage_id}
        storage = storage_of(p)
        if storage not in ids:
            ids[storage] = storage.id
        if (stored["storage_id"], stored["store_key"]) != (ids[storage], p.store_key):
            unused.append(p)
    if unused:
        cleanup(instance, unused)


def cleanup(instance: Instance, plans: Sequence[Plan]) -> None:
    """Remove copies not yet placed, and bytes this save stored unless a record (of another
    save) references them. Best effort: when the database is gone too, what stays is
    unreferenced and `lakeline gc` removes it."""
    from lakeline.artifacts.delete import remove_unreferenced

    for plan in plans:
        discard(plan.tmp)
        plan.tmp = None
    by_storage: dict[int, list[str]] = {}
    for plan in plans:
        if plan.uploaded:
            by_storage.setdefault(storage_of(plan).id, []).append(plan.store_key)
    for storage_id, store_keys in by_storage.items():
        try:
            remove_unreferenced(instance, instance.storage_by_id(storage_id), store_keys)
        except Exception as exc:  # the save's own error is the one to report
            log.warning("could not remove the bytes of a failed save (lakeline gc will): %s", exc)
