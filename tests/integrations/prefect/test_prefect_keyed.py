"""A file a task saved in place under a key is that record for a task that reads it later."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pf_keyed
import pytest
from lakeline.instance import Instance
from test_prefect_flows import ENGINE


@pytest.mark.parametrize("later", ["same_flow_run", "next_flow_run"])
def test_a_file_a_task_saved_under_a_key_is_the_input_of_the_task_reading_it(
    workdir: Path, instance: Instance, later: str
) -> None:
    """`keep` writes out/x.txt and saves it in place as `kept/x.txt`; `measure` reads it.
    Failed on main (both): `measure`'s input was a new record `out/x.txt` with no producer."""
    if later == "same_flow_run":
        assert pf_keyed.kept_and_measured("x") == len("kept x\n")
    else:
        assert pf_keyed.kept("x") == "x"
        assert pf_keyed.measured(Path("out/x.txt")) == len("kept x\n")
    runs = {r.transform.key: r for r in ll.Run.filter(engine=ENGINE, transform__kind="task")}
    (saved,) = ll.Artifact.filter(key="kept/x.txt").all()
    assert saved.run_id == runs["keep"].id and saved.in_place
    assert [(a.key, a.run_id) for a in runs["measure"].inputs.all()] == [
        ("kept/x.txt", runs["keep"].id)
    ]
    assert ll.Artifact.filter(key="out/x.txt").count() == 0
