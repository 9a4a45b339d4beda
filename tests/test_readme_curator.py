"""The README's curator example runs as written (on SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lakeline.instance import Instance

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_curator_example_runs(
    instance: Instance, capsys: pytest.CaptureFixture[str]
) -> None:
    text = README.read_text()
    match = re.search(r"<!-- curator example -->\n```python\n(.*?)```", text, re.S)
    assert match is not None, "the README lost its curator example"
    exec(compile(match.group(1), "README.md", "exec"), {})
    out = capsys.readouterr()
    assert "'T-cell' → 'T cell'" in out.out and "'Macrophage'" in out.out
    assert "values not in the registry" in out.err  # the table
