"""A file saved where a reference was recorded fills that reference in, found only at its
place in the reference storage named by root (`Places.lookup`'s by-root list: a lone save
does not look that storage up first), never by key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance


def test_a_file_fills_the_reference_at_its_location_under_another_key(
    instance: Instance, tmp_path: Path
) -> None:
    src = tmp_path / "results" / "out.txt"
    digest = hashlib.sha256(b"hello").hexdigest()
    ref = ll.Artifact.reference(src, key="tables/other.txt", hash=digest, hash_type="sha256")
    ref.save()
    src.parent.mkdir()
    src.write_text("hello")
    saved = ll.Artifact(src).save()  # its own key would differ: found by place alone
    assert saved.uid == ref.uid and not saved.created
    assert saved.key == "tables/other.txt" and saved.available
    assert ll.Artifact.filter(is_latest=None).count() == 1
