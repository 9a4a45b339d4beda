"""pluggy: every hook has a test; plugins load from entry points, narrowed by an allow-list."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lakeline as ll
import numpy as np
import pytest
from lakeline import hookspecs, plugins
from lakeline.formats.registry import Format
from lakeline.hookspecs import hookimpl
from lakeline.instance import Instance

TESTS = Path(__file__).parents[1]


def hook_names() -> list[str]:
    return sorted(
        name
        for name in dir(hookspecs)
        if callable(getattr(hookspecs, name)) and hasattr(getattr(hookspecs, name), "lakeline_spec")
    )


def test_every_hook_has_a_test() -> None:
    names = hook_names()
    assert {"register_formats", "register_commands", "artifact_saved"} <= set(names)
    sources = "\n".join(p.read_text() for p in TESTS.rglob("test_*.py"))
    missing = [n for n in names if not re.search(rf"def test_hook_{n}\b", sources)]
    assert missing == [], f"hooks without a test_hook_<name> test: {missing}"


def test_hookspecs_are_documented_in_one_line() -> None:
    for name in hook_names():
        doc = getattr(hookspecs, name).__doc__ or ""
        assert doc.strip() and "\n" not in doc.strip(), name


class NpyFormat:
    """A third-party format plugin: numpy arrays as .npy files."""

    @hookimpl
    def register_formats(self, register: Callable[[Format], None]) -> None:
        register(
            Format(
                name="npy",
                suffixes=(".npy",),
                types=("numpy.ndarray",),
                save=lambda arr, path: np.save(path, arr),
                load=lambda path: np.load(path),
                open=lambda path, fs: np.load(path, mmap_mode="r"),
                describe=lambda arr: {"otype": "ndarray", "n_observations": int(arr.shape[0])},
                open_needs_local=True,
            )
        )


@pytest.fixture
def registered(lakeline_home: Path) -> Iterator[Callable[[object], None]]:
    added: list[object] = []

    def register(plugin: object) -> None:
        plugins.get_plugin_manager().register(plugin)
        added.append(plugin)
        from lakeline.formats import registry

        registry.reset()

    yield register
    plugins.reset()


def test_hook_register_formats(instance: Instance, registered: Callable[[object], None]) -> None:
    with pytest.raises(ll.errors.UnsupportedObject):
        ll.Artifact(np.arange(6), key="arrays/a.npy")
    registered(NpyFormat())
    art = ll.Artifact(np.arange(6).reshape(3, 2), key="arrays/a.npy").save()
    assert (art.otype, art.n_observations, art.suffix) == ("ndarray", 3, ".npy")
    np.testing.assert_array_equal(art.load(), np.arange(6).reshape(3, 2))
    assert art.open()[2, 1] == 5


class SavedRecorder:
    def __init__(self) -> None:
        self.saved: list[str] = []

    @hookimpl
    def artifact_saved(self, artifact: ll.Artifact) -> None:
        assert artifact.id is not None  # committed before the hook fires
        self.saved.append(artifact.key or "")


def test_hook_artifact_saved(
    instance: Instance, registered: Callable[[object], None], tmp_path: Path
) -> None:
    recorder = SavedRecorder()
    registered(recorder)
    ll.Artifact({"a": 1}, key="a.json").save()
    ll.Artifact({"a": 1}, key="a.json").save()  # unchanged: no new record, no event
    ll.save([ll.Artifact({"b": i}, key=f"b/{i}.json") for i in range(3)])
    assert recorder.saved == ["a.json", "b/0.json", "b/1.json", "b/2.json"]


def _install_entry_point(site: Path, name: str) -> None:
    """A real installed distribution (dist-info + module) declaring a `lakeline` entry point."""
    (site / f"{name}_plugin.py").write_text(
        "from lakeline.hookspecs import hookimpl\n"
        "SEEN = []\n"
        "@hookimpl\n"
        "def artifact_saved(artifact):\n"
        "    SEEN.append(artifact.key)\n"
    )
    info = site / f"{name}_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lakeline]\n{name} = {name}_plugin\n")


@pytest.mark.parametrize(
    ("allow", "loaded"), [(None, True), ("", False), ("other", False), ("demo,other", True)]
)
def test_entry_points_and_allow_list(
    lakeline_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    allow: str | None,
    loaded: bool,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_entry_point(site, "demo")
    monkeypatch.syspath_prepend(str(site))
    if allow is None:
        monkeypatch.delenv("LAKELINE_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", allow)
    plugins.reset()
    try:
        pm = plugins.get_plugin_manager()
        assert (pm.get_plugin("demo") is not None) == loaded
        for name in plugins.DEFAULT_PLUGINS:  # defaults always load
            assert pm.get_plugin(name) is not None
    finally:
        plugins.reset()
        sys.modules.pop("demo_plugin", None)


def test_bad_plugin_is_reported(lakeline_home: Path) -> None:
    class Wrong:
        @hookimpl
        def artifact_saved(self, artifact: Any, extra: Any) -> None: ...

    pm = plugins.get_plugin_manager()
    with pytest.raises(Exception, match="extra"):
        pm.register(Wrong())


def test_broken_entry_point_plugin_is_skipped_with_a_warning(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_entry_point(site, "broken")
    (site / "broken_plugin.py").write_text("raise ImportError('missing dependency xyz')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "broken")
    plugins.reset()
    try:
        with pytest.warns(RuntimeWarning, match="'broken'.*missing dependency xyz"):
            pm = plugins.get_plugin_manager()
        assert pm.get_plugin("broken") is None
        assert pm.get_plugin("lakeline.formats.files") is not None
    finally:
        plugins.reset()
        sys.modules.pop("broken_plugin", None)
