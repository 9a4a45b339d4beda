"""PostgreSQL: the calls lakeline's search, audit verification, identity function and finish
statements make by name are pg_catalog's. A writer that may CREATE in `public` plants an
overload that is a better match than pg_catalog's (an exact type where pg_catalog's is
polymorphic, `text` for an untyped literal where pg_catalog's takes `regconfig` or `name`, a
`varchar` parameter's exact type): it ran as whoever searched, verified the audit chain or
called `lakeline_user_id()` (the owner too). 0025 qualifies the functions the migrations made
(its downgrade gives 0024's schema back exactly)."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.audit import verify
from lakeline.db.pg_helpers import helpers
from lakeline.instance import Instance, connect
from lakeline.lineage.batching import BatchRecorder
from lakeline.testing import LoginRoles
from lakeline.testing_servers import PostgresServer
from sqlalchemy import text
from test_definer_overloads import down_and_up
from test_helper_schema_ops import planted_writer

pytestmark = pytest.mark.postgres


def _plant(writer: Instance, *statements: str) -> None:
    with writer.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def _raising(name: str, arguments: str, result: str) -> str:
    """A writer's function that fails the statement that picked it, naming who ran it (a
    search's read transaction is rolled back: a row noted in `public.ran` would not stay)."""
    return (
        f"CREATE FUNCTION public.{name}({arguments}) RETURNS {result} LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION 'the writer''s {name} ran as %', session_user; END $$"
    )


