"""Jupyter notebooks: is this a notebook kernel, which file is it, its code and its report."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from lakeline.errors import LakelineError


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter (ipykernel) kernel."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def notebook_path() -> Path:
    """The notebook's file: $LAKELINE_NOTEBOOK_PATH, VS Code's variable, or Jupyter's session."""
    candidates: list[str | None] = [os.environ.get("LAKELINE_NOTEBOOK_PATH")]
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            candidates.append(shell.user_ns.get("__vsc_ipynb_file__"))
    except ImportError:
        pass
    candidates.append(os.environ.get("JPY_SESSION_NAME"))  # set by jupyter-server >= 2
    for candidate in candidates:
        if candidate and candidate.endswith(".ipynb"):
            path = Path(candidate).expanduser()
            if not path.is_absolute():
                path = Path.cwd() / path
            if not path.exists():
                raise LakelineError(
                    f"the notebook {path} is not saved on disk yet: save it, then call track()"
                )
            return path.resolve()
    raise LakelineError(
        "cannot tell which notebook this is (it may be unsaved or run by a tool that does not "
        "say): save it, or set LAKELINE_NOTEBOOK_PATH to its path before track()"
    )


def code_of(path: Path) -> str:
    """The notebook's code cells, joined: what identifies its version (outputs do not)."""
    try:
        notebook: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LakelineError(f"cannot read the notebook {path}: {exc}") from exc
    cells = notebook.get("cells", [])
    sources = [
        "".join(c["source"]) if isinstance(c.get("source"), list) else str(c.get("source", ""))
        for c in cells
        if c.get("cell_type") == "code"
    ]
    return "\n\n# %%\n".join(sources)


def code_hash(text: str) -> str:
    """sha256 of a transform's code."""
    return hashlib.sha256(text.encode()).hexdigest()


def html_report(path: Path, target: Path) -> Path:
    """Render the notebook (as saved, with its outputs) to a standalone HTML file."""
    import nbconvert
    import nbformat

    read: Any = nbformat.read
    exporter: Any = nbconvert.HTMLExporter
    body, _ = exporter().from_notebook_node(read(str(path), as_version=4))
    target.write_text(body)
    return target
