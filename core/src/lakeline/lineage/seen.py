"""Local files a Recorder registered, remembered by their stat, so that a file one step made and
the next step uses is linked, not read and hashed again (a BAM of many GB is hashed once).

A file counts as unchanged while its size, modification and change times (ns) and inode are
the same; anything else (rewritten, replaced, touched) is hashed again as usual.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from lakeline.lineage.handles import loaded

if TYPE_CHECKING:
    from lakeline.models import Artifact

Stat = tuple[int, int, int, int]
LIMIT = 100_000  # files remembered per Recorder (least recently seen forgotten first)


def file_stat(location: str) -> Stat | None:
    try:
        st = os.stat(location)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def file_state(path: str) -> tuple[int, int, int, int] | None:
    """A local regular file's (inode, size, mtime_ns, ctime_ns): what an integration keeps at a
    task's end to tell, when it records the task later, whether another task rewrote the file
    meanwhile. None when no stat can vouch for that: no file there, or a folder (its stat does
    not change when a file inside it is rewritten in place)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not S_ISREG(st.st_mode):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class SeenFiles:
    """(location, key) -> (stat when registered, its artifact); thread-safe, bounded. Links
    to one file are one location with several keys (each link's record is its own)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._files: OrderedDict[tuple[str, str | None], tuple[Stat, Artifact]] = OrderedDict()
        self._keys: dict[str, set[str | None]] = {}  # location -> keys remembered there
        self._lock = threading.Lock()
        self._limit = limit

    def remember(self, location: str, artifact: Artifact | None, stat: Stat | None = None) -> None:
        """`artifact` is what `location` holds now, or when its stat was `stat` (local files
        only; folders are not kept)."""
        if artifact is None or loaded(artifact, "id") is None:
            return
        if stat is None:  # a given stat is a file's (`get` compares it with the file's then)
            stat = file_stat(location) if os.path.isfile(location) else None
            if stat is None:
                return
        key = loaded(artifact, "key")
        entry = (location, key)
        with self._lock:
            self._files[entry] = (stat, artifact)
            self._files.move_to_end(entry)
            self._keys.setdefault(location, set()).add(key)
            while len(self._files) > self._limit:
                (old, key), _ = self._files.popitem(last=False)
                self._drop(old, key)

    def _drop(self, location: str, key: str | None) -> None:
        keys = self._keys.get(location, set())
        keys.discard(key)
        if not keys:
            self._keys.pop(location, None)

    def get(
        self,
        location: str,
        key: str | None,
        contained: tuple[Any, str] | None = None,
        now: Stat | None = None,
    ) -> Artifact | None:
        """The artifact with `key` registered for `location` if the file is unchanged since;
        without a key, the one keyed by its place in the storage `contained` in (the key a
        save derives, or that key qualified by the root's folders; never a link's record:
        links to one file are one location, each its own key), or outside every storage the
        one record remembered there. `now`: the file's `file_stat` the caller just took."""
        if location not in self._keys:  # nothing remembered there (a dict read is atomic)
            return None
        with self._lock:
            if key is None:  # the one keyed by its place, or (outside storages) the one there
                keys = self._keys.get(location, set())
                if contained is None:
                    key = next(iter(keys)) if len(keys) == 1 else None
                else:
                    key = _own(keys, contained)
            entry = self._files.get((location, key))
        if entry is None:
            return None
        stat, artifact = entry
        if (file_stat(location) if now is None else now) != stat or artifact.key != key:
            return None
        return artifact

    def forget(self, location: str) -> None:
        with self._lock:
            for key in list(self._keys.get(location, ())):
                self._files.pop((location, key), None)
                self._drop(location, key)

    def locations_of(self, artifact: Artifact) -> list[str]:
        """Where `artifact` is remembered (a record deleted since: forgotten by the caller)."""
        with self._lock:
            return [where for (where, _), (_, a) in self._files.items() if a is artifact]


def _own(keys: set[str | None], contained: tuple[Any, str]) -> str:
    """Of the keys remembered at a place in a storage (`contained`: it and the path there),
    the one of the file itself: the path, or the path qualified by the root's last folders
    (as `keying.qualified_keys`, not imported: it loads the database helpers)."""
    storage, derived = contained
    if derived in keys or not keys:
        return derived
    root = "/" + str(storage.root).strip("/") + "/"
    for key in keys:
        if key is not None and key.endswith("/" + derived):
            folders = key[: -len(derived) - 1]
            if folders and root.endswith("/" + folders + "/"):
                return key
    return derived
