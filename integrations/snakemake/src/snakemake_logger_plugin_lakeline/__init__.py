"""Snakemake logger plugin that records every job's lineage in lakeline.

    snakemake --cores 4 --logger lakeline [--logger-lakeline-instance NAME]

Each job becomes a run of its rule's transform inside the workflow's run; its inputs are the
artifacts it used and its outputs, logs and benchmarks the artifacts it produced.
`lakeline snakemake import PATH` builds the same lineage from a past run.
"""

from snakemake_logger_plugin_lakeline.handler import LogHandler
from snakemake_logger_plugin_lakeline.settings import LogHandlerSettings

__all__ = ["LogHandler", "LogHandlerSettings"]
