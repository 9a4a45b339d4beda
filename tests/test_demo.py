"""The README's first command: the demo runs on a fresh folder and tells the lineage story."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lakeline as ll
import pytest

ROOT = Path(__file__).parents[1]


def test_demo_ends_with_the_lineage_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELINE_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    picture = tmp_path / "lineage.svg"
    assert f"lineage picture: {picture}" in done.stdout
    assert picture.read_text().startswith("<svg")

    monkeypatch.setenv("LAKELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "")
    ll.connect("demo")
    try:
        report = ll.Artifact.get(key="results/report.txt")
        graph = report.lineage(direction="upstream")
        keys = {node.key for node in graph.artifacts}
        assert {"raw/s1_counts.csv", "data/normalized.parquet", "results/top.csv"} <= keys
        steps = sorted(node.transform_key for node in graph.runs)
        assert steps[1:] == ["report", "top"] and steps[0].endswith("/normalize.py"), steps
    finally:
        from lakeline.instance import disconnect

        disconnect()
