"""Artifact keys: validation, suffixes, and where uploaded bytes are placed."""

from __future__ import annotations

import re
import unicodedata

from lakeline.errors import InvalidKey
from lakeline.values import has_surrogate

# Internal folder inside every storage root; users' keys may not point into it.
INTERNAL_PREFIX = ".lakeline"
OBJECTS_PREFIX = f"{INTERNAL_PREFIX}/objects"
# Storage.type of the storages that only record references (see artifacts/reference.py)
REFERENCE_STORAGE = "reference"

COMPOUND_SUFFIXES = (
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".ome.zarr",
    ".ome.tiff",
    ".ome.tif",
    ".fastq.gz",
    ".fq.gz",
    ".vcf.gz",
    ".bed.gz",
    ".gtf.gz",
    ".gff.gz",
    ".fa.gz",
    ".fasta.gz",
    ".csv.gz",
    ".tsv.gz",
    ".txt.gz",
    ".json.gz",
)
_SUFFIX = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9_-]{0,15}$")
# C0 and C1 controls, DEL, line/paragraph separators and the bidirectional overrides and
# isolates: characters that move a terminal's cursor, split lines or reorder what is shown
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SEGMENT_BYTES = 255  # the longest file name most filesystems take (NAME_MAX)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BAD_SEGMENTS = frozenset(("", ".", ".."))


# a key every check below accepts as it is (ASCII: NFC already; no space, control character,
# backslash, colon; no empty, '.' or '..' segment, no leading or trailing '/'): one match
_PLAIN = re.compile(r"(?:(?!\.\.?(?:/|\Z))[\w.+=,@%~-]+/)*(?!\.\.?\Z)[\w.+=,@%~-]+", re.ASCII)


def validate_key(key: str) -> str:
    """Return `key` if it is a clean relative path; raise InvalidKey naming the problem."""
    if (  # the usual key (a path in a storage root, each file's): one match, as said above
        type(key) is str
        and len(key) <= SEGMENT_BYTES  # then no segment is longer (ASCII: a byte a character)
        and _PLAIN.fullmatch(key) is not None
        and key.partition("/")[0] != INTERNAL_PREFIX
    ):
        return key
    if not isinstance(key, str):
        raise InvalidKey(f"a key must be a string, not {type(key).__name__}")
    key = unicodedata.normalize("NFC", key)  # one key however the text was composed
    if not key or key.strip() != key:
        raise InvalidKey(f"key {key!r} is empty or has leading/trailing whitespace")
    control = CONTROL.search(key)
    if control:
        raise InvalidKey(
            f"key {key!r} contains the control character {control.group()!r}: keys are "
            "printable paths"
        )
    if not key.isascii() and has_surrogate(key):
        raise InvalidKey(
            f"key {key!r} holds a lone surrogate (a byte of a file name UTF-8 cannot decode, as "
            "os.fsdecode gives it), which no database text holds: give a key, or rename the file"
        )
    if "\\" in key:
        raise InvalidKey(f"key {key!r} contains a backslash: use '/' to separate folders")
    if key.startswith("/") or ("://" in key and _URL.match(key)):
        raise InvalidKey(f"key {key!r} is absolute: give a relative path such as 'raw/reads.csv'")
    parts = key.rstrip("/").split("/")
    if not _BAD_SEGMENTS.isdisjoint(parts):
        raise InvalidKey(f"key {key!r} has an empty, '.' or '..' segment: give a clean path")
    if parts[0] == INTERNAL_PREFIX:
        raise InvalidKey(f"key {key!r} points into lakeline's internal folder {INTERNAL_PREFIX}/")
    if len(key) > 1024:
        raise InvalidKey(f"key is {len(key)} characters long; the limit is 1024")
    for part in parts if len(key) * 4 > SEGMENT_BYTES else ():  # UTF-8: <= 4 bytes a character
        if len(part.encode()) > SEGMENT_BYTES:
            raise InvalidKey(
                f"key {key[:40]!r}... has a path segment of {len(part.encode())} bytes; the "
                f"limit is {SEGMENT_BYTES} bytes (UTF-8), as for file names"
            )
    return key.rstrip("/")


def _last_segment(name: str) -> str:
    """`PurePosixPath(name).name` without building a path: the last segment that is not
    empty or '.'."""
    last = name.rpartition("/")[2]
    if last and last != ".":  # the usual case: no split of the whole path
        return last
    for segment in reversed(name.split("/")):
        if segment and segment != ".":
            return segment
    return ""


# the last parts of the compound suffixes ("gz", "zarr", ...): a name ending otherwise has none
_COMPOUND_ENDS = frozenset(compound.rpartition(".")[2] for compound in COMPOUND_SUFFIXES)
_SUFFIXES: dict[str, str] = {}  # `_SUFFIX`'s verdict on a suffix text: itself, or "" (bounded)


def suffix_of(name: str) -> str:
    """The file suffix of `name`, recognising compound ones (`.tar.gz`, `.ome.zarr`)."""
    base = name.rpartition("/")[2]
    if not base or base == ".":
        base = _last_segment(name)
    dot = base.rfind(".")
    if base[dot + 1 :].lower() not in _COMPOUND_ENDS:  # the usual name: no compound suffix
        suffix = base[dot:] if 0 < dot < len(base) - 1 else ""  # as PurePosixPath.suffix
        known = _SUFFIXES.get(suffix)  # a file's suffix is one of a few: matched once each
        if known is None:
            if len(_SUFFIXES) >= 1024:
                _SUFFIXES.clear()
            known = _SUFFIXES[suffix] = suffix if _SUFFIX.match(suffix) else ""
        return known
    lower = base.lower()
    if lower.endswith(COMPOUND_SUFFIXES):
        for compound in COMPOUND_SUFFIXES:
            if lower.endswith(compound) and len(base) > len(compound):
                return base[-len(compound) :]
    dot = base.rfind(".")
    suffix = base[dot:] if 0 < dot < len(base) - 1 else ""  # as PurePosixPath.suffix
    return suffix if _SUFFIX.match(suffix) else ""


def object_key(hash_hex: str, suffix: str) -> str:
    """Where uploaded bytes with this content hash live inside a storage root."""
    return f"{OBJECTS_PREFIX}/{hash_hex[:2]}/{hash_hex}{suffix}"
