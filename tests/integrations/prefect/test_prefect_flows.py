"""Real Prefect flows, run offline against the session's test server, recorded edge by edge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lakeline as ll
import pf_flows
from lakeline.instance import Instance
from lakeline.testing import ExpectedStep, RecorderConformance
from prefect import Flow, Task

ENGINE = "prefect"


def prepare(root: Path) -> Path:
    (root / "data").mkdir(exist_ok=True)
    raw = root / "data" / "raw.txt"
    raw.write_text("alpha beta gamma delta epsilon zeta eta")
    return raw


@contextmanager
def journal() -> Iterator[list[tuple[Any, tuple[Any, ...]]]]:
    """Every lakeline state hook call of the pf_flows flows and tasks, with copies of its args."""
    events: list[tuple[Any, tuple[Any, ...]]] = []
    added: list[tuple[list[Any], Any]] = []
    for obj in vars(pf_flows).values():
        if not isinstance(obj, Task | Flow):
            continue
        for hooks in (obj.on_running_hooks, obj.on_completion_hooks, obj.on_failure_hooks):
            ours = hooks[-1]

            def spy(o: Any, run: Any, state: Any, ours: Any = ours) -> None:
                events.append((ours, (o, run.model_copy(deep=True), state)))

            hooks.append(spy)
            added.append((hooks, spy))
    try:
        yield events
    finally:
        for hooks, spy in added:
            hooks.remove(spy)


def steps_of(workflow: ll.Run) -> list[ll.Run]:
    return sorted(workflow.children.all(), key=lambda r: (r.transform.key, r.started_at or 0))


class TestPrefectConformance(RecorderConformance):
    """The Recorder contract against the Prefect hooks."""

    engine = ENGINE

    events: list[tuple[Any, tuple[Any, ...]]]

    def _run(self, tmp_path: Path) -> list[ExpectedStep]:
        root = tmp_path / "wf"
        pf_flows.words(prepare(root))
        return [
            ExpectedStep(
                "split", frozenset({"data/raw.txt"}), frozenset({"out/a.txt", "out/b.txt"})
            ),
            ExpectedStep("count", frozenset({"out/a.txt"}), frozenset({"out/a.count"})),
            ExpectedStep("count", frozenset({"out/b.txt"}), frozenset({"out/b.count"})),
            ExpectedStep(
                "merge", frozenset({"out/a.count", "out/b.count"}), frozenset({"out/total.txt"})
            ),
        ]

    def run_workflow(self, tmp_path: Path) -> list[ExpectedStep]:
        with journal() as self.events:
            return self._run(tmp_path)

    def replay(self, tmp_path: Path) -> None:
        """Deliver the run's state hooks again, with the same Prefect ids (a replayed run)."""
        for hook, args in self.events:
            hook(*args)

    def test_conformance_steps_edge_by_edge(self, workdir: Path, instance: Instance) -> None:
        super().test_conformance_steps_edge_by_edge(instance, workdir.parent)

    def test_conformance_outputs_point_to_their_step(
        self, workdir: Path, instance: Instance
    ) -> None:
        super().test_conformance_outputs_point_to_their_step(instance, workdir.parent)

    def test_conformance_replay_changes_nothing(self, workdir: Path, instance: Instance) -> None:
        super().test_conformance_replay_changes_nothing(instance, workdir.parent)


def test_mapped_flow_edge_by_edge(workdir: Path, instance: Instance) -> None:
    raw = prepare(workdir)
    assert pf_flows.words(raw) == workdir / "out" / "total.txt"
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    assert workflow.status == "completed" and workflow.transform.kind == "flow"
    assert workflow.transform.key == "words" and workflow.params["raw"] == str(raw)
    split, count_a, count_b, merge = (
        ll.Artifact.get(key=k).run
        for k in ("out/a.txt", "out/a.count", "out/b.count", "out/total.txt")
    )
    assert split is not None and count_a is not None and count_b is not None and merge is not None
    assert count_a.id != count_b.id and count_a.transform_id == count_b.transform_id
    for step in (split, count_a, count_b, merge):
        assert step.parent_id == workflow.id and step.status == "completed"
        assert step.engine_ref.startswith(f"{workflow.engine_ref}/")  # type: ignore[union-attr]
        assert step.transform.kind == "task" and step.transform.parent_id == workflow.transform_id
    # parameters resolved from futures (.map), upstream task runs from task_inputs
    assert count_a.params["part"] == str(workdir / "out" / "a.txt")
    assert count_a.params["@prefect"]["upstream"] == {"part": [split.uid]}
    assert merge.params["counts"] == [
        str(workdir / "out" / "a.count"),
        str(workdir / "out" / "b.count"),
    ]
    assert sorted(merge.params["@prefect"]["upstream"]["counts"]) == sorted(
        [count_a.uid, count_b.uid]
    )
    assert split.transform.reference == pf_flows.split.task_key
    assert ll.Artifact.get(key="out/total.txt").load() == "8"


