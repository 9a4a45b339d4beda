"""The plugin freezes what the collector tracks once it has set up (Snakemake's imports and
its own set-up: no collection walks them again during the run) and gives it back at close;
what another party froze, and a strict plugin that stops the run, it leaves alone."""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lakeline.instance import Instance


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("snakemake", logging.INFO, "x.py", 1, "", (), None)
    record.__dict__.update(extra)
    return record


class Cycle:
    """Garbage only the cyclic collector frees."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def thawed() -> Iterator[None]:
    """No frozen objects before or after the test (a failing test must not leave any)."""
    assert gc.get_freeze_count() == 0
    try:
        yield
    finally:
        gc.unfreeze()


def _handler(**settings: object) -> object:
    from snakemake_interface_logger_plugins.tests import MockOutputSettings
    from snakemake_logger_plugin_lakeline import LogHandler, LogHandlerSettings

    return LogHandler(common_settings=MockOutputSettings(), settings=LogHandlerSettings(**settings))


def _workdir(tmp_path: Path) -> Path:
    """A workflow's folder with its one input, data/raw.txt."""
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw.txt").write_text("alpha")
    return root


def _first_job(handler: Any, root: Path) -> None:
    """Emit the workflow's start and its first job (rule `make`, reading data/raw.txt)."""
    handler.emit(
        _record(
            event="workflow_started", workflow_id="w-1", lakeline_workflow={"workdir": str(root)}
        )
    )
    handler.emit(
        _record(event="job_info", jobid=1, rule_name="make", input=["data/raw.txt"], output=[])
    )


def test_frozen_while_the_plugin_runs_and_given_back_at_close(
    instance: Instance, thawed: None
) -> None:
    _handler(instance="test").close()  # type: ignore[attr-defined]  # modules imported
    gc.disable()  # no collection between the garbage made and the plugin's set-up
    try:
        garbage = weakref.ref(Cycle())  # unreachable already; freed by a collection only
        handler = _handler(instance="test")
        assert handler.tracker is not None and handler.tracker.failure is None  # type: ignore[attr-defined]
        assert gc.get_freeze_count() > 0  # Snakemake's heap and the set-up: out of the walks
        assert not gc.isenabled()  # as it was
        gc.collect()
        assert garbage() is not None  # frozen: kept to the end of the run
        handler.close()  # type: ignore[attr-defined]
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert garbage() is None  # given back: collected as before
    finally:
        gc.enable()


def test_the_collector_runs_again_after_the_set_up(instance: Instance, thawed: None) -> None:
    assert gc.isenabled()
    handler = _handler(instance="test")
    try:
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        handler.close()  # type: ignore[attr-defined]
    assert gc.get_freeze_count() == 0


def test_the_first_job_s_set_up_is_frozen_too_and_given_back(
    instance: Instance, tmp_path: Path, thawed: None
) -> None:
    """The first job sets up the Recorder and the workflow's run: frozen as well (with what
    Snakemake made meanwhile), all given back at close; the job is recorded as ever."""
    import lakeline as ll

    root = _workdir(tmp_path)
    handler = _handler(instance="test")
    frozen = gc.get_freeze_count()
    gc.disable()  # no collection between the garbage made and the first job's set-up
    try:
        garbage = weakref.ref(Cycle())
        _first_job(handler, root)
        with handler._lock:  # type: ignore[attr-defined]
            handler._take()  # type: ignore[attr-defined]  # what the plugin's thread does
        assert gc.get_freeze_count() > frozen  # the Recorder's set-up, out of the walks
        gc.collect()
        assert garbage() is not None
        handler.emit(_record(event="job_finished", job_id=1))  # type: ignore[attr-defined]
        handler.close()  # type: ignore[attr-defined]
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert garbage() is None
    finally:
        gc.enable()
    (run,) = ll.Run.filter(engine="snakemake", parent_id__isnull=False)
    assert run.status == "completed"
    assert [a.key for a in run.inputs] == ["data/raw.txt"]


def test_what_another_froze_stays_frozen(instance: Instance, thawed: None) -> None:
    gc.freeze()
    before = gc.get_freeze_count()
    handler = _handler(instance="test")
    handler.close()  # type: ignore[attr-defined]
    assert gc.get_freeze_count() > before // 2  # not thawed by the plugin


