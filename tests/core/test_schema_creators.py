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
