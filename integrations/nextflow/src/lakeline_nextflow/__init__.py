"""lakeline_nextflow: Nextflow runs as lakeline lineage.

`import_run(launch_dir)` imports what a run left on disk (logs, history, traces, reports, work
dirs, lineage store, nf-prov RO-Crate); `WeblogReceiver` / `WeblogServer` record runs live from
`-with-weblog` events. Both record through lakeline's Recorder, keyed by session and task hash.
"""

from lakeline_nextflow.importer import import_run
from lakeline_nextflow.model import Report
from lakeline_nextflow.weblog import WeblogReceiver, WeblogServer

__all__ = ["Report", "WeblogReceiver", "WeblogServer", "import_run"]
