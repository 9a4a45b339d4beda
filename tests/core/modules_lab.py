"""The `lakeline-lab` test distribution (tests/core/lab_module), installed for real: built and
installed by uv into a site folder of the session, which tests put on `sys.path`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lakeline import plugins
from lakeline.instance import Instance
from lakeline.testing import unavailable

SOURCE = Path(__file__).parent / "lab_module"
_site: Path | None = None


@pytest.fixture(scope="session")
def lab_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed distribution (package + dist-info with its entry
    point), as `pip install --target` leaves it; one per session, whichever test module
    asks (each module that imports the fixture has its own copy of it)."""
    global _site
    if _site is not None:
        return _site
    uv = shutil.which("uv")
    if uv is None:
        unavailable("uv is not on PATH (it installs the test distribution lakeline-lab)")
    site = tmp_path_factory.mktemp("lab-site")
    done = subprocess.run(
        [uv, "pip", "install", "--offline", "--no-deps", "--quiet", "--target", str(site),
         str(SOURCE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        unavailable(f"uv could not install lakeline-lab offline: {done.stderr.strip()}")
    assert (site / "lakeline_lab-1.0.dist-info" / "entry_points.txt").exists()
    _site = site
    return site


@pytest.fixture
def lab(lab_site: Path, lakeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """lakeline-lab installed in this process, its entry point allowed to load."""
    monkeypatch.syspath_prepend(str(lab_site))
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "lab")
    plugins.reset()
    yield lab_site
    plugins.reset()


@pytest.fixture(params=["sqlite", "postgres"])
def lab_instance(request: pytest.FixtureRequest, lab: Path, tmp_path: Path) -> Instance:
    """An instance mounting the lab module, on SQLite and PostgreSQL."""
    from lakeline.instance import init

    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    return init(tmp_path / "data", db=url, name="test", modules=["lab"])
