"""The `lakeline` command line, against real instances (SQLite and PostgreSQL), no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import lakeline
import pytest
from click.testing import CliRunner, Result
from lakeline.cli import build_cli, cli
from lakeline.config import InstanceConfig, current_name, load_config
from lakeline.db.migrate import HEAD_REVISION
from lakeline.hookspecs import hookimpl
from lakeline.instance import Instance


def run(*args: str, input: str | None = None, ok: bool = True) -> Result:
    """Invoke the CLI; with `ok`, fail the test (showing the output) unless it exits 0."""
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), input=input)
    if ok:
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def fails(*args: str, code: int = 1) -> Result:
    """Invoke the CLI, expecting a one-line error (exit 1) or a usage error (exit 2)."""
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code == 1:
        assert result.stderr.startswith("error: "), result.stderr
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


# -- help and the group ---------------------------------------------------------------------------


def test_help_lists_every_command(lakeline_home: Path) -> None:
    result = run("--help")
    for name in ("init", "connect", "disconnect", "instances", "info", "migrate"):
        assert name in result.output
    for name in ("ls", "save", "get", "delete", "search"):
        assert name in result.output
    assert lakeline.__version__ in run("--version").output


def test_console_script_runs_as_a_process(lakeline_home: Path) -> None:
    script = Path(sys.executable).parent / "lakeline"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {**os.environ, "LAKELINE_HOME": str(lakeline_home)}
    ok = subprocess.run([script, "--help"], env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "Commands:" in ok.stdout
    bad = subprocess.run(
        [script, "connect", "nowhere"], env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: no instance named 'nowhere'")
    assert "Traceback" not in bad.stderr


# -- init, connect, instances, info, disconnect ---------------------------------------------------


def test_init_creates_a_sqlite_instance(lakeline_home: Path, tmp_path: Path) -> None:
    result = run("init", "--storage", str(tmp_path / "lake"), "--name", "demo")
    assert "created instance demo" in result.output
    assert "sqlite" in result.output
    assert current_name() == "demo"
    config = load_config("demo")
    assert config.storage == str(tmp_path / "lake")
    assert (tmp_path / "lake" / ".lakeline" / "demo.db").exists()


def test_init_names_the_instance_after_its_folder(lakeline_home: Path, tmp_path: Path) -> None:
    run("init", "--storage", str(tmp_path / "mylake"))
    assert current_name() == "mylake"


def test_init_on_postgres_creates_the_schema(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    # A password in the URL must never be printed (the test server trusts local users).
    url = empty_postgres_url.replace("@", ":s3cr3t-pw@", 1)
    result = run("init", "--storage", str(tmp_path / "lake"), "--db", url, "--name", "pg")
    assert "postgresql" in result.output
    assert "s3cr3t-pw" not in result.output
    info = run("info")
    assert "pg" in info.output and HEAD_REVISION in info.output
    assert "s3cr3t-pw" not in info.output


def test_init_joins_an_existing_postgres_instance(
    lakeline_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    run("init", "--storage", str(tmp_path / "lake"), "--db", postgres_url, "--name", "one")
    first = load_config("one").uid
    run("init", "--storage", str(tmp_path / "lake"), "--db", postgres_url, "--name", "two")
    assert load_config("two").uid == first


def test_init_parses_storage_options_as_json(
    lakeline_home: Path, s3_server: Any, s3_bucket: str
) -> None:
    options = s3_server.storage_options
    run(
        "init",
        "--storage",
        f"s3://{s3_bucket}/lake",
        "--name",
        "s3lake",
        "--storage-option",
        f"key={options['key']}",
        "--storage-option",
        f"secret={options['secret']}",
        "--storage-option",
        f"client_kwargs={json.dumps(options['client_kwargs'])}",
    )
    assert load_config("s3lake").storage_options == options


def test_init_rejects_a_storage_option_without_value(lakeline_home: Path, tmp_path: Path) -> None:
    result = fails("init", "--storage", str(tmp_path), "--storage-option", "anon", code=2)
    assert "KEY=VALUE" in result.output


def test_connect_instances_info_disconnect(instance: Instance, tmp_path: Path) -> None:
    lakeline.init(storage=tmp_path / "other", name="other")  # now current
    assert current_name() == "other"

    result = run("connect", "test")
    assert "connected to test" in result.output
    assert current_name() == "test"

    listing = run("instances").output
    marked = [line for line in listing.splitlines() if "*" in line]
    assert len(marked) == 1 and "test" in marked[0]
    assert "other" in listing

    write(tmp_path / "a.txt", "a")
    run("save", str(tmp_path / "a.txt"), "--key", "a.txt")
    info = run("info").output
    assert "test" in info and instance.uid in info
    assert instance.dialect in info
    assert str(tmp_path / "data") in info
    assert instance.user.handle in info
    assert "artifacts    1 (1 version)" in info
    for name in ("runs", "transforms", "collections"):
        assert name in info

    other = run("--instance", "other", "info").output
    assert "other" in other and "artifacts    0" in other

    assert "disconnected from test" in run("disconnect").output
    assert current_name() is None
    result = fails("info")
    assert "none is current" in result.stderr


def test_instances_when_there_are_none(lakeline_home: Path) -> None:
    assert "no instances yet" in run("instances").output


# -- save -----------------------------------------------------------------------------------------


def test_save_one_file(instance: Instance, tmp_path: Path) -> None:
    source = write(tmp_path / "reads.csv", "a,b\n1,2\n")
    result = run("save", str(source), "--key", "raw/reads.csv", "--description", "the reads")
    saved = lakeline.Artifact.get(key="raw/reads.csv")
    assert saved.uid in result.output
    assert "new" in result.output and "saved 1 artifact (1 new)" in result.output
    assert saved.description == "the reads"
    assert saved.size == source.stat().st_size
    assert Path(saved.cache()).read_text() == "a,b\n1,2\n"


def test_save_defaults_the_key_to_the_file_name(instance: Instance, tmp_path: Path) -> None:
    run("save", str(write(tmp_path / "notes.txt", "n")))
    assert lakeline.Artifact.get(key="notes.txt").size == 1


def test_save_several_paths_in_one_go(instance: Instance, tmp_path: Path) -> None:
    paths = [write(tmp_path / "in" / f"s{i}.txt", f"sample {i}") for i in range(3)]
    folder = tmp_path / "in" / "plates"
    write(folder / "p1.tsv", "x")
    write(folder / "sub" / "p2.tsv", "yy")
    result = run("save", *map(str, paths), str(folder), "--prefix", "batch1/")
    assert "saved 4 artifacts (4 new)" in result.output
    assert "hashing" in result.stderr  # the progress bar
    keys = {a.key for a in lakeline.Artifact.filter(key__startswith="batch1/")}
    assert keys == {"batch1/s0.txt", "batch1/s1.txt", "batch1/s2.txt", "batch1/plates"}
    plates = lakeline.Artifact.get(key="batch1/plates")
    assert plates.n_files == 2 and plates.size == 3


def test_save_is_idempotent_and_versions_changed_content(
    instance: Instance, tmp_path: Path
) -> None:
    source = write(tmp_path / "a.txt", "first")
    first = run("save", str(source), "--key", "docs/a.txt")
    assert "new" in first.output

    again = run("save", str(source), "--key", "docs/a.txt")
    assert "unchanged" in again.output and "saved 1 artifact (1 unchanged)" in again.output
    assert lakeline.Artifact.filter(key="docs/a.txt", is_latest=None).count() == 1

    source.write_text("second")
    changed = run("save", str(source), "--key", "docs/a.txt")
    assert "new version" in changed.output
    versions = lakeline.Artifact.filter(key="docs/a.txt", is_latest=None).order_by("uid").all()
    assert len(versions) == 2
    assert [v.is_latest for v in versions] == [False, True]
    assert versions[1].uid in changed.output


def test_save_several_reports_unchanged_and_new(instance: Instance, tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "a")
    b = write(tmp_path / "b.txt", "b")
    run("save", str(a), str(b), "--prefix", "p")
    b.write_text("b2")
    result = run("save", str(a), str(b), "--prefix", "p")
    assert "saved 2 artifacts (1 new version, 1 unchanged)" in result.output


def test_save_registers_files_inside_the_storage_in_place(
    instance: Instance, tmp_path: Path
) -> None:
    inside = write(tmp_path / "data" / "project" / "table.csv", "x,y\n")
    run("save", str(inside))
    artifact = lakeline.Artifact.get(key="project/table.csv")
    assert artifact.in_place
    assert artifact.path == str(inside)


def test_save_usage_errors(instance: Instance, tmp_path: Path) -> None:
    a = write(tmp_path / "x" / "a.txt", "1")
    b = write(tmp_path / "y" / "a.txt", "2")
    result = fails("save", str(a), str(b), "--key", "k.txt", code=2)
    assert "--prefix" in result.output
    result = fails("save", str(a), str(b), "--prefix", "dup", code=2)
    assert "dup/a.txt" in result.output
    assert lakeline.Artifact.filter().count() == 0
    fails("save", code=2)


# -- ls, get, search, delete ----------------------------------------------------------------------


@pytest.fixture
def catalog(instance: Instance, tmp_path: Path) -> dict[str, Any]:
    """A few artifacts: two keys under raw/ (one with two versions), one folder, one other."""
    src = tmp_path / "src"
    reads = write(src / "reads.csv", "v1")
    run("save", str(reads), "--key", "raw/reads.csv", "--description", "sequencing reads")
    reads.write_text("version two")
    run("save", str(reads), "--key", "raw/reads.csv", "--description", "sequencing reads")
    run("save", str(write(src / "meta.json", '{"a": 1}')), "--key", "raw/meta.json")
    write(src / "images" / "one.png", "png1")
    write(src / "images" / "two.png", "png22")
    run("save", str(src / "images"), "--key", "results/images")
    return {"reads": lakeline.Artifact.get(key="raw/reads.csv")}


def test_ls_table(catalog: dict[str, Any]) -> None:
    output = run("ls").output
    for key in ("raw/reads.csv", "raw/meta.json", "results/images"):
        assert key in output
    assert catalog["reads"].uid in output
    assert "11 B" in output  # "version two"
    assert "9 B (2 files)" in output
    header = output.splitlines()[1]
    for column in ("key", "uid", "size", "version", "latest", "created"):
        assert column in header

    raw = run("ls", "raw/").output
    assert "raw/reads.csv" in raw and "results/images" not in raw
    assert "no artifacts under 'nothing/'" in run("ls", "nothing/").output


def test_ls_json_and_versions(catalog: dict[str, Any]) -> None:
    records = json_lines(run("ls", "raw/", "--json").stdout)
    assert [r["key"] for r in records] == ["raw/meta.json", "raw/reads.csv"]
    reads = records[1]
    assert reads["uid"] == catalog["reads"].uid
    assert reads["version"] == 2 and reads["is_latest"] is True and reads["size"] == 11

    every = json_lines(run("ls", "raw/reads.csv", "--all-versions", "--json").stdout)
    assert [(r["version"], r["is_latest"]) for r in every] == [(1, False), (2, True)]

    limited = run("ls", "--limit", "1")
    assert "showing 1 of 3 artifacts" in limited.stderr
    assert len(json_lines(run("ls", "--limit", "2", "--json").stdout)) == 2


def test_get_copies_bytes(catalog: dict[str, Any], tmp_path: Path) -> None:
    result = run("get", "raw/reads.csv", "-o", str(tmp_path / "out.csv"))
    assert (tmp_path / "out.csv").read_text() == "version two"
    assert catalog["reads"].uid in result.output
    assert catalog["reads"].cache() in result.output  # the local path

    run("get", "raw/reads.csv", "--version", "1", "-o", str(tmp_path / "old") + "/")
    assert (tmp_path / "old" / "reads.csv").read_text() == "v1"

    run("get", "results/images", "-o", str(tmp_path / "imgs"))
    assert (tmp_path / "imgs" / "one.png").read_text() == "png1"
    assert (tmp_path / "imgs" / "two.png").read_text() == "png22"

    result = fails("get", "raw/reads.csv", "-o", str(tmp_path / "out.csv"))
    assert "already exists" in result.stderr
    run("get", "raw/reads.csv", "--version", "1", "-o", str(tmp_path / "out.csv"), "--force")
    assert (tmp_path / "out.csv").read_text() == "v1"


def test_get_by_uid_and_stem(catalog: dict[str, Any]) -> None:
    reads = catalog["reads"]
    first_uid = reads.uid[:12] + "0000"
    by_uid = json_lines(run("get", first_uid, "--json").stdout)[0]
    assert by_uid["uid"] == first_uid and by_uid["version"] == 1
    assert Path(by_uid["local_path"]).read_text() == "v1"
    by_stem = json_lines(run("get", reads.uid[:12], "--json").stdout)[0]
    assert by_stem["uid"] == reads.uid
    details = run("get", first_uid).output
    assert "not the latest" in details and "sequencing reads" in details

    result = fails("get", "raw/reads.csv", "--version", "7")
    assert "no version '7'" in result.stderr and "1, 2" in result.stderr


def test_search(catalog: dict[str, Any]) -> None:
    result = run("search", "sequencing")
    assert "raw/reads.csv" in result.output and "results/images" not in result.output
    records = json_lines(run("search", "images", "--json").stdout)
    assert [r["key"] for r in records] == ["results/images"]
    records = json_lines(run("search", "images", "--json", "--exhaustive").stdout)
    assert [r["key"] for r in records] == ["results/images"]
    assert "no artifacts match" in run("search", "zebrafish").output


def test_delete(catalog: dict[str, Any]) -> None:
    reads = catalog["reads"]
    declined = run("delete", "raw/reads.csv", input="n\n", ok=False)
    assert declined.exit_code == 1
    assert lakeline.Artifact.filter(uid=reads.uid).count() == 1

    result = run("delete", "raw/reads.csv", input="y\n")
    assert f"deleted raw/reads.csv (uid {reads.uid}, version 2)" in result.output
    assert "the latest version is now 1" in result.output
    assert lakeline.Artifact.filter(uid=reads.uid).count() == 0
    assert lakeline.Artifact.get(key="raw/reads.csv").uid == reads.uid[:12] + "0000"

    meta = lakeline.Artifact.get(key="raw/meta.json")
    run("delete", meta.uid, "--yes")
    assert lakeline.Artifact.filter(key="raw/meta.json", is_latest=None).count() == 0


# -- migrate --------------------------------------------------------------------------------------


def test_migrate_current_instance_is_up_to_date(instance: Instance) -> None:
    assert f"test: schema already at revision {HEAD_REVISION}" in run("migrate").output


def _empty_instance(name: str, db: str, storage: Path) -> None:
    storage.mkdir(parents=True, exist_ok=True)
    InstanceConfig(name=name, db=db, storage=str(storage), uid="x").write()


def test_migrate_an_empty_database(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    _empty_instance("lite", f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "s1")
    _empty_instance("pg", empty_postgres_url, tmp_path / "s2")
    for name in ("lite", "pg"):
        migrated = run("migrate", name).output
        assert f"{name}: migrated schema (empty) -> {HEAD_REVISION}" in migrated
        assert f"already at revision {HEAD_REVISION}" in run("migrate", name).output


# -- errors ---------------------------------------------------------------------------------------


def test_error_missing_path(instance: Instance, tmp_path: Path) -> None:
    result = fails("save", str(tmp_path / "missing.csv"), "--key", "m.csv")
    assert "missing.csv does not exist" in result.stderr


def test_error_absolute_key(instance: Instance, tmp_path: Path) -> None:
    source = write(tmp_path / "a.txt", "a")
    result = fails("save", str(source), "--key", "/etc/a.txt")
    assert "'/etc/a.txt' is absolute" in result.stderr
    assert lakeline.Artifact.filter().count() == 0
    assert "is absolute" in fails("get", "/etc/a.txt").stderr


def test_error_unknown_instance(lakeline_home: Path) -> None:
    assert "no instance named 'nowhere'" in fails("connect", "nowhere").stderr
    assert "no instance named 'nowhere'" in fails("--instance", "nowhere", "ls").stderr
    assert "no instance named 'nowhere'" in fails("migrate", "nowhere").stderr


def test_error_unknown_uid(instance: Instance) -> None:
    result = fails("get", "AAAAAAAAAAAAAAAA")
    assert "no artifact with uid or key 'AAAAAAAAAAAAAAAA'" in result.stderr
    assert "no artifact with key 'raw/none.csv'" in fails("delete", "raw/none.csv", "-y").stderr


def test_error_not_connected(lakeline_home: Path) -> None:
    assert "none is current" in fails("ls").stderr


def test_debug_shows_the_exception(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKELINE_DEBUG", "1")
    result = CliRunner().invoke(cli, ["get", "AAAAAAAAAAAAAAAA"])
    assert isinstance(result.exception, lakeline.errors.DoesNotExist)


# -- plugins --------------------------------------------------------------------------------------


class HelloPlugin:
    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command()
        @click.argument("name")
        def hello(name: str) -> None:
            """Greet NAME (a plugin command)."""
            if name == "error":
                raise lakeline.errors.LakelineError("plugins get one-line errors too")
            click.echo(f"hello {name}")


def test_hook_register_commands(lakeline_home: Path) -> None:
    from lakeline.plugins import get_plugin_manager

    get_plugin_manager().register(HelloPlugin(), name="hello-plugin")
    group = build_cli()
    runner = CliRunner()
    assert "Greet NAME" in runner.invoke(group, ["--help"]).output
    result = runner.invoke(group, ["hello", "world"])
    assert result.exit_code == 0 and result.output == "hello world\n"
    failed = runner.invoke(group, ["hello", "error"])
    assert failed.exit_code == 1
    assert failed.stderr == "error: plugins get one-line errors too\n"


def test_save_and_get_on_s3_storage(s3_instance: Instance, tmp_path: Path) -> None:
    source = write(tmp_path / "remote.txt", "bytes in a bucket")
    run("save", str(source), "--key", "remote/remote.txt")
    artifact = lakeline.Artifact.get(key="remote/remote.txt")
    assert artifact.path.startswith("s3://")
    run("get", "remote/remote.txt", "-o", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "bytes in a bucket"