@pytest.mark.parametrize(
    "planted",
    [
        [_raising("unnest", "a text[]", "SETOF text")],
        [_raising("to_tsquery", "a text, b text", "tsquery")],
        [_raising("to_tsquery", "a regconfig, b varchar", "tsquery")],
        [
            _raising("agg_int", "s integer[], v integer", "integer[]"),
            "CREATE AGGREGATE public.array_agg(integer) "
            "(SFUNC = public.agg_int, STYPE = integer[])",
        ],
    ],
    ids=["unnest", "to_tsquery-text", "to_tsquery-varchar", "array_agg"],
)
def test_a_search_calls_no_writers_function(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    planted: list[str],
) -> None:
    """Several words with statistics (`pg_words`: unnest, to_tsquery, array_agg), a rare
    word's first matches (`pg_pool`: to_tsquery of a text parameter), the ranked statement
    (SQLAlchemy's to_tsquery of a VARCHAR parameter)."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _, writer = planted_writer(owner, login_roles)
    _plant(writer, *planted)
    owner = connect("owner")
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i}.txt").write_text(str(i))
    words = ["sequencing reads"] * 28 + ["sequencing rareword", "rareword alone"]
    ll.save(
        [
            ll.Artifact(str(folder / f"{i}.txt"), key=f"f/{i}.txt", description=d)
            for i, d in enumerate(words)
        ]
    )
    with owner.engine.begin() as conn:
        conn.execute(text("ANALYZE artifacts"))
    assert len(ll.Artifact.filter().search("sequencing reads", limit=5).all()) == 5
    assert len(ll.Artifact.filter().search("rareword", limit=5).all()) == 2
    assert len(ll.Artifact.filter().search("sequencing rareword", limit=None).all()) == 1


def test_a_batch_finish_and_claim_call_no_writers_unnest(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The finish of runs written before and the claim of outputs (`run_rows`: unnest of
    several arrays) by the owner's BatchRecorder. PostgreSQL expands a FROM's `unnest(a, b)`
    into pg_catalog's one-array unnest: this passed before too; the statements now say so."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _, writer = planted_writer(owner, login_roles)
    _plant(
        writer,
        _raising("unnest", "a integer[]", "SETOF integer"),
        _raising("unnest", "a text[]", "SETOF text"),
        _raising("unnest", "a timestamptz[]", "SETOF timestamptz"),
    )
    owner = connect("owner")
    rec = BatchRecorder("toy", root=tmp_path, steps=1000, ms=600_000, started_ms=600_000)
    wf = rec.start_workflow(key="wf", engine_run_id="r")
    steps = [rec.start_step(wf, key="s", kind="rule", engine_task_id=str(i)) for i in range(2)]
    rec.flush()  # written started: their finishes are UPDATEs
    for i, step in enumerate(steps):
        (tmp_path / f"{i}.txt").write_text(str(i))
        rec.use(step, tmp_path / f"{i}.txt")  # used first: its producer claims it
    for i, step in enumerate(steps):
        rec.produce(steps[1 - i], tmp_path / f"{i}.txt")
        rec.finish_step(step)
    rec.finish_workflow(wf)
    assert ll.Run.filter(engine="toy", status="completed").count() == 3


# a writer's `=(varchar, name)` that counts its calls (a sequence: kept when the transaction
# that called it rolls back) and answers as pg_catalog's would for the values it gets (lakeline's
# ORM compares varchar with varchar: it picks this one too, which only REVOKE CREATE closes)
EQ_VN = [
    "CREATE SEQUENCE public.calls",
    "GRANT USAGE ON SEQUENCE public.calls TO PUBLIC",
    "CREATE FUNCTION public.eq_vn(a varchar, b name) RETURNS boolean LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_catalog.nextval('public.calls'); "
    "RETURN a::text OPERATOR(pg_catalog.=) b::text; END $$",
    "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = name, FUNCTION = public.eq_vn)",
]


def _calls(instance: Instance) -> int:
    with instance.engine.connect() as conn:
        return int(conn.execute(text("SELECT nextval('public.calls')")).scalar_one())


@pytest.mark.parametrize("planted", ["convert_to", "varchar=name"])
def test_audit_verification_calls_no_writers_function(
    lakeline_home: Path,
    tmp_path: Path,
    postgres_url: str,
    login_roles: LoginRoles,
    planted: str,
) -> None:
    """`audit verify`: the digest functions' `convert_to(text, 'UTF8')` (a writer's
    `convert_to(text, text)` is the better match for the untyped literal), its query's
    `varchar = varchar` comparisons (a writer's `=(varchar, name)`: one exact type; the
    64-character hashes cut to a name's 63 did not compare equal: "an entry was deleted")."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    (tmp_path / "a.txt").write_text("a")
    ll.Artifact(tmp_path / "a.txt", key="a.txt").save()
    _, writer = planted_writer(owner, login_roles)
    if planted == "convert_to":
        _plant(writer, _raising("convert_to", "a text, b text", "bytea"))
    else:
        _plant(writer, *EQ_VN)
    owner = connect("owner")
    before = _calls(owner) if planted != "convert_to" else 0
    assert verify(owner).ok
    if planted != "convert_to":
        assert _calls(owner) == before + 1  # this look-up's own call only


def test_the_user_id_function_calls_no_writers_operator(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """`lakeline_user_id()` called under the caller's search path (its `handle =
    session_user`: varchar = name). The triggers that call it search pg_catalog only."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    _, writer = planted_writer(owner, login_roles)
    _plant(writer, *EQ_VN)
    owner = connect("owner")
    before = _calls(owner)
    with owner.engine.connect() as conn:
        assert conn.execute(text(f"SELECT {helpers(conn)}.lakeline_user_id()")).scalar()
    assert _calls(owner) == before + 1


def test_a_populated_catalog_goes_down_to_0024_and_back(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    """Down to 0024: the schema is a fresh 0024's (`pg_dump -s`: the functions' text too); up
    again: a fresh head's; the audit chain verifies throughout (the digests are the same)."""
    down_and_up(tmp_path, postgres_url, postgres_server, "0024")


# a writer's overloads of what `lakeline_is_admin()` and `lakeline_group()` call by name (their
# bodies are unqualified: no search_path setting), each counting its calls and answering as
# pg_catalog's would: exact matches where pg_catalog's need a cast (oid = regclass, name = text,
# pg_has_role(name, text, ...) for a settings value). Not `=(varchar, text)`, which they call
# too: lakeline's ordinary queries pick it in every session (`SELECT value FROM settings WHERE
# key = $1` at connect, the ORM's): only REVOKE CREATE closes that (`schema_creators` warns)
ADMIN_PLANTS = [
    "CREATE SEQUENCE public.calls",
    "GRANT USAGE ON SEQUENCE public.calls TO PUBLIC",
    *(
        f"CREATE FUNCTION public.{name}(a {left}, b {right}) RETURNS boolean LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_catalog.nextval('public.calls'); RETURN {body}; END $$"
        for name, left, right, body in (
            ("eq_or", "oid", "regclass", "a OPERATOR(pg_catalog.=) b::pg_catalog.oid"),
            ("eq_nt", "name", "text", "a::text OPERATOR(pg_catalog.=) b"),
        )
    ),
    "CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.eq_or)",
    "CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.eq_nt)",
    "CREATE FUNCTION public.pg_has_role(a name, b text, c text) RETURNS boolean LANGUAGE plpgsql "
    "AS $$ BEGIN PERFORM pg_catalog.nextval('public.calls'); "
    "RETURN pg_catalog.pg_has_role(a, b::name, c); END $$",
]


def test_the_admin_checks_run_only_under_a_pinned_search_path(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """`lakeline_is_admin()` and `lakeline_group()` keep unqualified calls (no migration changed
    them) because nothing of lakeline calls them outside a function whose search path is
    pg_catalog's only (grant, revoke, the delete check: 0020), and policies, defaults and
    trigger conditions are stored bound to their operators' oids: an admin deleting a writer's
    record, granting and revoking, a role held to spaces reading runs and the audit log run
    none of the writer's overloads. Called by hand under a search path holding `public`, they
    do run (the last lines): the overloads are live, only unreached."""
    from lakeline.access import spaces
    from lakeline.access.roles import grant, revoke

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    spaces.create(owner, "lab")
    admin_role, admin_url = login_roles.create("admin")
    held_role, held_url = login_roles.create("held")
    other_role, _ = login_roles.create("other")
    grant(owner.engine, admin_role, "admin")
    grant(owner.engine, held_role, "write")
    spaces.set_membership(owner.engine, held_role, ["lab"])
    _, writer = planted_writer(owner, login_roles)
    (tmp_path / "w.txt").write_text("w")
    saved = ll.Artifact(tmp_path / "w.txt", key="w.txt").save()  # the writer's record
    _plant(writer, *ADMIN_PLANTS)
    admin = login_roles.connect_as(admin_url, "admin")
    before = _calls(admin)
    ll.Artifact.get(saved.uid).delete()  # another's record: the delete check asks is_admin
    grant(admin.engine, other_role, "read")
    revoke(admin.engine, other_role)
    held = login_roles.connect_as(held_url, "held")
    with held.engine.connect() as conn:  # the policies: spaces, and the audit log's own rows
        conn.execute(text("SELECT count(*) FROM runs")).scalar()
        conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
    assert _calls(held) == before + 1  # this look-up's own call only
    with admin.engine.connect() as conn:  # by hand, `public` on the path: they run
        schema = helpers(conn)
        assert conn.execute(text(f"SELECT {schema}.lakeline_is_admin()")).scalar()
        assert conn.execute(text(f"SELECT {schema}.lakeline_group('read')")).scalar()
    assert _calls(admin) > before + 3
