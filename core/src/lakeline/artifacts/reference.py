"""References: artifacts for data lakeline knows of but holds no bytes for.

`Artifact.reference("postgres://warehouse/public/words")` describes data by its location (any
URL scheme, or a local path), optionally with a hash, size and key. Nothing is read, hashed,
copied or stat'ed; the record is saved with `available=False`.

Where a reference lives: a location inside a registered storage root is placed in that storage
(`store_key` = its path inside the root, and the key defaults to it, as for files registered in
place). Any other location is placed in a *reference storage*: one storage record per URL scheme
(root `scheme://`, or `/` for local paths) of type `reference`, created by the first save that
needs it and only ever used for references; its `store_key` is the rest of the location.
Reference storages are never searched for files (`locate.storage_containing`), and asking for
their filesystem is an error.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from lakeline.errors import InvalidKey, InvalidReference
from lakeline.storage.keys import INTERNAL_PREFIX, REFERENCE_STORAGE, suffix_of, validate_key
from lakeline.storage.roots import protocol_of
from lakeline.values import has_surrogate

if TYPE_CHECKING:
    from lakeline.models import Artifact, Run, Storage

LOCAL_ROOT = "/"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
MAX_LOCATION = 2048


def is_reference_storage(storage: Storage) -> bool:
    """Whether `storage` only holds references (no filesystem serves it)."""
    return storage.type == REFERENCE_STORAGE


def normalize_location(location: object) -> str:
    """A reference's location: `scheme://rest` (scheme lowercased, no trailing slash) or an
    absolute local path, normalised lexically (symlinks are not resolved: nothing is read)."""
    if not isinstance(location, (str, os.PathLike)):
        raise InvalidReference(
            f"a reference's location is a URL or a path, not {type(location).__name__}"
        )
    text = os.fspath(location)
    if not isinstance(text, str):
        raise InvalidReference("a reference's location must be text, not bytes")
    if not text or not text.strip():
        raise InvalidReference("the reference's location is empty: give a URL or a path")
    if text.strip() != text or "\x00" in text:
        raise InvalidReference(
            f"location {text!r} has leading/trailing whitespace or a NUL character"
        )
    if not text.isascii() and has_surrogate(text):
        raise InvalidReference(
            f"location {text!r} holds a lone surrogate (a byte of a file name UTF-8 cannot "
            "decode, as os.fsdecode gives it): no database can store it; rename the file"
        )
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if not _SCHEME.fullmatch(scheme):
            raise InvalidReference(f"location {text!r} has no valid URL scheme before '://'")
        scheme = scheme.lower()
        if scheme == "file":
            if not rest.startswith("/"):
                raise InvalidReference(
                    f"file URL {text!r} names no absolute path: write file:///abs/path"
                )
            text = rest
        else:
            rest = rest.rstrip("/")
            if not rest:
                raise InvalidReference(f"location {text!r} names nothing after {scheme}://")
            return _checked(f"{scheme}://{rest}")
    return _checked(os.path.abspath(os.path.expanduser(text)))


def _checked(location: str) -> str:
    if len(location) > MAX_LOCATION:
        raise InvalidReference(
            f"the location is {len(location)} characters long; the limit is {MAX_LOCATION}"
        )
    return location


def reference_root(location: str) -> tuple[str, str]:
    """(root of the reference storage, store key inside it) for a normalised location."""
    if protocol_of(location) == "local":
        return LOCAL_ROOT, location.lstrip("/")
    scheme, rest = location.split("://", 1)
    return f"{scheme}://", rest


def _suffix(location: str) -> str:
    path = location.split("://", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    return suffix_of(path)


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidReference(f"{name} must be a string, not {type(value).__name__}")
    if not value or value.strip() != value or any(c.isspace() for c in value):
        raise InvalidReference(f"{name} {value!r} is empty or contains whitespace")
    if len(value) > limit:
        raise InvalidReference(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


def describe_reference(
    artifact: Artifact,
    location: object,
    *,
    key: str | None,
    hash: str | None,
    hash_type: str | None,
    size: int | None,
    description: str | None,
    kind: str | None,
    run: Run | None,
) -> None:
    """Fill in an unsaved reference; raise on bad input (nothing is read or written)."""
    where = normalize_location(location)
    if key is not None:
        key = validate_key(key)
    if hash is None:
        if hash_type is not None:
            raise InvalidReference(f"hash_type={hash_type!r} was given without a hash")
    else:
        hash = _text(hash, "hash", 128)
        if hash_type is None:
            raise InvalidReference(
                f"hash {hash!r} needs its algorithm: pass hash_type= (e.g. 'sha256', 'md5')"
            )
        hash_type = _text(hash_type, "hash_type", 32)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise InvalidReference(f"size must be a non-negative integer of bytes, got {size!r}")
    if description is not None and not isinstance(description, str):
        raise TypeError(f"description must be a string, got {type(description).__name__}")
    if kind is not None and (not isinstance(kind, str) or len(kind) > 64):
        raise InvalidReference(f"kind must be a string of at most 64 characters, got {kind!r}")
    suffix = _suffix(where)
    if key is not None and suffix_of(key).lower() != suffix.lower():
        raise InvalidKey(
            f"key {key!r} ends in {suffix_of(key) or 'no suffix'!r} but the location is "
            f"{suffix or 'without suffix'!r}: give the key the same suffix"
        )
    if run is not None and run.id is None:
        raise ValueError("the run must be saved before artifacts can point to it")
    artifact.key = key
    artifact.description = description
    artifact.kind = kind
    artifact.version = None
    artifact.suffix = suffix
    artifact.hash, artifact.hash_type, artifact.size = hash, hash_type, size
    if run is not None:
        artifact.run_id = run.id
    artifact._source = where
    artifact._source_is_dir = False
    artifact._staged = False
    artifact._reference = True
    artifact.available = False


def default_key(location: str, key_in_root: str) -> str:
    """The key of a reference inside a storage root that was given none (its path there)."""
    if key_in_root.split("/")[0] == INTERNAL_PREFIX:
        raise InvalidKey(f"{location} lies in lakeline's internal folder; give another location")
    return validate_key(key_in_root)


def unavailable_message(artifact: Artifact, location: str) -> str:
    """What an error about reading a reference says."""
    name = f"artifact {artifact.uid}" + (f" ({artifact.key})" if artifact.key else "")
    if artifact.kind == "transient" and artifact.hash is not None:
        return (
            f"{name} was deleted by the workflow (temp) that made it, at {location}: "
            "lakeline keeps its hash and lineage, not its bytes. Run its step again to "
            "make it (a save of the same bytes there makes it available)"
        )
    return (
        f"{name} is a reference to {location}: lakeline holds no bytes for it. Save the "
        "bytes (lakeline.Artifact(path).save() of a file with the same hash) to make it "
        "available, or read it from its location with the tool that owns it"
    )
