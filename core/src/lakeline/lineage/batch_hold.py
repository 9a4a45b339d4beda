"""Which queued runs a BatchRecorder's flush due by age or steps keeps queued: a step that
started less than `started_ms` ago and that nothing of the batch names waits for its finish
in a later batch, so that it is written once (inserted finished), not inserted, then updated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeline.lineage.handles import loaded

if TYPE_CHECKING:
    from lakeline.lineage.batching import BatchRecorder


def held(rec: BatchRecorder, now: float) -> list[str]:
    """The engine refs of the queued runs to keep queued at a flush at `now` (monotonic): not
    inserted yet, started less than `started_ms` / 2 ago, not finished, producing or using a
    file, or linked in this batch, and not the parent of a run it writes."""
    assert rec.started_ms is not None
    named = {id(step) for step, _ in rec._finishes}
    for f in rec._files.values():
        if f.producer is not None:
            named.add(id(f.producer))
        named.update(id(user) for user, _ in f.used_by)
    named.update(id(user) for user, _, _ in rec._links)
    # kept: younger than half of started_ms, so that a batch due by started_ms writes every
    # run older than that and is not due again by it for started_ms / 2 (else each timer look
    # after the first run's started_ms wrote the few runs that had just reached it)
    young = now - rec.started_ms / 2000
    keep = {
        ref
        for ref, (handle, _) in rec._runs.items()
        if id(handle) not in named
        and rec._start_times.get(ref, young) > young
        and loaded(handle.run, "id") is None
    }
    written = [ref for ref in rec._runs if ref not in keep]
    while written:  # the parents of the runs written are written first
        parents = []
        for ref in written:
            parent = rec._runs[ref][1]
            queued = rec._runs.get(parent.engine_ref)
            if parent.engine_ref in keep and queued is not None and queued[0] is parent:
                keep.discard(parent.engine_ref)
                parents.append(parent.engine_ref)
        written = parents
    return [ref for ref in rec._runs if ref in keep]
