"""The plugin as Snakemake sees it: discovery, settings flags, the interface's own test base;
and the pieces that read Snakemake's records, files and metadata."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path

import pytest
import snakemake_logger_plugin_lakeline as plugin
from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase
from snakemake_interface_logger_plugins.tests import TestLogHandlerBase
from snakemake_logger_plugin_lakeline import events, metadata
from snakemake_logger_plugin_lakeline.settings import parse_bool
from snakemake_logger_plugin_lakeline.sources import Sources, pipeline_key

# -- discovery -----------------------------------------------------------------------------------


def test_snakemake_registry_finds_the_plugin() -> None:
    found = LoggerPluginRegistry().get_plugin("lakeline")
    assert found.log_handler is plugin.LogHandler
    assert found.settings_cls is plugin.LogHandlerSettings
    assert found.cli_prefix == "logger-lakeline"


def test_discovered_from_the_editable_install() -> None:
    dist = distribution("snakemake-logger-plugin-lakeline")
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    assert direct_url.get("dir_info", {}).get("editable") is True
    source = Path(plugin.__file__).resolve()
    assert source.parts[-4:-1] == ("snakemake", "src", "snakemake_logger_plugin_lakeline")
    # the entry point that adds `lakeline snakemake import` (a commands-only plugin)
    assert [ep.value for ep in dist.entry_points if ep.group == "lakeline.commands"] == [
        "snakemake_logger_plugin_lakeline.cli_plugin"
    ]


def test_settings_become_logger_lakeline_flags() -> None:
    registered = LoggerPluginRegistry().get_plugin("lakeline")
    parser = argparse.ArgumentParser()
    registered.register_cli_args(parser, "logger")
    args = parser.parse_args(
        [
            "--logger-lakeline-instance",
            "team",
            "--logger-lakeline-upload",
            "true",
            "--logger-lakeline-strict",
            "no",
            "--logger-lakeline-pipeline",
            "rnaseq",
        ]
    )
    settings = registered.get_settings(args)
    assert isinstance(settings, plugin.LogHandlerSettings)
    assert (settings.instance, settings.upload, settings.strict, settings.pipeline) == (
        "team",
        True,
        False,
        "rnaseq",
    )
    assert settings.journal is None  # default: journal on
    defaults = registered.get_settings(parser.parse_args([]))
    assert isinstance(defaults, plugin.LogHandlerSettings)
    assert (defaults.instance, defaults.upload, defaults.strict) == (None, None, None)
    with pytest.raises(ValueError, match="expected true or false"):
        parse_bool("maybe")


# -- the interface's own test base ---------------------------------------------------------------


class TestLakelineLogHandler(TestLogHandlerBase):
    """Snakemake's standard logger-plugin tests (events outside a run record nothing)."""

    __test__ = True

    @pytest.fixture(autouse=True)
    def _isolated(self, lakeline_home: Path) -> Iterator[None]:
        """No instance configured: the handler must warn, not fail. Handlers are closed
        after each test (they hook Snakemake's logger while open)."""
        self.handlers: list[LogHandlerBase] = []
        yield
        for handler in self.handlers:
            handler.close()

    def _create_handler(self) -> LogHandlerBase:
        handler = super()._create_handler()
        self.handlers.append(handler)
        return handler

    def get_log_handler_cls(self) -> type[LogHandlerBase]:
        return plugin.LogHandler

    def get_log_handler_settings(self) -> LogHandlerSettingsBase:
        return plugin.LogHandlerSettings(instance="nowhere")

    def test_no_instance_is_reported_once_and_never_raises(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        handler = self._create_handler()
        assert isinstance(handler, plugin.LogHandler) and handler.tracker is not None
        started = self._create_event_record(LogEvent.WORKFLOW_STARTED, workflow_id="w-1")
        handler.emit(started)
        for jobid in (1, 2):
            job = self._create_event_record(
                LogEvent.JOB_INFO, jobid=jobid, rule_name="make", output=[f"{jobid}.txt"]
            )
            handler.emit(job)
            handler.emit(self._create_event_record(LogEvent.JOB_FINISHED, job_id=jobid))
        handler.close()
        err = capsys.readouterr().err
        assert err.count("cannot record lineage in instance nowhere") == 1
        assert "InstanceNotFound" in err
        assert "lineage incomplete: 2 of 2 jobs" in err
        assert "rule make (job 2): not recorded: 2.txt" in err


# -- records, paths, sources, metadata -----------------------------------------------------------


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("snakemake", logging.INFO, "x.py", 1, "", (), None)
    record.__dict__.update(extra)
    return record


def test_job_info_record_becomes_an_event() -> None:
    record = _record(
        event="job_info",
        jobid=4,
        rule_name="count",
        input=["a.txt", "fifo (pipe)", "s3://bucket/x.txt (retrieve from storage)"],
        output=["b.txt", "<TBD>"],
        log=["logs/c.log"],
        benchmark="bench/c.tsv",
        wildcards={"s": "a"},
        threads="2",
        resources={"mem_mb": 10},
        shellcmd="wc -l a.txt > b.txt",
        is_checkpoint=False,
        lakeline_job={"temp": ["b.txt"], "params": {"n": 1}},
    )
    event = events.from_record(record)
    assert isinstance(event, events.JobInfo)
    assert event.inputs == ["a.txt", "s3://bucket/x.txt"]  # pipes are not files
    assert event.outputs == ["b.txt"] and event.benchmark == "bench/c.tsv"
    assert (event.threads, event.temp, event.params) == (2, ["b.txt"], {"n": 1})
    assert events.from_json(json.loads(json.dumps(events.to_json(event)))) == event
    done = _record(event="job_finished", job_id=4)
    assert events.from_record(done) == events.JobFinished(jobid=4, at=done.created)
    removal = events.from_record(_record(msg="Removing temporary output work/a.txt."))
    assert isinstance(removal, events.TempRemoval) and removal.path == "work/a.txt"
    assert events.from_record(_record(event="progress", done=1, total=2)) is None
    assert events.exit_code_of("... returned non-zero exit status 3.") == 3


def test_plain_keeps_namedlist_names() -> None:
    from snakemake.iocontainers import Namedlist

    params = Namedlist(fromdict={"sep": " ", "n": 2})
    params.append("extra")
    assert events.plain(params) == {"sep": " ", "n": 2, "2": "extra"}
    assert events.plain({"a": (1, {2})}) == {"a": [1, [2]]}


def test_rule_sources_and_script_hash(tmp_path: Path) -> None:
    (tmp_path / "workflow" / "rules").mkdir(parents=True)
    (tmp_path / "workflow" / "scripts").mkdir()
    (tmp_path / "workflow" / "scripts" / "go.py").write_text("print('go')\n")
    snakefile = tmp_path / "workflow" / "Snakefile"
    snakefile.write_text('include: "rules/more.smk"\n\nrule all:\n    input: "x"\n')
    (tmp_path / "workflow" / "rules" / "more.smk").write_text(
        '# helpers\nrule go:\n    output: "x"\n    script:\n        "../scripts/go.py"\n\n'
        "def helper():\n    pass\n"
    )
    sources = Sources(str(snakefile))
    go = sources.rule("go")
    assert go.code is not None and go.code.startswith('rule go:\n    output: "x"')
    assert "def helper" not in go.code and "print('go')" in go.code
    assert go.script is not None and go.script["path"].endswith("workflow/scripts/go.py")
    assert go.reference is not None and go.reference.endswith("more.smk:2")
    # a wrong line from the engine falls back to the search by name
    assert sources.rule("all", str(snakefile), 99).code == 'rule all:\n    input: "x"\n'
    assert sources.rule("nosuch").code is None
    assert pipeline_key(str(snakefile), str(tmp_path)) == tmp_path.name


def test_metadata_records_long_names_and_grouping(tmp_path: Path) -> None:
    long_name = "results/" + "x" * 300 + ".txt"
    folder = tmp_path / ".snakemake" / "metadata"
    for output, start in ((long_name, 10.0), ("results/y.txt", 10.2), ("other.txt", 50.0)):
        path = metadata._record_path(folder, output)
        path.parent.mkdir(parents=True, exist_ok=True)
        rule = "other" if output == "other.txt" else "make"
        record = {"rule": rule, "job_hash": 7, "starttime": start, "endtime": start + 1}
        path.write_text(json.dumps(record | {"input": ["in.txt", "<pipe>"]}))
    (folder / "garbage").write_text("{not json")
    assert metadata.read(tmp_path, long_name) is not None
    records = metadata.read_all(tmp_path)
    assert sorted(r.output for r in records) == sorted([long_name, "results/y.txt", "other.txt"])
    groups = metadata.group_jobs(records)
    assert [[r.output for r in g] for g in groups] == [
        [long_name, "results/y.txt"],
        ["other.txt"],
    ]
    assert groups[0][0].inputs == ["in.txt"]
    incomplete = (
        tmp_path / ".snakemake" / "incomplete" / metadata._record_path(Path("."), "other.txt")
    )
    incomplete.parent.mkdir(parents=True, exist_ok=True)
    incomplete.write_text("{}")
    assert metadata.read(tmp_path, "other.txt") is None  # its job is running again


def test_the_plugin_records_through_the_public_api_and_the_recorder_only() -> None:
    """No models, database, usage or other private core module (the writer used to import
    lakeline.models and write run_inputs itself): the layering contract, for this plugin."""
    import ast
    import tomllib

    root = Path(plugin.__file__).resolve().parents[3]
    config = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["name"].startswith("Integrations")]
    forbidden = tuple(contract["forbidden_modules"])
    found = []
    for path in Path(plugin.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [
                f"{path.name}: {n}" for n in names if n.startswith(forbidden) and n != "lakeline"
            ]
    assert found == []
