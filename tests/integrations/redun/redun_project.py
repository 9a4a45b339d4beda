"""A redun project folder for the tests (a module of its own: pytest loads every folder's
conftest.py as `conftest`, so tests cannot import from it when folders run together)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class Flow:
    """A redun project folder: a database in `.redun/`, workflows run with it as cwd."""

    def __init__(
        self, root: Path, db_uri: str | None = None, scheduler: str = "", workers: int = 0
    ) -> None:
        self.root = root
        self.db = root / ".redun" / "redun.db"
        self.db_uri = db_uri or f"sqlite:///{self.db}"
        self.scheduler = scheduler
        self.workers = workers  # 0: redun's default; 1: jobs run one at a time, in order
        (root / ".redun").mkdir(parents=True, exist_ok=True)
        (root / "out").mkdir(exist_ok=True)
        (root / "raw.txt").write_text("alpha beta gamma delta epsilon zeta eta")

    def run(self, expr: Any, *, live: bool = False) -> Any:
        """Run `expr` with redun (through lakeline's scheduler when `live`)."""
        from redun import Scheduler
        from redun.config import Config

        sections: dict[str, dict[str, str]] = {
            "backend": {"db_uri": self.db_uri, "automigrate": "True"}
        }
        if self.workers:
            sections["executors.default"] = {"type": "local", "max_workers": str(self.workers)}
        config = Config(sections)
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            if live:
                from lakeline_redun import setup_scheduler

                scheduler: Scheduler = setup_scheduler(config)
            else:
                scheduler = Scheduler(config=config)
            scheduler.load()
            return scheduler.run(expr)
        finally:
            os.chdir(cwd)
