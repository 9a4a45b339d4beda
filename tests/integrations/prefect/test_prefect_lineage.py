"""Lineage facts of a small real flow: files a task only reads never get a producer."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pf_lineage_flows
from lakeline.instance import Instance


def test_inputs_of_mapped_tasks_get_no_producer(workdir: Path, instance: Instance) -> None:
    data = workdir / "data"
    data.mkdir()
    for i in (1, 2, 3):
        (data / f"s{i}.csv").write_text(",".join(str(i * k) for k in range(1, 6)))

    pf_lineage_flows.pipeline()

    for i in (1, 2, 3):
        raw = ll.Artifact.get(key=f"data/s{i}.csv")
        assert raw.run is None, f"data/s{i}.csv was only read, yet has producer {raw.run}"
        norm = ll.Artifact.get(key=f"out/s{i}.norm.csv")
        run = norm.run
        assert run is not None and run.transform.key.endswith("normalize")
        assert [a.key for a in run.inputs.all()] == [f"data/s{i}.csv"]
        assert [a.key for a in run.outputs.all()] == [f"out/s{i}.norm.csv"]
    merged = ll.Artifact.get(key="out/merged.csv")
    assert sorted(a.key for a in merged.run.inputs.all()) == [
        f"out/s{i}.norm.csv" for i in (1, 2, 3)
    ]
    # no cycle: walking upstream from a raw file finds nothing
    graph = ll.Artifact.get(key="data/s1.csv").lineage(direction="upstream")
    assert graph.runs == []
