"""A journal line is `json.JSONEncoder(default=str).encode` of the event's `to_json` (its type,
then its fields in order), whatever the event holds, written without building that dict
(`journal.line_of`); the events parsed from Snakemake's records are what they were
(`events.paths`, `events.plain` take short cuts for the common values)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from snakemake_logger_plugin_lakeline import events
from snakemake_logger_plugin_lakeline.journal import Journal, encoder, line_of, read

PLAIN = json.JSONEncoder(default=str).encode  # what the journal wrote before


class Odd:
    def __str__(self) -> str:
        return "odd ✓"


def _events() -> list[events.Event]:
    info = events.JobInfo(
        jobid=3,
        rule="count ü",
        at=1765000000.123456,
        inputs=["data/ä.txt", 'quote".txt'],
        outputs=["out/3.txt"],
        wildcards={"s": "a\nb", "n": 2, "x": 1.5, "flag": True, "none": None},
        resources={"mem_mb": 10, "tmpdir": "/tmp", "odd": Odd()},  # type: ignore[dict-item]
        params={"nan": math.nan, "inf": -math.inf, "nested": [[1, {"a": ()}]]},
        input_stats={"data/ä.txt": [12, 1765000000123456789]},
        threads=2,
    )
    return [
        events.WorkflowStarted("w-1", 1.0, config={"k": [1, 2]}, configfiles=["c.yaml"]),
        info,
        events.JobFinished(
            3, 2.5, files={"out/3.txt": [1, 2]}, started={"out/3.txt": 0.1}, endtime=3.25
        ),
        events.JobError(3, "count", 2.0, error="boom\t✗", exit_code=1, logs=["l.log"]),
        events.TempRemoval("tmp/x.txt", 4.0),
        events.ErrorMessage("Error in rule count", 5.0, rule="count"),
    ]


def test_a_line_is_the_encoded_event_as_before() -> None:
    encode = encoder()
    for event in _events():
        line = line_of(event, encode)
        assert line == PLAIN(events.to_json(event)), type(event).__name__
        assert "\n" not in line  # one line an event
        data = json.loads(line)
        assert data["type"] == type(event).__name__ and next(iter(data)) == "type"


def test_the_journal_reads_back_what_it_wrote(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), "w-1")
    written = _events()
    for event in written:
        journal.write(event)
    journal.close()
    assert journal.failed is None
    lines = journal.path.read_text(encoding="utf-8").splitlines()
    assert lines == [PLAIN(events.to_json(e)) for e in written]
    back = list(read(journal.path))
    assert [type(e) for e in back] == [type(e) for e in written]
    assert back[2] == written[2] and back[4:] == written[4:]


def test_an_event_that_cannot_be_encoded_stops_the_journal_only(tmp_path: Path) -> None:
    """A value JSON cannot hold (a cycle) fails the journal, as before (ValueError), keeping
    what was written; another journal encodes as usual."""
    journal = Journal(str(tmp_path), "w-1")
    journal.write(events.TempRemoval("a.txt", 1.0))
    cyclic: list[object] = []
    cyclic.append(cyclic)
    journal.write(events.JobInfo(1, "r", 1.0, params=cyclic))
    journal.write(events.TempRemoval("b.txt", 2.0))
    journal.close()
    assert journal.failed is not None and "Circular" in journal.failed
    assert not journal.path.exists()  # the failed batch's lines are not written
    again = Journal(str(tmp_path), "w-2")
    again.write(events.TempRemoval("c.txt", 3.0))
    again.close()
    assert [e for e in read(again.path)] == [events.TempRemoval("c.txt", 3.0)]


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("snakemake", logging.INFO, "x.py", 1, "", (), None)
    record.__dict__.update(extra)
    return record


class Annotated(str):
    """A str subclass, as Snakemake's annotated strings and IO files are."""


def test_paths_and_plain_values_as_before() -> None:
    files = [
        "a.txt",
        "",
        "<TBD>",
        "fifo (pipe)",
        "svc (service, x)",
        "b.txt (update)",
        "s3://b/k (send to storage)",
        "c (1).txt",
        Annotated("d.txt"),
        7,
    ]
    got = events.paths(files)
    assert got == ["a.txt", "b.txt", "s3://b/k", "c (1).txt", "d.txt", "7"]
    assert [type(p) for p in got] == [str] * len(got)
    assert events.paths("one.txt") == ["one.txt"] and events.paths(None) == []
    assert events.paths(3) == []  # not a list of files
    key = Annotated("k")
    value = Annotated("v")
    got_dict = events.plain({key: value, 1: (2, 3), 2.5: {"x": {4}}, "s": None})
    assert got_dict == {"k": "v", "1": [2, 3], "2.5": {"x": [4]}, "s": None}
    assert type(next(iter(got_dict))) is str and got_dict["k"] is value  # kept as it is
    from snakemake.iocontainers import ResourceList

    resources = ResourceList(fromdict={"_cores": 1, "tmpdir": Annotated("/t"), "x": (1, {2})})
    resources.append("extra")  # unnamed: by position
    got_named = events.plain(resources)
    assert got_named == {"_cores": 1, "tmpdir": "/t", "x": [1, [2]], "3": "extra"}
    deep: object = "leaf"
    for _ in range(9):
        deep = {"d": deep}
    text = json.dumps(events.plain(deep))  # past depth 6: the rest as its repr
    assert text.count('{"d"') == 7 and "'d'" in text
    record = _record(
        event="job_info",
        jobid=1,
        rule_name="r",
        input=files,
        output=["o.txt"],
        wildcards={"s": Annotated("a")},
        resources={"mem_mb": 10, "_cores": 1},
    )
    event = events.from_record(record)
    assert isinstance(event, events.JobInfo)
    assert event.inputs == got and event.wildcards == {"s": "a"}
    assert event.resources == {"mem_mb": 10, "_cores": 1}
