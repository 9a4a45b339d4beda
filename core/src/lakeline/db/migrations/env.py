"""Alembic environment: runs lakeline's migrations on the connection it is handed."""

from __future__ import annotations

from alembic import context
from lakeline.db.migrate import include_object
from lakeline.models import Base, load_all

load_all()  # every core table, the annotation registries' too

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("lakeline migrations run through `lakeline migrate`, not bare alembic")
from lakeline.db.partial import use_dialect  # noqa: E402

use_dialect(connection.dialect.name)  # the partial indexes' option, for the comparisons (an
# engine not made by make_engine)

context.configure(
    include_object=config.attributes.get("include_object", include_object),
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
