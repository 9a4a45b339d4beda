"""A task output deep in its work dir, published: its path inside the work dir is the copy's
role, and one longer than a role holds (255 characters) is shortened, not a failed import."""

from __future__ import annotations

import os
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.models import RunInput
from lakeline_nextflow import import_run
from nf_helpers import log_line, task_dir, write
from sqlalchemy import func, select

SESSION = "5b1c0a2e-7d3f-4e8a-9c6b-1f2e3d4c5b6a"
DEEP = "ee" + "5" * 30
NESTED = "/".join(["level"] * 50) + "/deep.txt"  # 308 characters
STAGED = "/".join(["жжжжж"] * 60) + "/in.txt"  # 366 characters, 2 bytes each in UTF-8


def launch_dir(root: Path, staged: list[tuple[str, str]] = ()) -> Path:  # type: ignore[assignment]
    launch = root / "project"
    for _, name in staged:  # the staged name's folders, before task_dir links it
        os.makedirs((launch / "work" / DEEP[:2] / DEEP[2:] / name).parent)
    task_dir(
        launch / "work",
        DEEP,
        "DEEP",
        outputs={NESTED: "deep bytes"},
        declared=[NESTED],
        staged=staged,
    )
    write(launch / "results" / "deep.txt", "deep bytes")
    done = (
        f"Task completed > TaskHandler[id: 1; name: DEEP; status: COMPLETED; exit: 0; "
        f"error: -; workDir: {launch}/work/{DEEP[:2]}/{DEEP[2:]}]"
    )
    text = (
        log_line("Mar-01 10:00:00.000", "$> nextflow run main.nf")
        + log_line("Mar-01 10:00:00.000", "N E X T F L O W  ~  version 25.10.4", "INFO")
        + log_line(
            "Mar-01 10:00:00.000", "Launching `main.nf` [deep_dive] DSL2 - revision: 1", "INFO"
        )
        + log_line("Mar-01 10:00:00.000", f"Session UUID: {SESSION}")
        + log_line("Mar-01 10:00:00.000", "Run name: deep_dive")
        + log_line("Mar-01 10:00:00.100", f"Work-dir: {launch}/work [ext4]")
        + log_line(
            "Mar-01 10:00:01.000", f"[{DEEP[:2]}/{DEEP[2:8]}] Submitted process > DEEP", "INFO"
        )
        + log_line("Mar-01 10:00:02.000", done, thread="Task monitor")
        + log_line("Mar-01 10:00:03.000", "> Execution complete -- Goodbye")
    )
    write(launch / ".nextflow.log", text)
    write(
        launch / ".nextflow" / "history",
        f"2024-03-01 10:00:00\t3s\tdeep_dive\tOK\t0a1b2c3d4e5f\t{SESSION}\tnextflow run main.nf\n",
    )
    return launch


def test_a_published_output_deeper_than_a_role_is_imported(
    instance: Instance, tmp_path: Path
) -> None:
    launch = launch_dir(tmp_path)
    report = import_run(launch, timezone="UTC")
    assert report.published == 1 and report.by_status == {"completed": 1}
    publish = ll.Run.get(engine="nextflow", engine_ref=f"{DEEP}/publish")
    (source,) = publish.inputs
    assert source.key.endswith(NESTED)
    with instance.engine.connect() as conn:
        (role,) = conn.execute(select(RunInput.role).where(RunInput.run_id == publish.id)).scalars()
    assert len(role) == 255 and role.startswith("…") and NESTED.endswith(role[1:])
    (copy,) = publish.outputs
    assert copy.path.endswith("results/deep.txt") and copy.hash == source.hash


def test_a_staged_input_named_deeper_than_a_role_is_imported_once(
    instance: Instance, tmp_path: Path
) -> None:
    """A staged input's role is its name in the work dir: one longer than a role holds (in
    characters: PostgreSQL's varchar(255) counts them, not bytes) keeps its end, and a second
    import finds the same edges (the role is part of the edge's unique key)."""
    data = tmp_path / "inputs" / "in.txt"
    data.parent.mkdir()
    data.write_text("input bytes")
    launch = launch_dir(tmp_path, staged=[(str(data), STAGED)])
    for _ in range(2):
        assert import_run(launch, timezone="UTC").by_status == {"completed": 1}
        with instance.engine.connect() as conn:
            edges = conn.execute(select(func.count()).select_from(RunInput)).scalar_one()
            role = conn.execute(
                select(RunInput.role).where(RunInput.role.endswith("/in.txt"))
            ).scalar_one()
        assert edges == 2  # the staged input's and the published copy's source
        assert len(role) == 255 and role.startswith("…") and STAGED.endswith(role[1:])
    (task,) = [r for r in ll.Run.filter(engine="nextflow", engine_ref=DEEP)]
    assert [a.path for a in task.inputs] == [str(data)]
