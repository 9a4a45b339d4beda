"""track()/finish() in real scripts and a real notebook; @tracked functions, threads, tasks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import LakelineError
from lakeline.instance import Instance


def run_script(
    path: Path, instance: Instance, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKELINE_INSTANCE": instance.name}
    result = subprocess.run(
        [sys.executable, str(path)], env=env, capture_output=True, text=True, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


SCRIPT = """
import lakeline as ll
ll.track(params={{"min_count": {min_count}}})
counts = ll.Artifact.get(key="raw/counts.json").load()
filtered = {{k: v for k, v in counts.items() if v >= {min_count}}}
ll.Artifact(filtered, key="tables/filtered.json").save()
{tail}
"""


@pytest.fixture
def raw(instance: Instance) -> ll.Artifact:
    return ll.Artifact({"a": 1, "b": 5, "c": 9}, key="raw/counts.json").save()


def write_script(tmp_path: Path, min_count: int = 5, tail: str = "ll.finish()") -> Path:
    path = tmp_path / "scripts" / "filter_counts.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(SCRIPT.format(min_count=min_count, tail=tail))
    return path


def test_script_run_twice_then_edited(instance: Instance, raw: ll.Artifact, tmp_path: Path) -> None:
    script = write_script(tmp_path)
    run_script(script, instance)
    run_script(script, instance)
    key = script.resolve().as_posix()  # outside git: the absolute path
    transforms = ll.Transform.filter(key=key, is_latest=None).all()
    assert len(transforms) == 1  # unchanged script: one transform
    transform = transforms[0]
    assert transform.kind == "script" and transform.source_code == script.read_text()
    runs = transform.runs.order_by("id").all()
    assert [r.status for r in runs] == ["completed", "completed"]
    assert runs[0].params == {"min_count": 5} and runs[0].finished_at is not None
    assert [s["status"] for s in runs[0].status_log or []] == ["started", "completed"]
    # inputs and outputs
    output = ll.Artifact.get(key="tables/filtered.json")
    assert output.run_id == runs[0].id  # the second run produced identical content
    assert output.load() == {"b": 5, "c": 9}
    for run in runs:
        assert [a.key for a in run.inputs] == ["raw/counts.json"]
    # the environment is stored once, shared by both runs
    assert runs[0].environment_id is not None and runs[0].environment_id == runs[1].environment_id
    env = ll.Artifact.get(id=runs[0].environment_id).load()
    assert "sqlalchemy" in env["packages"] and env["python"].startswith("3.")
    # edited script: a new transform version, and its output is a new artifact version
    script = write_script(tmp_path, min_count=7)
    run_script(script, instance)
    latest = ll.Transform.get(key=key)
    assert latest.stem == transform.stem and latest.uid.endswith("0001")
    newest = ll.Artifact.get(key="tables/filtered.json")
    assert newest.uid.endswith("0001") and newest.run.transform.uid == latest.uid  # type: ignore[union-attr]


def test_failing_script_keeps_saved_artifacts(
    instance: Instance, raw: ll.Artifact, tmp_path: Path
) -> None:
    script = write_script(tmp_path, tail="raise ValueError('broken input')")
    result = run_script(script, instance, check=False)
    assert result.returncode == 1 and "broken input" in result.stderr
    run = ll.Run.filter().one_or_none()
    assert run is not None and run.status == "errored"
    assert "ValueError: broken input" in (run.error or "")
    assert ll.Artifact.get(key="tables/filtered.json").run_id == run.id  # kept


def test_script_without_finish_is_finished_at_exit(
    instance: Instance, raw: ll.Artifact, tmp_path: Path
) -> None:
    run_script(write_script(tmp_path, tail=""), instance)
    assert ll.Run.filter().one_or_none().status == "completed"  # type: ignore[union-attr]


def test_finish_without_track_and_double_track(instance: Instance, tmp_path: Path) -> None:
    with pytest.raises(LakelineError, match=r"finish\(\) without track\(\)"):
        ll.finish()
    script = tmp_path / "twice.py"
    script.write_text("import lakeline as ll\nll.track()\nll.track()\n")
    result = run_script(script, instance, check=False)
    assert "track() was already called" in result.stderr


@ll.tracked()
def normalize(key: str, factor: float) -> ll.Artifact:
    data = ll.Artifact.get(key=key).load()
    return ll.Artifact({k: v * factor for k, v in data.items()}, key=f"norm/{factor}.json").save()


@ll.tracked(key="fails")
def fails() -> None:
    raise RuntimeError("nope")


def test_tracked_function_runs_and_params(instance: Instance, raw: ll.Artifact) -> None:
    out = normalize("raw/counts.json", 2.0)
    run = out.run
    assert run is not None and run.status == "completed"
    assert run.params == {"key": "raw/counts.json", "factor": 2.0}
    assert run.transform.kind == "function" and run.transform.key.endswith("normalize")
    assert [a.key for a in run.inputs] == ["raw/counts.json"]
    with pytest.raises(RuntimeError, match="nope"):
        fails()
    failed = ll.Run.filter(transform__key="fails").one_or_none()
    assert failed is not None and failed.status == "errored" and "nope" in (failed.error or "")


def test_tracked_calls_in_threads_and_tasks_keep_their_own_runs(
    instance: Instance, raw: ll.Artifact
) -> None:
    factors = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda f: normalize("raw/counts.json", f), factors))
    for factor, out in zip(factors, outs, strict=True):
        assert out.run.params["factor"] == factor  # type: ignore[union-attr]

    async def many() -> list[ll.Artifact]:
        return await asyncio.gather(*(anormalize(f) for f in (7.0, 8.0, 9.0)))

    for out in asyncio.run(many()):
        run = out.run
        assert run is not None and run.params == {"factor": float(out.key[5:8])}  # type: ignore[index]


@ll.tracked()
async def anormalize(factor: float) -> ll.Artifact:
    await asyncio.sleep(0.01)
    data = await asyncio.to_thread(lambda: ll.Artifact.get(key="raw/counts.json").load())
    await asyncio.sleep(0.01)
    return ll.Artifact({k: v * factor for k, v in data.items()}, key=f"norm/{factor}.json").save()


def test_nested_tracked_function_links_to_script_run(
    instance: Instance, raw: ll.Artifact, tmp_path: Path
) -> None:
    script = tmp_path / "nested.py"
    script.write_text(
        textwrap.dedent(
            """
            import lakeline as ll

            @ll.tracked()
            def step(x: int) -> None:
                ll.Artifact({"x": x}, key=f"steps/{x}.json").save()

            ll.track()
            step(1)
            step(2)
            ll.finish()
            """
        )
    )
    run_script(script, instance)
    parent = ll.Run.filter(transform__key=script.resolve().as_posix()).one_or_none()
    assert parent is not None
    children = parent.children.order_by("id").all()
    assert [c.params for c in children] == [{"x": 1}, {"x": 2}]
    assert ll.Artifact.get(key="steps/2.json").run_id == children[1].id


NOTEBOOK_CELLS = [
    "import lakeline as ll\nll.track(params={'min_count': 5})",
    "counts = ll.Artifact.get(key='raw/counts.json').load()",
    "ll.Artifact({k: v for k, v in counts.items() if v >= 5}, key='nb/filtered.json').save()",
    "ll.finish()",
]


def write_notebook(path: Path, cells: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def execute_notebook(path: Path, instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LAKELINE_INSTANCE", instance.name)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))  # what jupyter-server tells kernels
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    finally:
        nbformat.write(nb, str(path))  # save it, as a person would


def test_notebook_runs_twice_and_once_failing(
    instance: Instance, raw: ll.Artifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient.exceptions import CellExecutionError

    path = write_notebook(tmp_path / "analysis.ipynb", NOTEBOOK_CELLS)
    execute_notebook(path, instance, monkeypatch)
    execute_notebook(path, instance, monkeypatch)
    transform = ll.Transform.get(key=path.resolve().as_posix())
    assert transform.kind == "notebook" and "ll.track(" in (transform.source_code or "")
    runs = transform.runs.order_by("id").all()
    assert [r.status for r in runs] == ["completed", "completed"]
    report = ll.Artifact.get(id=runs[0].report_id)
    assert report.suffix == ".html" and "nb/filtered.json" in Path(report.cache()).read_text()
    assert [a.key for a in runs[1].inputs] == ["raw/counts.json"]
    assert ll.Artifact.get(key="nb/filtered.json").load() == {"b": 5, "c": 9}

    failing = write_notebook(
        tmp_path / "analysis.ipynb", [*NOTEBOOK_CELLS[:2], "raise KeyError('missing gene')"]
    )
    with pytest.raises(CellExecutionError, match="missing gene"):
        execute_notebook(failing, instance, monkeypatch)
    latest = ll.Transform.get(key=path.resolve().as_posix())
    assert latest.uid.endswith("0001")  # edited notebook: new version
    failed = latest.runs.one_or_none()
    assert (
        failed is not None and failed.status == "errored" and "missing gene" in (failed.error or "")
    )


def test_unsaved_notebook_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeline.lineage.notebook import notebook_path

    monkeypatch.setenv("LAKELINE_NOTEBOOK_PATH", str(tmp_path / "Untitled.ipynb"))
    with pytest.raises(LakelineError, match="not saved on disk yet"):
        notebook_path()
    monkeypatch.delenv("LAKELINE_NOTEBOOK_PATH")
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    with pytest.raises(LakelineError, match="LAKELINE_NOTEBOOK_PATH"):
        notebook_path()


# -- how a tracked script ends --------------------------------------------------------------------

ENDINGS = """
import sys, time
from pathlib import Path
import lakeline as ll

