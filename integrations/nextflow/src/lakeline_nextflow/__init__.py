"""lakeline_nextflow: Nextflow runs as lakeline lineage.

`import_run(launch_dir)` imports what a run left on disk (logs, history, traces, reports, work
dirs, lineage store, nf-prov RO-Crate); `WeblogReceiver` / `WeblogServer` record runs live from
`-with-weblog` events. Both record through lakeline's Recorder, keyed by session and task hash.
Names load on first use, so lakeline's plugin loading (which imports this package for its CLI
commands) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakeline_nextflow.importer import import_run
    from lakeline_nextflow.model import Report
    from lakeline_nextflow.server import WeblogServer
    from lakeline_nextflow.weblog import WeblogReceiver

__all__ = ["Report", "WeblogReceiver", "WeblogServer", "import_run"]

_LAZY = {
    "import_run": "lakeline_nextflow.importer",
    "Report": "lakeline_nextflow.model",
    "WeblogReceiver": "lakeline_nextflow.weblog",
    "WeblogServer": "lakeline_nextflow.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lakeline_nextflow' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
