"""The many-edge insert (`insert_inputs`, one statement over the edges as JSON) stores each
role as given on both databases: texts JSON escapes (quotes, backslashes, characters past the
BMP, which JSON writes as a surrogate pair) come back as they went in, and only new edges are
handed back."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.usage import insert_inputs
from sqlalchemy import text

ROLES = ["", 'say "hi"', "back\\slash", "\U0001f600 grin", "ünï", "tab\there", "\u2028line"]


def test_roles_stored_as_given(instance: Instance, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("x")
    art = ll.Artifact(src, key="in.txt").save()
    run = ll.track(key="roles")
    ll.finish()
    edges = [(run.id, art.id, role) for role in ROLES]
    with instance.sessions.write() as session:
        assert insert_inputs(session, edges) == set(edges)
    with instance.sessions.write() as session:
        assert insert_inputs(session, [*edges, edges[0]]) == set()  # none new
    with instance.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT role FROM run_inputs WHERE run_id = :r"), {"r": run.id}
        ).scalars()
        assert sorted(stored) == sorted(ROLES)
