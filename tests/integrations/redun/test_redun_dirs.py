"""A redun Dir (a folder value): recorded as a folder artifact, produced by the job that
returned it and used by the job it was passed to, live and imported alike."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
import redun_flows as rf
from lakeline.instance import Instance, init
from lakeline_redun import import_redun
from redun import File
from redun_project import Flow
from test_import import inputs, outputs
from test_live import lineage


@pytest.mark.parametrize("live", [True, False], ids=["live", "imported"])
def test_a_dir_is_a_folder_produced_and_used(
    instance: Instance, flow: Flow, tmp_path: Path, live: bool
) -> None:
    assert flow.run(rf.sharded(File("raw.txt")), live=live).path == "out/tally.txt"
    assert (flow.root / "out" / "tally.txt").read_text() == "3"
    if not live:
        import_redun(str(flow.db))
    shards = ll.Run.get(engine="redun", transform__key="llt.shards")
    tally = ll.Run.get(engine="redun", transform__key="llt.tally")
    assert inputs(shards) == {"raw.txt"} and outputs(shards) == {"out/shards"}
    assert inputs(tally) == {"out/shards"} and outputs(tally) == {"out/tally.txt"}
    folder = ll.Artifact.get(key="out/shards")
    assert folder.run_id == shards.id
    assert tally.params["extra"] == 1
    if live:
        recorded = lineage()
        init(storage=tmp_path / "other", name="other")
        import_redun(str(flow.db))
        assert lineage() == recorded


def test_a_folder_rewritten_inside_after_its_jobs_ended_keeps_their_bytes(
    instance: Instance, flow: Flow, tmp_path: Path
) -> None:
    """A folder made and used by jobs that ended, then a file inside it rewritten in place
    by a later job (the folder's own stat unchanged): the folder the jobs produced and used
    is recorded with the bytes they saw, never with the later job's."""
    from fsspec.implementations.local import LocalFileSystem
    from lakeline.storage.hashing import hash_folder

    seen = tmp_path / "seen"
    seen.mkdir()
    (seen / "0.txt").write_text("alpha")
    (seen / "1.txt").write_text("beta")
    expected = hash_folder(LocalFileSystem(), str(seen)).hash
    flow.run(rf.tally_then_scribble(File("raw.txt")), live=True)
    assert (flow.root / "out" / "shards" / "0.txt").read_text() == "ZZpha"
    shards = ll.Run.get(engine="redun", transform__key="llt.shards")
    tally = ll.Run.get(engine="redun", transform__key="llt.tally")
    assert outputs(shards) == {"out/shards"} and inputs(tally) == {"out/shards"}
    recorded = {a.hash for a in ll.Artifact.filter(key="out/shards", is_latest=None)}
    assert recorded == {expected}
