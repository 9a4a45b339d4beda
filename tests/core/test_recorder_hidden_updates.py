"""PostgreSQL: the plain Recorder's updates of a run between its start and its finish (`mark`,
`note_attempt`, `annotate`) on a run an admin moved since to a space the connected role is not
in: PermissionDenied naming the space rules, as its finish says since 0026, not "no longer
exists" (a false fact: the run is there, in another space); the run is left as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lakeline.errors import PermissionDenied
from lakeline.lineage.handles import Handle
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from test_batch_left_out_hidden import _held_to_onc, _move, _runs

pytestmark = pytest.mark.postgres

CALLS: dict[str, Callable[[Recorder, Handle], object]] = {
    "mark": lambda rec, wf: rec.mark(wf, "started"),
    "note_attempt": lambda rec, wf: rec.note_attempt(wf, 2),
    "annotate": lambda rec, wf: rec.annotate(wf, "engine", cache="k"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_an_update_of_a_moved_run_names_it_hidden(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles, call: str
) -> None:
    _held_to_onc(tmp_path, postgres_url, login_roles)
    rec = Recorder("hid", root=tmp_path)
    moved = rec.start_workflow(key="wf", engine_run_id="moved")
    _move(login_roles, moved.run.id)
    with pytest.raises(PermissionDenied, match="space") as caught:
        CALLS[call](rec, moved)
    assert "no longer exists" not in str(caught.value)
    assert _runs(login_roles)["moved"] == (None, "started", "far")


def test_an_update_of_a_deleted_run_says_it_no_longer_exists(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The control: a run deleted since is still named gone."""
    _held_to_onc(tmp_path, postgres_url, login_roles)
    rec = Recorder("hid", root=tmp_path)
    gone = rec.start_workflow(key="wf", engine_run_id="gone")
    login_roles.admin_execute(f"DELETE FROM runs WHERE id = {gone.run.id}")
    with pytest.raises(Exception, match="no longer exists") as caught:
        rec.annotate(gone, "engine", cache="k")
    assert not isinstance(caught.value, PermissionDenied)