def test_a_strict_plugin_that_cannot_connect_freezes_nothing(
    lakeline_home: Path, thawed: None
) -> None:
    from snakemake_interface_common.exceptions import WorkflowError

    enabled = gc.isenabled()
    with pytest.raises(WorkflowError, match="cannot record lineage"):
        _handler(instance="nowhere", strict=True)  # Snakemake stops: no close() follows
    assert gc.get_freeze_count() == 0
    assert gc.isenabled() == enabled


def test_a_pause_begun_meanwhile_in_another_thread_holds(
    instance: Instance, tmp_path: Path, thawed: None
) -> None:
    """lakeline pauses the collector where a collection must not run, in any thread (an h5py
    read through fsspec: a collection there can deadlock, formats/registry.py). A pause begun
    in another thread during the first job's set-up (a `run:` job reading an h5ad) holds
    until it ends: the plugin's own pause ending first does not turn the collector back on."""
    import threading

    from lakeline.gc_pause import gc_paused
    from lakeline.hookspecs import hookimpl
    from lakeline.plugins import get_plugin_manager

    entered, leave = threading.Event(), threading.Event()

    def read() -> None:
        with gc_paused():
            entered.set()
            leave.wait(60)

    reader = threading.Thread(target=read)

    class Reading:
        @hookimpl
        def run_started(self, run: object) -> None:
            if not reader.is_alive() and not entered.is_set():
                reader.start()
                entered.wait(60)

    root = _workdir(tmp_path)
    assert gc.isenabled()
    handler = _handler(instance="test")
    get_plugin_manager().register(Reading(), name="reading")
    try:
        with handler._lock:  # type: ignore[attr-defined]  # one batch: the plugin's thread waits
            _first_job(handler, root)
            handler._take()  # type: ignore[attr-defined]
        assert entered.is_set()  # the other thread paused during the first job's set-up
        assert not gc.isenabled()  # ... and its pause holds
    finally:
        leave.set()
        if reader.is_alive():
            reader.join()
        get_plugin_manager().unregister(name="reading")
        handler.emit(_record(event="job_finished", job_id=1))  # type: ignore[attr-defined]
        handler.close()  # type: ignore[attr-defined]
    assert gc.isenabled()  # every pause over: the collector runs as before


def test_the_first_batch_s_writes_run_with_the_collector_and_hold_no_garbage(
    instance: Instance, tmp_path: Path, thawed: None
) -> None:
    """Only the first job's set-up (the Recorder, the workflow's run) is paused and frozen,
    not the rest of the first batch: hashing and writing its files can take long while
    Snakemake and `run:` jobs go on, and what they drop meanwhile is collected as ever,
    not kept to the end of the run."""
    import lakeline as ll
    from lakeline.hookspecs import hookimpl
    from lakeline.plugins import get_plugin_manager

    seen: list[tuple[bool, weakref.ref[Cycle]]] = []

    class Writing:
        @hookimpl
        def run_finished(self, run: object) -> None:  # the first job's step, in the batch
            seen.append((gc.isenabled(), weakref.ref(Cycle())))  # dropped by a `run:` job

    root = _workdir(tmp_path)
    handler = _handler(instance="test")
    get_plugin_manager().register(Writing(), name="writing")
    try:
        with handler._lock:  # type: ignore[attr-defined]  # one batch: the plugin's thread waits
            _first_job(handler, root)
            handler.emit(_record(event="job_finished", job_id=1))  # type: ignore[attr-defined]
            handler._take(idle=True)  # type: ignore[attr-defined]  # the whole batch written
        ((collecting, garbage),) = seen
        assert collecting  # the batch's writes ran with the collector on
        gc.collect()
        assert garbage() is None  # not frozen: collected as ever
    finally:
        get_plugin_manager().unregister(name="writing")
        handler.close()  # type: ignore[attr-defined]
    (run,) = ll.Run.filter(engine="snakemake", parent_id__isnull=False)
    assert run.status == "completed"
    assert [a.key for a in run.inputs] == ["data/raw.txt"]
