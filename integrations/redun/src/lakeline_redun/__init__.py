"""lakeline_redun: every redun job, with its files, captured as lakeline lineage.

- after a run: `lakeline redun import [--db .redun/redun.db] [--execution ID]`
  (or `import_redun(...)`);
- while redun runs: `setup_scheduler = lakeline_redun::setup_scheduler` in the `[scheduler]`
  section of `.redun/redun.ini`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakeline_redun.importer import ImportResult, import_redun
    from lakeline_redun.scheduler import LakelineScheduler, setup_scheduler

__all__ = ["ImportResult", "LakelineScheduler", "import_redun", "setup_scheduler"]

_WHERE = {
    "ImportResult": "lakeline_redun.importer",
    "import_redun": "lakeline_redun.importer",
    "LakelineScheduler": "lakeline_redun.scheduler",
    "setup_scheduler": "lakeline_redun.scheduler",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module 'lakeline_redun' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
