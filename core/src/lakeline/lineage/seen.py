"""Local files a Recorder registered, remembered by their stat, so that a file one step made and
the next step uses is linked, not read and hashed again (a BAM of many GB is hashed once).

A file counts as unchanged while its size, modification and change times (ns) and inode are
the same; anything else (rewritten, replaced, touched) is hashed again as usual.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

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


class SeenFiles:
    """(location, key) -> (stat when registered, its artifact); thread-safe, bounded. Links
    to one file are one location with several keys (each link's record is its own)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._files: OrderedDict[tuple[str, str | None], tuple[Stat, Artifact]] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def remember(self, location: str, artifact: Artifact | None, stat: Stat | None = None) -> None:
        """`artifact` is what `location` holds now, or when its stat was `stat` (local files
        only; folders are not kept)."""
        if artifact is None or artifact.id is None or not os.path.isfile(location):
            return
        stat = stat or file_stat(location)
        if stat is None:
            return
        entry = (location, artifact.key)
        with self._lock:
            self._files[entry] = (stat, artifact)
            self._files.move_to_end(entry)
            while len(self._files) > self._limit:
                self._files.popitem(last=False)

    def get(
        self, location: str, key: str | None, contained: tuple[Any, str] | None = None
    ) -> Artifact | None:
        """The artifact with `key` registered for `location` if the file is unchanged since;
        without a key, the key a save derives in the storage `contained` in (a link to a
        file and the file are one location with two records, each its own key)."""
        if key is None and contained is not None:
            key = contained[1]
        with self._lock:
            entry = self._files.get((location, key))
        if entry is None:
            return None
        stat, artifact = entry
        if file_stat(location) != stat or artifact.key != key:
            return None
        return artifact

    def forget(self, location: str) -> None:
        with self._lock:
            for entry in [e for e in self._files if e[0] == location]:
                del self._files[entry]
