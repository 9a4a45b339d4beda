"""PostgreSQL: `lakeline_default_space()`, the default of every new artifact's, run's and
label's space, runs with the rights of whoever inserts (the owner too). Its `role =
session_user` (varchar = name) picked a writer's `public.=(varchar, name)`, an exact match,
over pg_catalog's `=(text, name)`: the writer's function ran as the owner at each save.
0024 calls pg_catalog's; its downgrade gives 0023's schema back exactly."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access import spaces
from lakeline.instance import connect
from lakeline.lineage.recorder import Recorder
from lakeline.testing import LoginRoles
from lakeline.testing_servers import PostgresServer
from sqlalchemy import text
from test_definer_overloads import down_and_up
from test_helper_schema_ops import _spy, planted_writer

pytestmark = pytest.mark.postgres


def test_the_default_space_calls_no_writers_operator(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    writer_role, writer = planted_writer(owner, login_roles)
    with writer.engine.begin() as conn:
        conn.execute(
            text(_spy("eq_vn", "a varchar, b name", "boolean", "a::text OPERATOR(pg_catalog.=) b"))
        )
        conn.execute(
            text(
                "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = name, "
                "FUNCTION = public.eq_vn)"
            )
        )
    owner = connect("owner")
    spaces.create(owner, "b")
    spaces.set_membership(owner.engine, writer_role, ["b"])  # a row for the comparison to read
    with owner.engine.begin() as conn:  # those commands' own queries compare varchar with a
        conn.execute(text("DELETE FROM public.ran"))  # parameter (REVOKE CREATE closes that)
    (tmp_path / "a.txt").write_text("a")
    saved = ll.Artifact(tmp_path / "a.txt", key="a.txt").save()  # one row: the default per row
    rec = Recorder("toy", root=tmp_path)
    run = rec.start_workflow(key="wf", engine_run_id="r1").run
    assert spaces.space_of(owner, "artifacts", saved.uid) == "all"
    assert spaces.space_of(owner, "runs", run.uid) == "all"
    with owner.engine.connect() as conn:
        assert conn.execute(text("SELECT who, what, q FROM public.ran")).all() == []


def test_a_populated_catalog_goes_down_to_0023_and_back(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    """Down to 0023: the schema is a fresh 0023's (`pg_dump -s`: the function's text too); up
    again: a fresh head's."""
    down_and_up(tmp_path, postgres_url, postgres_server, "0023")
