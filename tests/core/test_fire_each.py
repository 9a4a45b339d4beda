"""A flush tells the plugins once per run and edge (`records.fire_each`): whether anyone acts
on a hook is asked once per flush, and the OpenLineage emitter alone, with no destination,
is not called at all."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.exporters import openlineage_emitter
from lakeline.hookspecs import hookimpl
from lakeline.instance import Instance
from lakeline.lineage.batching import BatchRecorder
from lakeline.lineage.records import fire_each
from lakeline.plugins import get_plugin_manager


@pytest.fixture
def emitter_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("FILE", "URL", "API_KEY", "TIMEOUT"):
        monkeypatch.delenv(f"LAKELINE_OPENLINEAGE_{name}", raising=False)
    openlineage_emitter.reset()
    yield monkeypatch
    openlineage_emitter.reset()


def _batch(root: Path) -> BatchRecorder:
    """A workflow of two steps, each using one file and making one, queued (not flushed)."""
    rec = BatchRecorder("toy", root=root, steps=100, ms=600_000)
    wf = rec.start_workflow(key="p", engine_run_id="r")
    rec.flush()
    for i in range(2):
        (root / f"in{i}.txt").write_text(f"in {i}\n")
        (root / f"out{i}.txt").write_text(f"out {i}\n")
        step = rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i))
        rec.use(step, f"in{i}.txt")
        rec.produce(step, f"out{i}.txt")
        rec.finish_step(step)
    return rec


def test_a_flush_emits_openlineage_events_for_its_runs(
    instance: Instance, tmp_path: Path, emitter_env: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "events.jsonl"
    emitter_env.setenv("LAKELINE_OPENLINEAGE_FILE", str(target))
    root = tmp_path / "wf"
    root.mkdir()
    _batch(root).flush()
    events = [json.loads(line) for line in target.read_text().splitlines()]
    steps = [e for e in events if e["job"]["name"].endswith("s")]
    assert sorted(e["eventType"] for e in steps) == ["COMPLETE", "COMPLETE", "START", "START"]
    for event in steps:
        assert event["run"]["runId"]


def test_without_a_destination_the_emitter_is_not_called(
    instance: Instance, tmp_path: Path, emitter_env: pytest.MonkeyPatch
) -> None:
    """Nobody would act: no call (a run the emitter could not export would log an error if
    it were asked while a destination is set)."""
    broken = ll.Run(uid="x" * 16, transform_id=0, status="completed")
    calls = [{"run": broken}] * 3
    fire_each("run_finished", calls)  # no destination: returns without calling
    target = tmp_path / "x.jsonl"
    emitter_env.setenv("LAKELINE_OPENLINEAGE_FILE", str(target))
    fire_each("run_finished", calls)  # now it is asked, fails to export, and says so once
    assert not target.exists()


class Flaky:
    """Fails on its first run_finished, records every call."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def run_finished(self, run: ll.Run) -> None:
        self.seen.append(run.engine_ref or "")
        if sum(not s.startswith("used") for s in self.seen) == 1:
            raise RuntimeError("boom")

    @hookimpl
    def artifact_used(self, artifact: ll.Artifact, run: ll.Run) -> None:
        self.seen.append(f"used {artifact.key} by {run.engine_ref}")


def test_a_failing_plugin_is_logged_and_the_other_calls_still_made(
    instance: Instance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Flaky()
    get_plugin_manager().register(flaky, name="flaky")
    try:
        root = tmp_path / "wf"
        root.mkdir()
        rec = _batch(root)
        with caplog.at_level(logging.ERROR, logger="lakeline"):
            rec.flush()
    finally:
        get_plugin_manager().unregister(name="flaky")
    finished = [s for s in flaky.seen if not s.startswith("used")]
    used = [s for s in flaky.seen if s.startswith("used")]
    assert sorted(finished) == ["r/0", "r/1"]  # the second told although the first failed
    assert sorted(used) == ["used in0.txt by r/0", "used in1.txt by r/1"]
    assert caplog.text.count("plugin hook run_finished failed") == 1


def test_hooks_fired_together_read_the_emitter_environment_once(
    instance: Instance,
    tmp_path: Path,
    emitter_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flush's hooks share one look (`looked`); a hook nobody implements takes none."""
    broken = ll.Run(uid="y" * 16, transform_id=0, status="completed")
    calls = [{"run": broken}]
    looked: list[bool] = []
    fire_each("artifact_used", [{"artifact": None, "run": broken}], looked)
    assert looked == []  # nobody implements it: the environment is not read
    fire_each("run_started", calls, looked)
    assert looked == [False]  # no destination, read once
    target = tmp_path / "y.jsonl"
    emitter_env.setenv("LAKELINE_OPENLINEAGE_FILE", str(target))
    with caplog.at_level(logging.WARNING):
        fire_each("run_finished", calls, looked)  # the flush's look: no destination
        assert looked == [False]
        assert not caplog.records  # not asked
        fire_each("run_finished", calls, [])  # a new look finds it: asked, fails to export
    assert caplog.records
    assert not target.exists()
