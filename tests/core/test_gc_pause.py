"""Bulk saves run with the cyclic garbage collector paused (lakeline/gc_pause.py): no
collection traverses the thousands of records a save makes, and pauses nest across threads,
so one ending never lets a collection into another (the h5py read guard relies on it)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import lakeline as ll
import pytest
from lakeline import checkpoints
from lakeline.errors import PathNotFound
from lakeline.gc_pause import gc_paused
from lakeline.instance import Instance


def test_a_bulk_save_runs_with_the_collector_paused(instance: Instance, tmp_path: Path) -> None:
    """Whether the collector runs, seen mid-save (bytes stored, records not yet written) and
    at the reads of the files: paused throughout, on again after."""
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(100):
        (folder / f"f{i}.txt").write_text(f"file {i}")
    seen: list[bool] = []

    def note() -> None:
        seen.append(gc.isenabled())

    for _ in ("new", "again"):
        seen.clear()
        artifacts = [ll.Artifact(folder / f"f{i}.txt", key=f"k/f{i}.txt") for i in range(100)]
        with checkpoints.at("save.stored", note), checkpoints.at("source.read", note):
            saved = ll.save(artifacts)
        assert len(seen) == 101 and not any(seen) and gc.isenabled()
        assert len({a.id for a in saved}) == 100


def test_a_failed_save_turns_the_collector_back_on(instance: Instance, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    artifact = ll.Artifact(tmp_path / "a.txt", key="a.txt")
    (tmp_path / "a.txt").unlink()  # gone between Artifact() and the save
    with pytest.raises(PathNotFound, match="removed"):
        ll.save([artifact])
    assert gc.isenabled()


def test_pauses_nest_across_threads() -> None:
    """Thread A pauses, B pauses, A ends: still paused until B ends; then on again. A
    collector that was off before stays off."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    states: list[bool] = []

    def first() -> None:
        with gc_paused():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def second() -> None:
        a_in.wait(10)
        with gc_paused():
            b_in.set()
            a_out.wait(10)
            states.append(gc.isenabled())
        states.append(gc.isenabled())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert states == [False, True]
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_process_forked_during_a_pause_runs_with_the_collector() -> None:
    """A fork (multiprocessing's default on Linux) while another thread saves: the child
    has no such thread, so its pause never ends. Before, the child ran with the collector
    off for good (its own pauses nested inside the inherited one); now it starts afresh."""
    import os

    entered, leave = threading.Event(), threading.Event()

    def saving() -> None:
        with gc_paused():
            entered.set()
            leave.wait()

    thread = threading.Thread(target=saving)
    thread.start()
    try:
        assert entered.wait(30) and not gc.isenabled()
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once
            with gc_paused():
                pass
            os._exit(0 if gc.isenabled() else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        leave.set()
        thread.join()
    assert os.waitstatus_to_exitcode(status) == 0 and gc.isenabled()
