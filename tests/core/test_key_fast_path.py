"""`validate_key`'s fast path (one match for the usual key) says what the full checks say:
every string of a tricky alphabet up to four characters, and the edge cases by name."""

from __future__ import annotations

import itertools

import pytest
from lakeline.errors import InvalidKey
from lakeline.storage.keys import INTERNAL_PREFIX, validate_key


class Text(str):
    """A str subclass: `validate_key` takes it through its full checks, never the fast path."""


def outcome(key: str) -> str:
    try:
        return "ok " + validate_key(key)
    except InvalidKey as exc:
        return f"refused {exc}"


def full(key: str) -> str:
    return outcome(Text(key))


ALPHABET = "a.-/_ \\:~é\x00\t+"
NAMED = [
    INTERNAL_PREFIX,
    f"{INTERNAL_PREFIX}/x",
    f"{INTERNAL_PREFIX}x/y",
    f"x/{INTERNAL_PREFIX}",
    "a/./b",
    "a/../b",
    "../x",
    "x/..",
    ".hidden/..x/x..",
    "x" * 255,
    "x" * 256,
    "a/" * 127 + "b",
    "s3://bucket/x",
    "raw/reads.fastq.gz",
    "trailing/",
    "CON:x",
    "a=b,c@d%e~f+g",
]


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_the_fast_path_agrees_with_the_full_checks(size: int) -> None:
    for chars in itertools.product(ALPHABET, repeat=size):
        key = "".join(chars)
        assert outcome(key) == full(key), key


@pytest.mark.parametrize("key", NAMED)
def test_named_edge_cases_agree(key: str) -> None:
    assert outcome(key) == full(key)
