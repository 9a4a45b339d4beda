"""Bytes without a record: unreferenced objects and stale partial copies (`lakeline gc`).

A save killed between storing its bytes and committing its records, or whose database went
away so that its cleanup could not ask which bytes another record uses, leaves objects in
`.lakeline/objects/` that no record references; a copy killed midway leaves a `.partial`.
Both are collected once older than a grace period (a save in flight is younger). Objects are
removed under the lock a save takes before relying on them, after checking again that no
record references them, so a save that commits meanwhile keeps its bytes (or stores them
again, see `artifacts/store.claim`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lakeline.artifacts.transfer import PARTIAL
from lakeline.models import Artifact
from lakeline.storage.keys import OBJECTS_PREFIX
from lakeline.storage.roots import join, strip_protocol

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.models import Storage


@dataclass
class Garbage:
    """Something `gc` removes: an unreferenced object or a stale partial copy."""

    storage: Storage | None  # None: a copy in this machine's spool folder (S3 uploads)
    store_key: str  # inside the storage root (the full path for the spool)
    kind: str  # "unreferenced" or "partial"
    size: int
    age_s: float

    @property
    def location(self) -> str:
        return self.store_key if self.storage is None else join(self.storage.root, self.store_key)


def _mtime(info: dict[str, Any]) -> float:
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
    return time.time()  # unknown: as young as can be, never collected early


def _owned(instance: Instance) -> list[Storage]:
    """Storages that receive lakeline's uploads (not the reference storages `scheme://`)."""
    return [
        s
        for s in instance.storages()
        if s.instance_uid == instance.uid and not s.root.endswith("/")
    ]


def _entries(instance: Instance, storage: Storage) -> dict[str, tuple[int, float]]:
    """(total size, newest mtime) of every object or partial under the objects folder, by
    store key (`.lakeline/objects/<hh>/<name>` or a partial at any depth up to that)."""
    fs = instance.fs(storage)
    root = strip_protocol(storage.root).rstrip("/")
    base = f"{root}/{OBJECTS_PREFIX}"
    fs.invalidate_cache(base)
    if not fs.exists(base):
        return {}
    found: dict[str, tuple[int, float]] = {}
    for path, info in fs.find(base, detail=True).items():
        parts = path[len(root) + 1 :].split("/")
        depth = len(OBJECTS_PREFIX.split("/"))
        inner = parts[depth:]
        cut = next((i for i, p in enumerate(inner[:2]) if p.endswith(PARTIAL)), None)
        key = "/".join(parts[: depth + (cut + 1 if cut is not None else 2)])
        size, newest = found.get(key, (0, 0.0))
        found[key] = (size + int(info.get("size") or 0), max(newest, _mtime(info)))
    return found


def _spooled(now: float, grace_s: float) -> list[Garbage]:
    """Copies waiting for an upload to an object store that a killed save left behind."""
    from lakeline.config import cache_dir

    spool = cache_dir() / "spool"
    found = []
    for path in sorted(spool.glob(f"*{PARTIAL}")) if spool.is_dir() else []:
        files = [path] if not path.is_dir() else [p for p in path.rglob("*") if p.is_file()]
        stats = [f.stat() for f in files]
        age = now - max((st.st_mtime for st in stats), default=path.stat().st_mtime)
        if age >= grace_s:
            found.append(Garbage(None, str(path), "partial", sum(s.st_size for s in stats), age))
    return found


def find_garbage(instance: Instance, *, grace_s: float) -> list[Garbage]:
    """Unreferenced objects and partial copies older than `grace_s` seconds."""
    now = time.time()
    garbage = _spooled(now, grace_s)
    for storage in _owned(instance):
        entries = _entries(instance, storage)
        if not entries:
            continue
        with instance.sessions.read() as session:
            stmt = select(Artifact.store_key).where(
                Artifact.storage_id == storage.id,
                Artifact.store_key.startswith(OBJECTS_PREFIX + "/", autoescape=True),
            )
            referenced = set(session.scalars(stmt.distinct()))
        for key, (size, newest) in sorted(entries.items()):
            age = now - newest
            if age < grace_s or key in referenced:
                continue
            kind = "partial" if key.endswith(PARTIAL) else "unreferenced"
            garbage.append(Garbage(storage, key, kind, size, age))
    return garbage


def remove_garbage(instance: Instance, garbage: list[Garbage]) -> list[Garbage]:
    """Remove what `find_garbage` found; objects a record took meanwhile stay. Returns what
    was removed."""
    from lakeline import checkpoints
    from lakeline.artifacts.delete import remove_unreferenced
    from lakeline.artifacts.transfer import remove, remove_local

    checkpoints.reach("gc.listed")
    removed = []
    by_storage: dict[int, list[Garbage]] = {}
    for item in garbage:
        if item.storage is None:
            remove_local(Path(item.location))
            removed.append(item)
        elif item.kind == "partial":
            remove(item.location, instance.fs(item.storage))
            removed.append(item)
        else:
            by_storage.setdefault(item.storage.id, []).append(item)
    for items in by_storage.values():
        storage = items[0].storage
        assert storage is not None
        gone = set(remove_unreferenced(instance, storage, [i.store_key for i in items]))
        removed.extend(i for i in items if i.store_key in gone)
    return removed