@ll.tracked()
def step(how: str) -> None:
    ll.Artifact({{"how": how}}, key="out/step.json").save()
    if how == "exit3":
        sys.exit(3)
    if how == "sleep":
        Path(sys.argv[1]).write_text("ready")
        time.sleep(120)

ll.track()
{body}
"""


def start_script(
    tmp_path: Path, instance: Instance, body: str
) -> tuple[subprocess.Popen[str], Path]:
    """Start a tracked script in the background; returns it and the file it writes when ready."""
    script = tmp_path / "ending.py"
    script.write_text(ENDINGS.format(body=textwrap.dedent(body)))
    ready = tmp_path / "ready"
    env = {**os.environ, "LAKELINE_INSTANCE": instance.name}
    process = subprocess.Popen(
        [sys.executable, str(script), str(ready)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, ready


def wait_ready(process: subprocess.Popen[str], ready: Path) -> None:
    """Wait until the script says it is running (or fail with its output if it ended)."""
    import time

    while not ready.exists():
        if process.poll() is not None:
            pytest.fail(f"the script ended early: {process.communicate()}")
        time.sleep(0.05)


def script_run() -> ll.Run:
    run = ll.Run.filter(transform__kind="script").one_or_none()
    assert run is not None
    return run


@pytest.mark.parametrize(
    ("body", "returncode", "status", "exit_code", "error"),
    [
        ("step('exit3')", 3, "errored", 3, "exit code 3"),
        ("sys.exit(3)", 3, "errored", 3, "exit code 3"),
        ("exit(4)", 4, "errored", 4, "exit code 4"),
        ("sys.exit('bad input file')", 1, "errored", 1, "bad input file"),
        ("sys.exit(0)", 0, "completed", 0, None),
        ("sys.exit()", 0, "completed", 0, None),
        ("pass", 0, "completed", 0, None),
        ("raise ValueError('broken')", 1, "errored", 1, "ValueError: broken"),
    ],
    ids=[
        "exit3-in-step",
        "exit3",
        "builtin-exit4",
        "exit-message",
        "exit0",
        "exit-none",
        "end",
        "raises",
    ],
)
def test_exit_code_and_status_of_a_script(
    instance: Instance,
    tmp_path: Path,
    body: str,
    returncode: int,
    status: str,
    exit_code: int,
    error: str | None,
) -> None:
    process, _ = start_script(tmp_path, instance, body)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == returncode, stderr
    run = script_run()
    assert (run.status, run.exit_code) == (status, exit_code)
    assert (run.error is None) if error is None else (error in (run.error or ""))
    assert run.finished_at is not None and not run.stale
    assert run.pid == process.pid and run.process_started_at is not None
    if body.startswith("step"):
        (child,) = run.children.all()
        assert (child.status, child.exit_code) == ("errored", 3)


def test_sigterm_aborts_the_run_and_its_current_step(instance: Instance, tmp_path: Path) -> None:
    import signal

    process, ready = start_script(tmp_path, instance, "step('sleep')")
    wait_ready(process, ready)
    run = script_run()
    assert run.status == "started" and not run.stale  # alive
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGTERM  # it still dies of the signal
    run = script_run()
    assert (run.status, run.exit_code) == ("aborted", 128 + signal.SIGTERM)
    assert "SIGTERM" in (run.error or "") and run.finished_at is not None
    (child,) = run.children.all()
    assert (child.status, child.exit_code) == ("aborted", 128 + signal.SIGTERM)


def test_sigkill_leaves_a_run_whose_process_is_gone(instance: Instance, tmp_path: Path) -> None:
    import signal

    from lakeline.cli import cli

    process, ready = start_script(tmp_path, instance, "step('sleep')")
    wait_ready(process, ready)
    run = script_run()
    assert run.pid == process.pid and not run.stale
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=120)
    run = script_run()
    assert run.status == "started" and run.finished_at is None  # nobody could record the end
    assert run.stale  # ... but its process is gone
    (child,) = run.children.all()
    assert child.stale
    from click.testing import CliRunner

    listed = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["runs", "--stale", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [__import__("json").loads(line) for line in listed.output.splitlines()]
    assert sorted(r["uid"] for r in rows) == sorted([run.uid, child.uid])
    assert {(r["status"], r["stale"]) for r in rows} == {("started", True)}
    table = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["runs"])
    assert "started (process gone)" in table.output and run.uid in table.output


def test_a_live_run_is_not_stale_and_a_reused_pid_is_not_its_process(
    instance: Instance, tmp_path: Path
) -> None:
    """Liveness is pid + host + the process's start time: the same pid with another start time
    is another process."""
    from datetime import timedelta

    process, ready = start_script(tmp_path, instance, "step('sleep')")
    try:
        wait_ready(process, ready)
        run = script_run()
        assert not run.stale
        with instance.sessions.write() as session:
            record = session.merge(run)
            assert record.process_started_at is not None
            record.process_started_at -= timedelta(hours=1)
        assert script_run().stale
    finally:
        process.kill()
        process.communicate()


# -- transform identity -------------------------------------------------------------------------

ANALYSIS = """
import lakeline as ll

