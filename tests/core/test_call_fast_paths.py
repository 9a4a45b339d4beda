"""The Recorder's per-call short cuts (callcut) say what the long ways say: `suffix_of`'s
skip of the compound suffixes, a run's status log time text, `SeenFiles.get` of a place
nothing was remembered at, and `describe_new` of a path written out of `prepare`."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lakeline.artifacts.describe import describe_new
from lakeline.errors import InvalidKey, InvalidValue, PathNotFound
from lakeline.lineage.seen import SeenFiles
from lakeline.models.base import isoformat
from lakeline.storage.keys import _SUFFIX, COMPOUND_SUFFIXES, _last_segment, suffix_of


def long_suffix_of(name: str) -> str:
    """`suffix_of` as it was: every compound suffix tried, the regular expression each time."""
    base = _last_segment(name)
    lower = base.lower()
    if lower.endswith(COMPOUND_SUFFIXES):
        for compound in COMPOUND_SUFFIXES:
            if lower.endswith(compound) and len(base) > len(compound):
                return base[-len(compound) :]
    dot = base.rfind(".")
    suffix = base[dot:] if 0 < dot < len(base) - 1 else ""
    return suffix if _SUFFIX.match(suffix) else ""


PIECES = ["", ".", "/", "a", "tar", "gz", "GZ", "ome", "zarr", "x_y", "é", "-", "\n"]


def test_suffix_of_says_what_every_compound_tried_says() -> None:
    for n in range(1, 5):
        for parts in itertools.product(PIECES, repeat=n):
            name = "".join(parts)
            for text in (name, f"d/{name}", f"{name}/", f"a.b/{name}"):
                assert suffix_of(text) == long_suffix_of(text), text
    for text in (
        "x.tar.gz",
        "X.TAR.GZ",
        ".tar.gz",
        "a.fastq.gz",
        "b.ome.zarr/",
        "h.",
        "a." + "b" * 17,
    ):
        assert suffix_of(text) == long_suffix_of(text), text


def test_a_status_log_time_is_isoformat() -> None:
    draw = random.Random(31)
    for _ in range(20_000):
        at = datetime.fromtimestamp(draw.uniform(-2e9, 5e10), UTC)
        at = at.replace(microsecond=0) if draw.random() < 0.3 else at
        assert isoformat(at) == at.isoformat()
    other = datetime(2026, 12, 7, 17, 0, 1, 5, tzinfo=timezone(timedelta(hours=2)))
    assert isoformat(other) == other.isoformat() == "2026-12-07T17:00:01.000005+02:00"
    assert isoformat(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00+00:00"


def test_seen_files_of_a_place_never_remembered(tmp_path) -> None:
    seen = SeenFiles()
    where = str(tmp_path / "f.txt")
    assert seen.get(where, None) is None
    assert seen.get(where, "k") is None
    seen.forget(where)
    assert seen.get(where, None) is None


def outcome(call) -> str:
    try:
        artifact = call()
    except (InvalidKey, InvalidValue, PathNotFound, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    own = vars(artifact)
    names = ("suffix", "_source", "_source_is_dir", "_staged", "key", "kind", "_used_only")
    return repr({name: own.get(name) for name in names})


@pytest.mark.parametrize(
    ("name", "key", "kind"),
    [
        ("a.csv", None, None),
        ("a.csv", "x/b.csv", "log"),
        ("a.csv", "x/b.txt", None),  # the key's suffix is not the file's
        ("a.csv", "/abs.csv", None),  # a bad key
        ("a.csv", "b.csv", "x" * 300),  # a bad kind
        ("gone.csv", None, None),  # no such file
        ("gone.csv", "/abs.csv", None),  # the key refused before the path is looked at
    ],
)
def test_describe_new_of_a_path_is_prepare_s(tmp_path, name, key, kind) -> None:
    """Without a run, `describe_new` of a path writes `prepare` out: the same values, the
    same errors in the same order as through `prepare` (a run given takes that path)."""
    from lakeline.artifacts.describe import prepare
    from lakeline.models import Artifact

    (tmp_path / "a.csv").write_text("x\n")
    path = str(tmp_path / name)

    def through_prepare() -> Artifact:
        artifact = Artifact.__mapper__.class_manager.new_instance()
        prepare(
            artifact,
            path,
            key=key,
            description=None,
            kind=kind,
            version=None,
            format=None,
            run=None,
            instance=lambda: None,  # type: ignore[arg-type,return-value]
        )
        artifact._used_only = True
        return artifact

    fast = outcome(lambda: describe_new(path, lambda: None, key=key, kind=kind, used_only=True))  # type: ignore[arg-type,return-value]
    assert fast == outcome(through_prepare)
