"""`lakeline redun import`: record the executions in a redun database as lineage."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeline.lineage.recorder import Recorder

from lakeline_redun.reader import executions, job_ids, job_info, open_backend
from lakeline_redun.record import ENGINE, ExecutionRecorder

if TYPE_CHECKING:
    from lakeline.instance import Instance


@dataclass
class ImportResult:
    """What an import did: executions and jobs read, files that had vanished."""

    executions: list[str] = field(default_factory=list)
    jobs: int = 0
    missing: list[str] = field(default_factory=list)


def default_root(db: str) -> str:
    """Where redun's relative paths start: the folder holding `.redun/`, else the cwd."""
    if "://" not in db:
        folder = os.path.dirname(os.path.abspath(db))
        if os.path.basename(folder) == ".redun":
            return os.path.dirname(folder)
    return os.getcwd()


def import_redun(
    db: str = ".redun/redun.db",
    *,
    execution: str | None = None,
    root: str | os.PathLike[str] | None = None,
    pipeline: str | None = None,
    upload: bool = False,
    instance: Instance | None = None,
) -> ImportResult:
    """Record every execution in the redun database `db` (or only `execution`).

    `root` is the folder redun ran in (relative File paths start there). Importing again
    changes nothing; files that have since vanished are listed in `missing`.
    """
    backend = open_backend(db)
    session = backend.session
    assert session is not None
    try:
        found = executions(session, execution, db)
        recorder = Recorder(
            ENGINE, root=os.fspath(root or default_root(db)), upload=upload, instance=instance
        )
        result = ImportResult()
        for info in found:
            target = ExecutionRecorder(recorder, info, pipeline=pipeline)
            for job_id in job_ids(session, info.id):
                target.finish_job(job_info(session, job_id))
                result.jobs += 1
            result.executions.append(info.id)
        result.missing = list(recorder.missing)
        return result
    finally:
        session.close()
        assert backend.engine is not None
        backend.engine.dispose()
