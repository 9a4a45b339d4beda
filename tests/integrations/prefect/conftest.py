"""One offline Prefect test server per session (ephemeral SQLite, no network), and a
workflow folder per test that the integration records files in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

OFFLINE = {
    "PREFECT_API_URL": "",
    "PREFECT_API_KEY": "",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_CLOUD_API_URL": "http://127.0.0.1:9/api",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_TASKS_REFRESH_CACHE": "false",
    "DO_NOT_TRACK": "1",
    "NO_PROXY": "127.0.0.1,localhost",
}


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Prefect's test harness (a local server on 127.0.0.1) with its home in a tmp folder."""
    home = tmp_path_factory.mktemp("prefect-home")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in OFFLINE.items():
            mp.setenv(name, value)
        mp.setenv("PREFECT_HOME", str(home))
        mp.setenv("PREFECT_LOCAL_STORAGE_PATH", str(home / "storage"))
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=90):
            yield home


@pytest.fixture
def workdir(
    prefect_server: Path, instance: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A workflow folder (the working directory) on a fresh instance; audit off, not strict."""
    import lakeline_prefect

    root = tmp_path / "wf"
    root.mkdir()
    monkeypatch.chdir(root)
    for name in ("STRICT", "AUDIT", "ROOT", "UPLOAD", "ENABLED"):
        monkeypatch.delenv(f"LAKELINE_PREFECT_{name}", raising=False)
    lakeline_prefect.configure(root=str(root))
    yield root
    lakeline_prefect.configure(root=None, strict=None, audit=None, upload=None, enabled=None)
    assert os.getcwd()
