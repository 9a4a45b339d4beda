"""lakeline-bio's fixtures: an instance mounting the `bio` module, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lakeline import plugins
from lakeline.instance import Instance


@pytest.fixture
def bio_plugin(lakeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """lakeline-bio's entry point allowed to load (it is installed in the environment).
    The collected modules are forgotten before and after (plugins.reset() keeps them)."""
    from lakeline.modules import spec

    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "bio")
    plugins.reset()
    spec.reset()
    yield
    plugins.reset()
    spec.reset()


@pytest.fixture(params=["sqlite", "postgres"])
def bio_instance(request: pytest.FixtureRequest, bio_plugin: None, tmp_path: Path) -> Instance:
    """A connected instance mounting the bio module."""
    from lakeline.instance import init

    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    return init(tmp_path / "data", db=url, name="test", modules=["bio"])
