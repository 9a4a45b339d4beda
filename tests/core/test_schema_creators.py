"""PostgreSQL: `schema_creators` (the warning of `access list` and `migrate`) names the roles
besides the catalog's owner that may CREATE in its schema - not the owner's members."""

from __future__ import annotations

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
