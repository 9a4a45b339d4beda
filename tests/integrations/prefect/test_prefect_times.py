"""The times a Prefect run is recorded with are the ones Prefect's states report (as UTC),
not the clock when a hook ran: a task's start its first Running state, its end its final
state (failed, cached too), each attempt of a retried task its own Running state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lakeline as ll
import pf_flows
import pytest
from lakeline.instance import Instance
from test_prefect_flows import ENGINE, journal, prepare


def _states(events: list[tuple[Any, tuple[Any, ...]]]) -> dict[str, list[Any]]:
    """Each task or flow run's states as its hooks got them, in order, by Prefect run id."""
    states: dict[str, list[Any]] = {}
    for _, (_, run, state) in events:
        states.setdefault(str(run.id), []).append(state)
    return states


def _utc(at: datetime) -> datetime:
    assert at.tzinfo is not None
    return at.astimezone(UTC)


@pytest.mark.parametrize("flow", ["words", "failing", "retried", "cached"])
def test_runs_carry_the_times_their_states_reported(
    workdir: Path, instance: Instance, flow: str
) -> None:
    raw = prepare(workdir)
    with journal() as events:
        if flow == "words":
            pf_flows.words(raw)
        elif flow == "failing":
            assert pf_flows.failing(raw, return_state=True).is_failed()
        elif flow == "retried":
            pf_flows.retried(f"times-{workdir}")
        else:
            assert pf_flows.cached(raw) == pf_flows.cached(raw)
    states = _states(events)
    runs = ll.Run.filter(engine=ENGINE).all()
    assert len(runs) > 1
    assert (flow == "cached") == ("cached" in {r.status for r in runs})
    for run in runs:
        task_run_id = run.params["@prefect"].get("task_run_id")
        seen = states[task_run_id or run.engine_ref]  # a flow run: its id
        running = [s for s in seen if s.is_running()]
        final = seen[-1]
        assert final.is_final()
        assert run.started_at is not None and run.finished_at is not None
        assert run.started_at.utcoffset() == run.finished_at.utcoffset() == UTC.utcoffset(None)
        assert run.started_at == _utc(running[0].timestamp)
        assert run.finished_at == _utc(final.timestamp)
        starts = [e["at"] for e in run.status_log if e["status"] == "started"]
        assert starts == [_utc(s.timestamp).isoformat() for s in running]
