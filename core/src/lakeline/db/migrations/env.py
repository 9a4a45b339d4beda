"""Alembic environment: runs lakeline's migrations on the connection it is handed."""

from __future__ import annotations

from alembic import context
from lakeline.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("lakeline migrations run through `lakeline migrate`, not bare alembic")

SEARCH_OBJECTS = {"search_vector", "ix_artifacts_search_vector"}


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave the search machinery (made by hand in migrations) out of autogenerate."""
    return not (name in SEARCH_OBJECTS or (name or "").startswith("artifacts_fts"))


context.configure(
    include_object=include_object,
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
