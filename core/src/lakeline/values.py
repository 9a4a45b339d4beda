"""Checks on values users give lakeline to store: version labels, free text."""

from __future__ import annotations

from lakeline.errors import InvalidValue

LABEL_LENGTH = 64  # the `version` column of versioned records


def validate_label(label: str | None) -> str | None:
    """Return a version label if it can be stored: a string of at most 64 characters that is
    not a number (`version=3` means the third version everywhere, so a label "3" would be
    ambiguous) and holds no control characters."""
    if label is None:
        return None
    if not isinstance(label, str):
        raise InvalidValue(f"a version label must be a string, not {type(label).__name__}")
    if not label.strip():
        raise InvalidValue(f"version label {label!r} is empty")
    if label.strip().isdigit():
        raise InvalidValue(
            f"version label {label!r} is a number: numbers name versions by position "
            "(1 = the first), give a label such as 'v7'"
        )
    if len(label) > LABEL_LENGTH:
        raise InvalidValue(
            f"version label is {len(label)} characters long; the limit is {LABEL_LENGTH}"
        )
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in label):
        raise InvalidValue(f"version label {label!r} contains control characters")
    return label


def check_text(value: str, length: int | None, field: str | None = None) -> str:
    """`value` if both databases store it alike: no NUL byte (PostgreSQL refuses them, SQLite
    would store them) and at most `length` characters (PostgreSQL refuses longer values,
    SQLite would store them). Raised for queries too: such a value matches nothing. `field`:
    what the value is, put in front of the message ("a run's params: text ...")."""
    try:
        return _checked_text(value, length)
    except InvalidValue as exc:
        if field is None:
            raise
        raise InvalidValue(f"{field}: {exc}") from None


def _checked_text(value: str, length: int | None) -> str:
    if "\x00" in value:
        raise InvalidValue(
            f"text {_preview(value)} contains a NUL byte (\\x00), which a catalog value may not "
            "hold: remove it"
        )
    if has_surrogate(value):
        raise InvalidValue(
            f"text {_preview(value)} holds a lone surrogate, which UTF-8 (both databases' "
            "text) cannot encode: an undecodable byte of a file name (os.fsdecode)? decode it"
        )
    if length is not None and len(value) > length:
        raise InvalidValue(
            f"text {_preview(value)} is {len(value)} characters long; that field holds at most "
            f"{length}"
        )
    return value


def has_surrogate(value: str) -> bool:
    """Whether `value` holds a lone surrogate ("\\udce9": os.fsdecode's undecodable byte)."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _preview(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
