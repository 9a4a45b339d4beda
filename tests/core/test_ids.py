"""Uids come from the OS's random source, drawn in blocks: every character base62 and uniform,
none repeated, and a forked child never hands out what its parent drew."""

from __future__ import annotations

import os
import string
from collections import Counter

from lakeline.ids import BASE62, base62, new_stem, new_uid, new_uids


def test_uids_are_base62_unique_and_every_character_is_drawn_evenly() -> None:
    uids = [new_uid() for _ in range(20_000)] + new_uids(1_000) + [new_stem() for _ in range(99)]
    assert len(set(uids)) == len(uids)
    assert {len(u) for u in uids} == {16, 12}
    counts = Counter("".join(uids))
    assert set(counts) == set(BASE62) == set(string.digits + string.ascii_letters)
    mean = sum(counts.values()) / 62
    assert all(abs(n - mean) < 0.15 * mean for n in counts.values())  # ~5,200 each, sd ~72
    assert len(base62(10_000)) == 10_000  # longer than one draw from the OS


def test_a_forked_child_does_not_repeat_its_parents_uids() -> None:
    new_uid()  # the parent holds drawn characters not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next uids, to the parent
        os.write(write, "".join(new_uid() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    parent = "".join(new_uid() for _ in range(50))
    assert len(child) == len(parent) == 800
    child_uids = {child[i : i + 16] for i in range(0, 800, 16)}
    parent_uids = {parent[i : i + 16] for i in range(0, 800, 16)}
    assert not child_uids & parent_uids