def test_failing_task_records_the_error(workdir: Path, instance: Instance) -> None:
    state = pf_flows.failing(prepare(workdir), return_state=True)
    assert state.is_failed()
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    assert workflow.status == "errored"
    (step,) = workflow.children.all()
    assert step.transform.key == "explode" and step.status == "errored"
    assert "ValueError: cannot read raw.txt" in (step.error or "")
    used = ll.Artifact.get(key="data/raw.txt")
    assert used.run is None  # an input, not produced by the failed step


def test_retried_task_is_one_run_with_its_attempts(workdir: Path, instance: Instance) -> None:
    tag = f"retry-{workdir}"
    assert pf_flows.retried(tag) == f"{tag} ok after 2"
    workflow = ll.Run.get(engine=ENGINE, parent_id__isnull=True)
    (step,) = workflow.children.all()
    assert step.status == "completed" and step.params["tag"] == tag
    log = [(e["status"], e.get("attempt")) for e in step.status_log or []]
    assert log == [("started", None), ("errored", 1), ("started", 2), ("completed", None)]


def test_cache_hit_links_to_the_run_that_produced_the_value(
    workdir: Path, instance: Instance
) -> None:
    raw = prepare(workdir)
    assert pf_flows.cached(raw) == 7
    assert pf_flows.cached(raw) == 7
    first, second = sorted(
        ll.Run.filter(engine=ENGINE, parent_id__isnull=True).all(), key=lambda r: r.id
    )
    (original,) = first.children.all()
    (hit,) = second.children.all()
    assert original.status == "completed" and original.params["@prefect"]["cache_key"]
    assert hit.status == "cached" and hit.cached_from_id == original.id
    assert hit.transform_id == original.transform_id


def test_files_opened_in_the_task_are_audited(workdir: Path, instance: Instance) -> None:
    import lakeline_prefect

    lakeline_prefect.configure(audit=True)
    raw = prepare(workdir)
    pf_flows.words(raw)
    # merge opened the counts (parameters anyway) and wrote total; split wrote a/b: all edges
    merge = ll.Artifact.get(key="out/total.txt").run
    assert merge is not None and merge.transform.key == "merge"
    prefect_home = Path(str(workdir)).anchor  # nothing outside the workflow folder recorded
    assert all(a.key and not a.key.startswith(prefect_home) for a in ll.Artifact.filter().all())


def test_unknown_instance_runs_the_flow_and_reports_once(
    workdir: Path, instance: Instance, monkeypatch: Any, caplog: Any
) -> None:
    from lakeline.instance import disconnect

    disconnect()
    monkeypatch.setenv("LAKELINE_INSTANCE", "no-such-instance")
    assert pf_flows.words(prepare(workdir)) == workdir / "out" / "total.txt"
    warnings = [r for r in caplog.records if r.name == "lakeline.prefect"]
    assert len(warnings) == 1 and "could not record" in warnings[0].getMessage()


def test_strict_fails_the_flow(workdir: Path, instance: Instance, monkeypatch: Any) -> None:
    import pytest
    from lakeline.instance import disconnect
    from lakeline_prefect import RecordingFailed

    disconnect()
    monkeypatch.setenv("LAKELINE_INSTANCE", "no-such-instance")
    monkeypatch.setenv("LAKELINE_PREFECT_STRICT", "1")
    with pytest.raises(RecordingFailed, match="could not record"):
        pf_flows.words(prepare(workdir))
    assert not (workdir / "out").exists()  # failed before any task ran
