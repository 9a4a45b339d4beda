"""The format registry: which format saves an object, and which loads or opens a suffix."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeline.errors import MissingDependency, UnsupportedObject
from lakeline.gc_pause import gc_paused

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


@dataclass(frozen=True)
class Format:
    """How lakeline saves, loads and opens one kind of artifact.

    `types` name the Python types the format serialises, as `package.ClassName`
    (`pandas.DataFrame`): matching by name keeps heavy packages unimported until needed.
    `load(path)` and `save(obj, path)` work on local paths; `open(path, fs)` may stream from
    any fsspec filesystem unless `open_needs_local` is set.
    """

    name: str
    suffixes: tuple[str, ...]
    types: tuple[str, ...] = ()
    save: Callable[[Any, str], None] | None = None
    load: Callable[[str], Any] | None = None
    open: Callable[[str, AbstractFileSystem], Any] | None = None
    describe: Callable[[Any], dict[str, Any]] | None = None
    is_folder: bool = False
    open_needs_local: bool = False
    priority: int = field(default=0)


# Remote files are read in blocks of this size (kept in an LRU cache of blocks): HDF5 reads
# metadata scattered over the file, so small blocks read little of a large file.
REMOTE_BLOCK_SIZE = 1 << 20


def require(module: str, extra: str) -> Any:
    """Import `module` (a format's library) or raise `MissingDependency` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{module} is needed for this format but cannot be imported ({exc}): "
            f"install it with pip install 'lakeline[{extra}]'"
        ) from exc


def open_remote(fs: AbstractFileSystem, path: str) -> Any:
    """A seekable binary file on `fs` that fetches only the blocks a reader touches."""
    return fs.open(path, "rb", block_size=REMOTE_BLOCK_SIZE, cache_type="blockcache")


def open_remote_for_h5py(fs: AbstractFileSystem, path: str) -> Any:
    """`open_remote` for h5py, whose reads pause Python's cyclic garbage collector.

    h5py calls a Python file object while it holds its global lock, and fsspec serves the read
    on its own IO thread. A collection that starts on that thread and frees an h5py object waits
    for the same lock: both threads then wait forever (seen in the test suite: a backed h5ad
    opened from S3 hung in `h5py.File`). With the collector paused during a read, the IO thread
    frees nothing h5py owns."""
    return _GCPausedReads(open_remote(fs, path))


class _GCPausedReads:
    """A file whose reads run with the cyclic garbage collector paused (see above)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def read(self, size: int = -1) -> bytes:
        with gc_paused():
            return self._file.read(size)  # type: ignore[no-any-return]

    def readinto(self, buffer: Any) -> int:
        with gc_paused():
            return self._file.readinto(buffer)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:  # seek, tell, close, size, ...
        return getattr(self._file, name)


def is_local(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


_formats: dict[str, Format] | None = None
_lock = threading.Lock()


def _collect() -> dict[str, Format]:
    from lakeline.plugins import get_plugin_manager

    found: dict[str, Format] = {}

    def register(fmt: Format) -> None:
        if not isinstance(fmt, Format):
            raise TypeError(f"register_formats expects Format objects, got {fmt!r}")
        found[fmt.name] = fmt

    get_plugin_manager().hook.register_formats(register=register)
    return found


def formats() -> dict[str, Format]:
    """Every registered format by name."""
    global _formats
    with _lock:
        if _formats is None:
            _formats = _collect()
        return _formats


def reset() -> None:
    """Forget the collected formats (after plugins change)."""
    global _formats
    with _lock:
        _formats = None


def type_names(obj: Any) -> list[str]:
    """`package.ClassName` for the object's class and its bases."""
    return [f"{cls.__module__.split('.')[0]}.{cls.__qualname__}" for cls in type(obj).__mro__]


def for_object(obj: Any, name: str | None = None) -> Format:
    """The format that saves `obj` (the one named `name`, if given)."""
    names = type_names(obj)
    candidates = [f for f in formats().values() if f.save and set(f.types) & set(names)]
    if name is not None:
        chosen = [f for f in candidates if f.name == name]
        if not chosen:
            fits = ", ".join(f.name for f in candidates) or "none"
            raise UnsupportedObject(
                f"format {name!r} cannot save a {names[0]} (formats that can: {fits})"
            )
        return chosen[0]
    if not candidates:
        supported = sorted({t for f in formats().values() if f.save for t in f.types})
        raise UnsupportedObject(
            f"cannot make an artifact from a {names[0]}: give a file or folder path, or an "
            f"object of a supported type ({', '.join(supported)})"
        )
    return max(candidates, key=lambda f: f.priority)


def for_suffix(suffix: str) -> Format | None:
    """The format that reads files with `suffix`, or None."""
    matches = [f for f in formats().values() if suffix.lower() in f.suffixes]
    return max(matches, key=lambda f: f.priority) if matches else None
