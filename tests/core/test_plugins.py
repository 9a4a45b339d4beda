"""pluggy: every hook has a test; plugins load from entry points, narrowed by an allow-list."""

from __future__ import annotations

import re
import shutil
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


SAVED_PLUGIN = (
    "from lakeline.hookspecs import hookimpl\n"
    "SEEN = []\n"
    "@hookimpl\n"
    "def artifact_saved(artifact):\n"
    "    SEEN.append(artifact.key)\n"
)
COMMAND_PLUGIN = (
    "import click\n"
    "from lakeline.hookspecs import hookimpl\n"
    "@hookimpl\n"
    "def register_commands(cli):\n"
    "    @cli.command('{name}')\n"
    "    def command():\n"
    "        'A command from an installed plugin.'\n"
    "        click.echo('{name} ran')\n"
)


def _install_entry_point(
    site: Path, name: str, *, group: str = "lakeline", module: str = SAVED_PLUGIN
) -> Path:
    """A real installed distribution (dist-info + module) declaring an entry point in `group`;
    returns its dist-info folder."""
    (site / f"{name}_plugin.py").write_text(module.replace("{name}", name))
    info = site / f"{name}_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {name}_plugin\n")
    return info


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


def _names(group: str = plugins.GROUP) -> set[str]:
    return {ep.name for ep in plugins.discover() if ep.group == group}


def test_entry_point_cache_follows_installs_edits_and_removals(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    scans: list[int] = []
    scan = plugins._scan

    def counted() -> list[tuple[str, str, str]]:
        scans.append(1)
        return scan()

    monkeypatch.setattr(plugins, "_scan", counted)
    assert "cached" not in _names()
    assert len(scans) == 1
    assert list((lakeline_home / "cache" / "plugins").glob("entry-points-*.json"))
    assert "cached" not in _names()
    assert len(scans) == 1  # nothing changed: the cache answered
    info = _install_entry_point(site, "cached")
    assert "cached" in _names()  # a new distribution: scanned again, never hidden
    assert "cached" in _names()
    assert len(scans) == 2
    (info / "entry_points.txt").write_text("[lakeline]\ncached = cached_plugin\nmore = m\n")
    assert {"cached", "more"} <= _names()  # entry points edited in place
    (info / "entry_points.txt").write_text("[lakeline.commands]\ncached = cached_plugin\n")
    assert "cached" not in _names()
    assert "cached" in _names(plugins.COMMANDS_GROUP)
    shutil.rmtree(info)
    assert "cached" not in _names(plugins.COMMANDS_GROUP)  # uninstalled: gone
    assert len(scans) == 4  # as before the install: the first scan's cache answered
    _install_entry_point(site, "again")
    assert "again" in _names()
    assert len(scans) == 5


def test_entry_point_cache_ignores_folders_without_metadata(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m snakemake` puts the working folder first on sys.path: a workflow run from a
    new folder each time reads the cache, and writes no cache file per folder."""
    scans: list[int] = []
    scan = plugins._scan

    def counted() -> list[tuple[str, str, str]]:
        scans.append(1)
        return scan()

    monkeypatch.setattr(plugins, "_scan", counted)
    found = _names()
    for name in ("run-1", "run-2"):
        folder = tmp_path / name
        (folder / "data").mkdir(parents=True)
        (folder / "Snakefile").write_text("")
        monkeypatch.syspath_prepend(str(folder))
        assert _names() == found
    monkeypatch.syspath_prepend(str(tmp_path / "missing"))
    assert _names() == found
    assert len(scans) == 1
    assert len(list((lakeline_home / "cache" / "plugins").glob("entry-points-*.json"))) == 1
    _install_entry_point(tmp_path / "run-2", "late")  # metadata in such a folder counts
    assert "late" in _names()
    assert len(scans) == 2


@pytest.mark.parametrize("content", ["not json", '{"version": 1}', "[1, 2]"])
def test_a_broken_or_unwritable_cache_means_a_scan(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_entry_point(site, "demo")
    monkeypatch.syspath_prepend(str(site))
    path = plugins._cache_file()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert "demo" in _names()
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("")
    monkeypatch.setenv("LAKELINE_CACHE_DIR", str(not_a_folder))
    assert "demo" in _names()


def test_command_plugins_load_only_for_the_cli(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner
    from lakeline.cli import build_cli
    from lakeline.lineage.records import fire

    site = tmp_path / "site"
    site.mkdir()
    _install_entry_point(site, "democmd", group=plugins.COMMANDS_GROUP, module=COMMAND_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("LAKELINE_LOAD_PLUGINS")
    plugins.reset()
    try:
        pm = plugins.get_plugin_manager()
        fire("artifact_saved", artifact=None)  # observer hooks do not import command plugins
        assert pm.get_plugin("democmd") is None
        assert "democmd_plugin" not in sys.modules
        result = CliRunner().invoke(build_cli(), ["democmd"])
        assert result.exit_code == 0, result.output
        assert result.output == "democmd ran\n"
        assert plugins.get_plugin_manager() is pm
        assert pm.get_plugin("democmd") is not None
        plugins.reset()
        monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "other")  # the allow-list applies too
        assert "democmd" not in CliRunner().invoke(build_cli(), ["--help"]).output
        assert plugins.get_plugin_manager(commands=True).get_plugin("democmd") is None
    finally:
        plugins.reset()
        sys.modules.pop("democmd_plugin", None)


def test_broken_command_plugin_is_skipped_with_a_warning(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_entry_point(site, "brokencmd", group=plugins.COMMANDS_GROUP, module="import nope\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LAKELINE_LOAD_PLUGINS", "brokencmd")
    plugins.reset()
    try:
        pm = plugins.get_plugin_manager()
        with pytest.warns(RuntimeWarning, match="'brokencmd'.*No module named 'nope'"):
            assert plugins.get_plugin_manager(commands=True) is pm
        assert pm.get_plugin("brokencmd") is None
    finally:
        plugins.reset()
        sys.modules.pop("brokencmd_plugin", None)


def test_cache_kept_with_the_importlib_metadata_backport_not_with_other_finders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many libraries import `importlib_metadata`, whose finder reads the same folders: the
    cache stays on. A finder that can supply distributions from elsewhere turns it off."""
    importlib_metadata = pytest.importorskip("importlib_metadata")

    class Elsewhere:
        def find_spec(self, *args: object) -> None:
            return None

        def find_distributions(self, *args: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, importlib_metadata.MetadataPathFinder()])
    assert plugins._cacheable()
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Elsewhere()])
    assert not plugins._cacheable()


def test_the_cli_asks_plugins_again_after_a_reset(
    lakeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process-wide `cli` group loads plugin commands once per load of the plugins: a
    command installed after `plugins.reset()` is found (a long-lived shell, or a test that ran
    the CLI before another registered its module's commands)."""
    from click.testing import CliRunner
    from lakeline.cli import cli

    monkeypatch.delenv("LAKELINE_LOAD_PLUGINS", raising=False)
    plugins.reset()
    try:
        assert "latecmd" not in CliRunner().invoke(cli, ["--help"]).output
        site = tmp_path / "site"
        site.mkdir()
        _install_entry_point(site, "latecmd", group=plugins.COMMANDS_GROUP, module=COMMAND_PLUGIN)
        monkeypatch.syspath_prepend(str(site))
        plugins.reset()
        result = CliRunner().invoke(cli, ["latecmd"])
        assert result.exit_code == 0, result.output
        assert result.output == "latecmd ran\n"
    finally:
        plugins.reset()
        sys.modules.pop("latecmd_plugin", None)
        cli.commands.pop("latecmd", None)
