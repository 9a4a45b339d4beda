"""The service layer takes its Instance explicitly: only entry points read the current one."""

from __future__ import annotations

import ast
from pathlib import Path

import lakeline as ll
import mesh
import pytest
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder
from sqlalchemy import func, select

two_instances = mesh.two_instances
PACKAGE = Path(__file__).resolve().parents[2] / "core" / "src" / "lakeline"
ACCESSORS = {"current", "connected"}  # lakeline.instance's process-wide instance
# Entry points, which resolve the current instance for the user: the instance module
# itself, model methods, `ll.save`, `track()`/`@tracked`, the CLI, the web app, the
# Recorder created without an instance and `location_exists` (the integrations' surface),
# the registry methods of CanValidate, `lakeline.modules.add/mounted`,
# `save_vitessce_config` (resolves it once, then passes it down), and the pytest kit.
ENTRY_POINTS = {
    "instance.py",
    "bulk.py",
    "models",
    "cli",
    "ui",
    "lineage/track.py",
    "lineage/tracked.py",
    "lineage/recorder.py",
    "lineage/engine_support.py",
    "validation/mixin.py",
    "modules/api.py",
    "integrations/vitessce.py",
    "testing.py",
}


def _entry_point(path: Path) -> bool:
    relative = path.relative_to(PACKAGE).as_posix()
    return any(relative == e or relative.startswith(e + "/") for e in ENTRY_POINTS)


def _accessor_uses(path: Path) -> list[str]:
    """Where `path` imports the current-instance accessor (or reaches it as an attribute)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "lakeline.instance":
            found += [f"line {node.lineno}: {a.name}" for a in node.names if a.name in ACCESSORS]
        elif isinstance(node, ast.ImportFrom) and node.module == "lakeline":
            found += [f"line {node.lineno}: {a.name}" for a in node.names if a.name == "instance"]
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ACCESSORS
            and isinstance(node.value, ast.Name)
            and node.value.id in ("instance_module", "_instance_module")
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_service_modules_never_read_the_current_instance() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if not _entry_point(path) and (uses := _accessor_uses(path))
    }
    assert offenders == {}, (
        "service modules must take their Instance as an argument; only entry points "
        f"({', '.join(sorted(ENTRY_POINTS))}) may resolve the current one: {offenders}"
    )


def test_the_check_finds_an_accessor(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from lakeline.instance import current\n    return current()\n")
    assert _accessor_uses(sample) == ["line 2: current"]


def _counts(instance: Instance) -> tuple[int, int]:
    from lakeline.models import Artifact, Run

    with instance.sessions.read() as session:
        runs = session.scalar(select(func.count()).select_from(Run).where(Run.engine == "toy"))
        artifacts = session.scalar(select(func.count()).select_from(Artifact))
    return int(runs or 0), int(artifacts or 0)


def test_a_recorder_bound_to_another_instance_records_there(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    lab, atlas = two_instances
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.txt").write_text("alpha beta")
    before = _counts(lab)

    rec = Recorder("toy", root=root, instance=atlas)
    wf = rec.start_workflow(key="pipe", engine_run_id="run-1", source_code="rules")
    step = rec.start_step(wf, key="copy", kind="rule", engine_task_id="1")
    assert rec.use(step, "data/in.txt") is not None
    (root / "out.txt").write_text("alpha beta!")
    made = rec.produce(step, "out.txt")
    rec.finish_step(step, "completed", exit_code=0)
    rec.finish_workflow(wf, "completed")

    assert _counts(atlas) == (2, 2)  # workflow + step, input + output: all in atlas
    assert _counts(lab) == before  # the connected instance got nothing
    assert ll.Artifact.filter(key="out.txt").count() == 0
    assert made is not None and made.instance is atlas
    assert made.run is not None and made.run.uid == step.run.uid  # read from atlas
    assert [a.key for a in step.run.inputs] == ["data/in.txt"]
    assert ll.Run.using("atlas").get(step.run.uid).status == "completed"


def test_a_record_of_one_instance_is_refused_by_another(
    two_instances: tuple[Instance, Instance], tmp_path: Path
) -> None:
    from lakeline.artifacts.save import save_artifacts
    from lakeline.errors import ForeignRecord

    lab, atlas = two_instances
    (tmp_path / "a.txt").write_text("a")
    art = save_artifacts([ll.Artifact(tmp_path / "a.txt", key="a.txt")], atlas)[0]
    assert art.instance is atlas
    with pytest.raises(ForeignRecord, match="belongs to instance 'atlas', not to 'lab'"):
        save_artifacts([art], lab)
    with pytest.raises(ForeignRecord, match="'atlas'"):
        ll.Collection([art], key="c").save()  # into lab, the current one
    assert ll.Artifact.filter().count() == 0 and ll.Collection.filter().count() == 0
