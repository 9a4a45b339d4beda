"""PostgreSQL: `schema_creators` (the warning of `access list` and `migrate`) names the roles
besides the catalog's owner that may CREATE in its schema - not the owner's members."""

from __future__ import annotations

import uuid
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.access.roles import grant, schema_creators
from lakeline.testing import LoginRoles
from sqlalchemy import text

pytestmark = pytest.mark.postgres


def test_a_member_of_the_owner_is_not_named_as_another_creator(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """The docs' way to let admins migrate is a NOLOGIN owner granted to them: such an admin
    creates in the schema as the owner does (a REVOKE from it changes nothing), so only the
    writer granted CREATE of its own is named."""
    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    member, _ = login_roles.create("member")
    other, _ = login_roles.create("other")
    grant(owner.engine, member, "admin")
    grant(owner.engine, other, "write")
    with owner.engine.connect() as conn:
        owner_role = str(conn.execute(text("SELECT current_user")).scalar_one())
    login_roles.admin_execute(
        f"GRANT {owner_role} TO {member}", f"GRANT CREATE ON SCHEMA public TO {other}"
    )
    assert schema_creators(owner.engine) == [other]


def test_the_warnings_revoke_quotes_the_names_it_gives(
    lakeline_home: Path, tmp_path: Path, postgres_url: str, login_roles: LoginRoles
) -> None:
    """A role whose name needs quoting (capitals, a dash): the REVOKE the warning prints runs
    as printed and takes CREATE from it."""
    from lakeline.access.roles import creators_warning

    owner = ll.init(tmp_path / "data", db=postgres_url, name="owner")
    role = f"Lab-Writer_{uuid.uuid4().hex[:6]}"
    quoted = '"' + role + '"'
    login_roles.admin_execute(f"CREATE ROLE {quoted} LOGIN")
    login_roles.made.append(quoted)
    grant(owner.engine, role, "write")
    login_roles.admin_execute(f"GRANT CREATE ON SCHEMA public TO {quoted}")
    assert schema_creators(owner.engine) == [role]
    warning = creators_warning(owner.engine)
    assert warning is not None
    statement = warning.split("`")[1]
    assert statement == f"REVOKE CREATE ON SCHEMA public FROM {quoted}"
    login_roles.admin_execute(statement)
    assert schema_creators(owner.engine) == []


def test_a_schema_later_on_the_search_path_is_checked_too(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    """A catalog in `lab` with `public` after it on the URL's search path (`lab,public`): its
    sessions resolve operators across both, so PUBLIC's CREATE on `public` (PostgreSQL < 15)
    lets any role plant one every session picks. The warning names `public`; before, it looked
    at `lab` only and said nothing."""
    from lakeline.access.roles import creators_warning
    from sqlalchemy.engine import make_url

    url = (
        make_url(empty_postgres_url)
        .update_query_dict({"options": "-csearch_path=lab,public"})
        .render_as_string(hide_password=False)
    )
    roles = LoginRoles(url, [])
    roles.admin_execute("CREATE SCHEMA lab")
    owner = ll.init(tmp_path / "data", db=url, name="owner")
    assert creators_warning(owner.engine) is None
    roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    try:
        warning = creators_warning(owner.engine)
        assert warning is not None and "schema public" in warning, warning
        assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in warning
        assert schema_creators(owner.engine) == []  # the catalog's own schema: nobody
    finally:
        roles.admin_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def test_init_warns_as_migrate_does(
    lakeline_home: Path, tmp_path: Path, empty_postgres_url: str
) -> None:
    """`lakeline init` on a database where PUBLIC may CREATE in `public` (PostgreSQL < 15, or
    pg_upgrade'd from one) says so, as `migrate` and `access list` do; before, it said nothing
    and the owner learnt it only at a later `migrate`."""
    from click.testing import CliRunner
    from lakeline.cli import cli

    roles = LoginRoles(empty_postgres_url, [])
    roles.admin_execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    result = CliRunner().invoke(
        cli,
        [
            "init",
            "--storage",
            str(tmp_path / "data"),
            "--db",
            empty_postgres_url,
            "--name",
            "owner",
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "warning: every role (PUBLIC) may create objects in schema public" in result.stderr
