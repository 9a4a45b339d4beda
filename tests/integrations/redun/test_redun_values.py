"""Files a job only returned, standard output, jobs redun keeps no record of, and cached jobs
whose original is reached later: live capture and import agree."""

from __future__ import annotations

import logging
import time
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


def test_a_returned_source_is_used_not_produced(
    instance: Instance, flow: Flow, tmp_path: Path
) -> None:
    time.sleep(0.1)  # raw.txt is older than the execution by more than lakeline's clock slack
    flow.run(rf.build("raw.txt"), live=True)
    make = ll.Run.get(engine="redun", transform__key="llt.make")
    assert inputs(make) == {"raw.txt"} and outputs(make) == set()
    assert ll.Artifact.get(key="raw.txt").run_id is None  # a source: nobody produced it
    shout = ll.Run.get(engine="redun", transform__key="llt.shout")
    assert inputs(shout) == {"raw.txt"} and outputs(shout) == {"out/shout.txt"}
    live = lineage()

    init(storage=tmp_path / "other", name="other")
    import_redun(str(flow.db))
    assert lineage() == live


def test_standard_output_and_unrecorded_jobs(
    instance: Instance, flow: Flow, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert flow.run(rf.quiet_words(File("raw.txt")), live=True)[:2] == [2, 3]
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("lakeline")]
    assert not [a for a in ll.Artifact.filter().all() if a.location.endswith("/-")]
    assert not ll.Run.filter(engine="redun", transform__key="llt.untracked").all()
    live = lineage()

    init(storage=tmp_path / "other", name="other")
    result = import_redun(str(flow.db))
    assert result.missing == []
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("lakeline")]
    assert lineage() == live


def test_import_links_a_cached_job_reached_before_its_original(
    instance: Instance, flow: Flow, tmp_path: Path
) -> None:
    flow.run(rf.main(File("raw.txt")), live=True)
    flow.run(rf.main(File("raw.txt")), live=True)  # cached
    live = lineage()
    assert len([r for r in live if r[3] == "cached" and r[5] is not None]) == 6
    first, second = (
        r.engine_ref for r in ll.Run.filter(engine="redun", parent_id__isnull=True).order_by("id")
    )

    init(storage=tmp_path / "other", name="other")
    result = import_redun(str(flow.db), execution=second)  # the cached execution first
    assert result.executions == [second, first]  # its originals' execution came along
    assert lineage() == live
    import_redun(str(flow.db))
    assert lineage() == live


def test_import_links_a_cached_job_before_its_original_in_the_same_execution(
    instance: Instance, tmp_path: Path
) -> None:
    from lakeline_redun.reader import job_ids, open_backend
    from redun.backends.db import Job

    flow = Flow(tmp_path / "proj", workers=1)  # jobs in a fixed order
    flow.run(rf.twice(File("raw.txt")), live=True)
    live = lineage()
    (hit,) = [r for r in live if r[3] == "cached"]
    assert hit[1] == "llt.count" and hit[5] is not None
    backend = open_backend(str(flow.db))
    try:
        (execution,) = {r.execution_id for r in backend.session.query(Job)}
        order = job_ids(backend.session, execution)
    finally:
        backend.session.close()
    assert order.index(hit[0]) < order.index(hit[5])  # the import reaches the cached one first

    init(storage=tmp_path / "other", name="other")
    import_redun(str(flow.db))
    assert lineage() == live


@pytest.mark.parametrize("live", [True, False], ids=["live", "plain"])
def test_a_record_passed_to_a_task(instance: Instance, flow: Flow, live: bool) -> None:
    """redun pickles a task's arguments (to hash them and to store them): a lakeline record
    goes through and the task reads it from its instance; the record loaded again pickles to
    the same bytes, so the second run is cached."""
    (flow.root / "in.txt").write_text("record bytes")
    uid = ll.Artifact(flow.root / "in.txt", key="in/record.txt").save().uid
    for _ in range(2):
        result = flow.run(rf.describe_record(ll.Artifact.get(uid)), live=live)
        assert result == "in/record.txt=record bytes"
    if live:
        runs = ll.Run.filter(engine="redun", transform__key="llt.describe_record").all()
        jobs = sorted(r.status for r in runs if r.parent_id is not None)
        assert jobs == ["cached", "completed"]  # each below its workflow run


def test_live_arguments_read_as_the_import_reads_them(tmp_path: Path) -> None:
    """A job's params and used files, as the scheduler reads them in one pass (`arguments`),
    are those the import derives from the same arguments (`params_from_args`, `files_in`):
    files at the top and nested in lists, sets, dict keys and values, a Dir, a duplicate,
    standard output, bytes, a str subclass, an object, positions past the signature."""
    from lakeline_redun.values import arguments, files_in, params_from_args
    from redun.file import Dir

    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / "d").mkdir()
    a, b, c = (File(str(tmp_path / n)) for n in ("a.txt", "b.txt", "c.txt"))
    b.hash  # noqa: B018  (one file hashed, the others not yet: both as redun holds them)

    class Name(str):
        pass

    positional = (b, [a, (c, b"x")], {a}, Name("n"), None, File("-"), object())
    keywords = {"d": Dir(str(tmp_path / "d")), "m": {File(str(tmp_path / "c.txt")): 1.5}}
    args = [(i, None, v) for i, v in enumerate(positional)]
    args += [(None, k, v) for k, v in keywords.items()]
    expected = params_from_args(args, ["x", "y"]), files_in([v for _, _, v in args])
    got = arguments(positional, keywords, ["x", "y"])
    assert got == expected and list(got[0]) == list(expected[0])
    # c.txt twice: unhashed, and hashed as a dict key (another redun hash: both kept)
    assert [Path(f.path).name for f in got[1]] == ["a.txt", "b.txt", "c.txt", "c.txt", "d"]
