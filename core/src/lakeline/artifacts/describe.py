"""Describe an artifact before saving: validate its source (path or object) and its key."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.config import cache_dir
from lakeline.db.rows import fill_new
from lakeline.errors import (
    InvalidKey,
    PathNotFound,
    StorageError,
    UnsupportedPath,
)
from lakeline.ids import new_uid
from lakeline.storage.keys import suffix_of, validate_key
from lakeline.storage.roots import normalize_root, protocol_of, resolve_existing, strip_protocol
from lakeline.storage.walk import not_a_file
from lakeline.values import validate_label

if TYPE_CHECKING:
    from collections.abc import Callable

    from lakeline.instance import Instance
    from lakeline.models import Artifact, Run


def staging_dir() -> Path:
    """Where objects are serialised before upload (inside the local cache)."""
    path = cache_dir() / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path


# errors that mean "no such path" (what Path.exists() treats as False)
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def _check_suffix(key: str | None, suffix: str, what: str) -> None:
    if key is None:
        return
    key_suffix = suffix_of(key)
    if key_suffix.lower() != suffix.lower():
        raise InvalidKey(
            f"key {key!r} ends in {key_suffix or 'no suffix'!r} but the {what} is "
            f"{suffix or 'without suffix'!r}: give the key the same suffix"
        )


def _path_values(
    data: str | os.PathLike[str],
    key: str | None,
    instance: Callable[[], Instance],
    resolved: os.stat_result | None = None,
    read_now: bool = False,
) -> dict[str, Any]:
    """What a path source sets on its new artifact (its suffix, the resolved location, ...);
    raise on a missing or unreadable path, or a key whose suffix is not the path's.
    `read_now`: the caller reads a file right away (`unreadable` its error): not checked."""
    text = os.fspath(data)
    local = "://" not in text or protocol_of(text) == "local"
    if local:
        if resolved is not None and stat.S_ISDIR(resolved.st_mode):
            resolved = None  # a folder (rare): stat'ed here, a caller's stat may be older
        try:
            # exists, is_dir, is a plain file (`resolved`: the caller resolved `text` just now)
            location, st = (text, resolved) if resolved is not None else resolve_existing(text)
            mode = st.st_mode
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsupportedPath(
                    f"{text} is a symlink loop: it never reaches a file"
                ) from None
            if exc.errno not in _MISSING:
                raise
            raise PathNotFound(f"{text} does not exist: check the path") from None
        is_dir = stat.S_ISDIR(mode)
        if not is_dir and not stat.S_ISREG(mode):  # reading a FIFO or device never ends
            raise not_a_file(text, mode)
        if is_dir:
            if not os.access(location, os.R_OK) or not os.access(location, os.X_OK):
                raise unreadable(text)
        elif not read_now and not os.access(location, os.R_OK):
            raise unreadable(text)
    else:
        from lakeline.artifacts.locate import fs_for_location

        location = normalize_root(text)
        fs = fs_for_location(location, instance())
        try:
            exists = fs.exists(strip_protocol(location))
            is_dir = exists and fs.isdir(strip_protocol(location))
        except Exception as exc:
            raise StorageError(f"cannot read {location}: {type(exc).__name__}: {exc}") from exc
        if not exists:
            raise PathNotFound(f"{location} does not exist: check the URL")
    suffix = suffix_of(location)
    if key is not None:
        name = key.rpartition("/")[2]  # a valid key's last segment: its suffix is the key's
        if name != location.rpartition("/")[2] or name in ("", "."):  # else the same suffix
            _check_suffix(key, suffix, "file" if not is_dir else "folder")
    if local:  # `_source_size`: a hint (choosing threads for the save), never a fact recorded
        return {
            "suffix": suffix,
            "_source": location,
            "_source_is_dir": is_dir,
            "_staged": False,
            "_source_size": st.st_size,
        }
    return {"suffix": suffix, "_source": location, "_source_is_dir": is_dir, "_staged": False}


def unreadable(path: str) -> PathNotFound:
    """The error for a path lakeline may not read (the same from a check or a failed read)."""
    return PathNotFound(f"{path} cannot be read: check its permissions")


def _describe_object(artifact: Artifact, data: Any, key: str | None, fmt_name: str | None) -> None:
    from lakeline.formats.registry import for_object

    fmt = for_object(data, fmt_name)
    suffix = fmt.suffixes[0]
    if key is not None and suffix_of(key).lower() in fmt.suffixes:
        suffix = suffix_of(key)
    _check_suffix(key, suffix, f"{fmt.name} format")
    target = staging_dir() / f"{new_uid()}{suffix}"
    assert fmt.save is not None
    try:
        fmt.save(data, str(target))
    except BaseException:
        _remove(target)
        raise
    facts = fmt.describe(data) if fmt.describe else {}
    artifact.suffix = suffix
    artifact.otype = facts.get("otype")
    artifact.n_observations = facts.get("n_observations")
    artifact._source = str(target)
    artifact._source_is_dir = target.is_dir()
    artifact._staged = True


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def check_kind(kind: str) -> None:
    """Refuse (InvalidValue) an artifact kind the kind column cannot hold (too long, NUL)."""
    from lakeline.models.artifact import KIND_LENGTH
    from lakeline.values import check_text

    check_text(kind, KIND_LENGTH, "an artifact's kind")


def prepare(
    artifact: Artifact,
    data: Any,
    *,
    key: str | None,
    description: str | None,
    kind: str | None,
    version: str | None,
    format: str | None,
    run: Run | None,
    instance: Callable[[], Instance],
    resolved: os.stat_result | None = None,
    read_now: bool = False,
) -> None:
    """Fill in what is known before saving; raise on a bad path, key or object. `instance()`
    gives the instance whose storages (and their options) read a URL; `resolved`: the stat
    of a local path the caller has just resolved (`resolve_existing`), not resolved again;
    `read_now`: the caller reads the file right away, and raises `unreadable` if it cannot
    (no check before a read that fails anyway)."""
    if key is not None:
        key = validate_key(key)
    if description is not None and not isinstance(description, str):
        raise TypeError(f"description must be a string, got {type(description).__name__}")
    if version is not None:
        version = validate_label(version)
    if kind is not None:  # refused now, not when a queued save is written
        check_kind(kind)
    if isinstance(data, (str, os.PathLike)):
        if format is not None:
            raise TypeError("format= applies to objects; a path is stored as it is")
        values = _path_values(data, key, instance, resolved, read_now)
    else:
        _describe_object(artifact, data, key, format)
        values = {}
    values["key"], values["description"] = key, description
    values["kind"], values["version"] = kind, version
    fill_new(artifact, values)  # one update of the new record's dict, no attribute events
    if run is not None:
        if run.id is None:
            raise ValueError("the run must be saved before artifacts can point to it")
        artifact.run_id = run.id


def describe_new(
    data: Any,
    instance: Callable[[], Instance],
    *,
    key: str | None = None,
    kind: str | None = None,
    run: Run | None = None,
    resolved: os.stat_result | None = None,
    used_only: bool = False,
    read_now: bool = False,
) -> Artifact:
    """`Artifact(data, key=, kind=, run=)` whose URL is read through `instance()`'s storages
    (the constructor uses the current instance's); `resolved`, `read_now` as for `prepare`;
    `used_only`: a file a step only used (no producer in its save: `keying.may_be`)."""
    artifact: Artifact = (_NEW_ARTIFACT or _new_artifact())()
    if not isinstance(data, (str, os.PathLike)) or run is not None:
        prepare(
            artifact,
            data,
            key=key,
            description=None,
            kind=kind,
            version=None,
            format=None,
            run=run,
            instance=instance,
            resolved=resolved,
            read_now=read_now,
        )
        artifact._used_only = used_only
        return artifact
    # `prepare` of a path without a run, written out (the batched Recorder's, a file a call)
    if key is not None:
        key = validate_key(key)
    if kind is not None:  # refused now, not when a queued save is written
        check_kind(kind)
    values = _path_values(data, key, instance, resolved, read_now)
    values["key"], values["description"] = key, None
    values["kind"], values["version"] = kind, None
    values["_used_only"] = used_only
    fill_new(artifact, values)  # one update of the new record's dict, no attribute events
    return artifact


_NEW_ARTIFACT: Callable[[], Artifact] | None = None  # `_new_artifact`'s, once looked up


def _new_artifact() -> Callable[[], Artifact]:
    """The ORM's constructor of an Artifact without `__init__`, looked up once (imports in a
    function cost ~7 us a call: the hot path of the batched Recorder makes two a file)."""
    global _NEW_ARTIFACT
    from sqlalchemy.orm.instrumentation import manager_of_class

    from lakeline.models import Artifact

    _NEW_ARTIFACT = manager_of_class(Artifact).new_instance
    return _NEW_ARTIFACT