@ll.tracked()
def normalize(x: int) -> int:
    return x * {factor}

ll.track()
normalize(1)
"""


def test_scripts_of_one_name_in_two_folders_stay_apart(instance: Instance, tmp_path: Path) -> None:
    """Outside git, a script is keyed by its absolute path: projA/analysis.py and
    projB/analysis.py are two transforms, and so are the functions they track."""
    scripts = []
    for project, factor in (("projA", 2), ("projB", 3)):
        path = tmp_path / project / "analysis.py"
        path.parent.mkdir()
        path.write_text(ANALYSIS.format(factor=factor))
        result = run_script(path, instance)
        key = path.resolve().as_posix()
        transform = ll.Transform.get(key=key)
        assert transform.kind == "script" and transform.uid.endswith("0000")  # a first version
        assert f"lakeline: tracking script {key} (version 1, transform {transform.uid})" in (
            result.stderr
        )
        (run,) = transform.runs.all()
        assert f"as run {run.uid}" in result.stderr and len(result.stderr.splitlines()) == 1
        (call,) = run.children.all()
        assert call.transform.key == f"{key}:normalize"
        assert call.transform.uid.endswith("0000")
        scripts.append(transform)
    assert scripts[0].stem != scripts[1].stem
    assert ll.Transform.filter(key__endswith=":normalize").count() == 2
    assert ll.Transform.filter(key__startswith="__main__").count() == 0


def test_script_keys_name_their_git_repository(instance: Instance, tmp_path: Path) -> None:
    """In a git repository a script is `<repository>/<path in it>`: the repository is named by
    its origin remote (so clones and worktrees agree), else by its folder."""
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    keys = []
    for folder, remote in (("checkout", "git@example.org:lab/rnaseq.git"), ("other", None)):
        root = tmp_path / folder
        (root / "scripts").mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        if remote:
            subprocess.run(["git", "-C", str(root), "remote", "add", "origin", remote], check=True)
        script = root / "scripts" / "run.py"
        script.write_text(ANALYSIS.format(factor=2))
        run_script(script, instance)
        keys.append(ll.Run.filter(transform__kind="script").order_by("-id").first().transform.key)  # type: ignore[union-attr]
    assert keys == ["rnaseq/scripts/run.py", "other/scripts/run.py"]
    functions = sorted(t.key for t in ll.Transform.filter(kind="function"))
    assert functions == ["other/scripts/run.py:normalize", "rnaseq/scripts/run.py:normalize"]


def test_tracked_function_of_a_module_run_with_dash_m(instance: Instance, tmp_path: Path) -> None:
    package = tmp_path / "pkgx"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "job.py").write_text(ANALYSIS.format(factor=2).replace("ll.track()\n", ""))
    env = {**os.environ, "LAKELINE_INSTANCE": instance.name}
    done = subprocess.run(
        [sys.executable, "-m", "pkgx.job"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert [t.key for t in ll.Transform.filter()] == ["pkgx.job.normalize"]


def test_terminated_forked_workers_do_not_end_the_scripts_run(
    instance: Instance, tmp_path: Path
) -> None:
    """multiprocessing's Pool.terminate() sends SIGTERM to its forked workers, which inherit
    lakeline's handler and the tracked run: only the process that runs a run may end it."""
    body = """
    import multiprocessing
    from lakeline.lineage.context import process_run

    def wait(i):
        Path(sys.argv[1] + str(i)).write_text("up")
        time.sleep(120)

    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map_async(wait, [0, 1])
    while not all(Path(sys.argv[1] + str(i)).exists() for i in (0, 1)):
        time.sleep(0.05)
    pool.terminate()  # SIGTERM to each (sleeping) worker
    pool.join()
    print("after the pool:", ll.Run.get(uid=process_run().uid).status)
    """
    process, _ = start_script(tmp_path, instance, body)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert stdout == "after the pool: started\n", stderr
    run = script_run()
    assert (run.status, run.exit_code, run.error) == ("completed", 0, None)
    assert [s["status"] for s in run.status_log or []] == ["started", "completed"]


def test_a_forked_child_that_exits_leaves_the_run_to_its_parent(
    instance: Instance, tmp_path: Path
) -> None:
    """os.fork(): a child that ends through sys.exit (atexit handlers run) or an exception
    (the excepthook runs) must not finish its parent's run."""
    body = """
    import os
    from lakeline.lineage.context import process_run

    for how in ("exit", "raise"):
        child = os.fork()
        if child == 0:
            if how == "exit":
                sys.exit(5)
            raise RuntimeError("child fails")
        os.waitpid(child, 0)
    print("after the children:", ll.Run.get(uid=process_run().uid).status)
    """
    process, _ = start_script(tmp_path, instance, body)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert stdout == "after the children: started\n", stderr
    assert (script_run().status, script_run().exit_code) == ("completed", 0)
