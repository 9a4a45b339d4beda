"""features, labels, schemas: registries that describe data, and what annotates artifacts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 04:33:24.593230

New tables only (nothing existing changes): features, ulabels (+ ulabel_parents, a DAG),
schemas (+ schema_features: members with slot, position, required), and what annotates an
artifact: feature_values (one typed column per dtype, each with a partial index on
(feature_id, value, artifact_id)), artifact_ulabels (a label, optionally as a feature's value)
and artifact_schemas. Every annotation row records the run it was added in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def KEY(length: int) -> sa.types.TypeEngine[str]:
    """A string compared in code-point order (the "C" collation on PostgreSQL)."""
    return sa.String(length=length).with_variant(
        sa.String(length=length, collation="C"), "postgresql"
    )


def upgrade() -> None:
    op.create_table(
        "features",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("dtype", sa.String(length=255), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("synonyms", sa.Text(), nullable=True),
        sa.Column("abbr", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", KEY(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_features_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_features_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_features")),
        sa.UniqueConstraint("name", name=op.f("uq_features_name")),
        sa.UniqueConstraint("uid", name=op.f("uq_features_uid")),
    )
    with op.batch_alter_table("features", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_features_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_features_run_id"), ["run_id"], unique=False)

    op.create_table(
        "schemas",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("otype", sa.String(length=64), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("n_members", sa.Integer(), nullable=False),
        sa.Column("minimal_set", sa.Boolean(), nullable=False),
        sa.Column("maximal_set", sa.Boolean(), nullable=False),
        sa.Column("ordered_set", sa.Boolean(), nullable=False),
        sa.Column("coerce_dtype", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", KEY(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_schemas_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_schemas_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schemas")),
        sa.UniqueConstraint("hash", name=op.f("uq_schemas_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_schemas_name")),
        sa.UniqueConstraint("uid", name=op.f("uq_schemas_uid")),
    )
    with op.batch_alter_table("schemas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schemas_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_schemas_run_id"), ["run_id"], unique=False)

    op.create_table(
        "ulabels",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("synonyms", sa.Text(), nullable=True),
        sa.Column("abbr", sa.String(length=64), nullable=True),
        sa.Column("is_type", sa.Boolean(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", KEY(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_ulabels_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_ulabels_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["type_id"], ["ulabels.id"], name=op.f("fk_ulabels_type_id_ulabels")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ulabels")),
        sa.UniqueConstraint("uid", name=op.f("uq_ulabels_uid")),
    )
    with op.batch_alter_table("ulabels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ulabels_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_ulabels_name", ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_ulabels_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            "uq_ulabels_name_untyped",
            ["name"],
            unique=True,
            sqlite_where=sa.text("type_id IS NULL"),
            postgresql_where=sa.text("type_id IS NULL"),
        )
        batch_op.create_index(
            "uq_ulabels_type_id_name",
            ["type_id", "name"],
            unique=True,
            sqlite_where=sa.text("type_id IS NOT NULL"),
            postgresql_where=sa.text("type_id IS NOT NULL"),
        )

    op.create_table(
        "artifact_schemas",
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_artifact_schemas_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_artifact_schemas_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["schema_id"], ["schemas.id"], name=op.f("fk_artifact_schemas_schema_id_schemas")
        ),
        sa.PrimaryKeyConstraint("artifact_id", "slot", name=op.f("pk_artifact_schemas")),
    )
    with op.batch_alter_table("artifact_schemas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifact_schemas_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_artifact_schemas_schema_id"), ["schema_id"], unique=False
        )

    op.create_table(
        "artifact_ulabels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("ulabel_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_artifact_ulabels_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_artifact_ulabels_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name=op.f("fk_artifact_ulabels_feature_id_features"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_artifact_ulabels_run_id_runs")
        ),
        sa.ForeignKeyConstraint(
            ["ulabel_id"],
            ["ulabels.id"],
            name=op.f("fk_artifact_ulabels_ulabel_id_ulabels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact_ulabels")),
    )
    with op.batch_alter_table("artifact_ulabels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifact_ulabels_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            "ix_artifact_ulabels_ulabel_id",
            ["ulabel_id", "feature_id", "artifact_id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_artifact_ulabels_feature",
            ["artifact_id", "ulabel_id", "feature_id"],
            unique=True,
            sqlite_where=sa.text("feature_id IS NOT NULL"),
            postgresql_where=sa.text("feature_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_artifact_ulabels_plain",
            ["artifact_id", "ulabel_id"],
            unique=True,
            sqlite_where=sa.text("feature_id IS NULL"),
            postgresql_where=sa.text("feature_id IS NULL"),
        )

    op.create_table(
        "feature_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value_int", sa.BigInteger(), nullable=True),
        sa.Column("value_float", sa.Double(), nullable=True),
        sa.Column("value_str", KEY(512), nullable=True),
        sa.Column("value_bool", sa.Boolean(), nullable=True),
        sa.Column("value_datetime", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "value_json", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artifacts.id"],
            name=op.f("fk_feature_values_artifact_id_artifacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_feature_values_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"],
            ["features.id"],
            name=op.f("fk_feature_values_feature_id_features"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_feature_values_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_values")),
    )
    with op.batch_alter_table("feature_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feature_values_artifact_id_feature_id", ["artifact_id", "feature_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_feature_values_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            "ix_feature_values_value_bool",
            ["feature_id", "value_bool", "artifact_id"],
            unique=False,
            sqlite_where=sa.text("value_bool IS NOT NULL"),
            postgresql_where=sa.text("value_bool IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_feature_values_value_datetime",
            ["feature_id", "value_datetime", "artifact_id"],
            unique=False,
            sqlite_where=sa.text("value_datetime IS NOT NULL"),
            postgresql_where=sa.text("value_datetime IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_feature_values_value_float",
            ["feature_id", "value_float", "artifact_id"],
            unique=False,
            sqlite_where=sa.text("value_float IS NOT NULL"),
            postgresql_where=sa.text("value_float IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_feature_values_value_int",
            ["feature_id", "value_int", "artifact_id"],
            unique=False,
            sqlite_where=sa.text("value_int IS NOT NULL"),
            postgresql_where=sa.text("value_int IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_feature_values_value_str",
            ["feature_id", "value_str", "artifact_id"],
            unique=False,
            sqlite_where=sa.text("value_str IS NOT NULL"),
            postgresql_where=sa.text("value_str IS NOT NULL"),
        )

    op.create_table(
        "schema_features",
        sa.Column("schema_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_id"], ["features.id"], name=op.f("fk_schema_features_feature_id_features")
        ),
        sa.ForeignKeyConstraint(
            ["schema_id"],
            ["schemas.id"],
            name=op.f("fk_schema_features_schema_id_schemas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schema_id", "slot", "feature_id", name=op.f("pk_schema_features")),
    )
    with op.batch_alter_table("schema_features", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schema_features_feature_id"), ["feature_id"], unique=False
        )

    op.create_table(
        "ulabel_parents",
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["ulabels.id"],
            name=op.f("fk_ulabel_parents_child_id_ulabels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["ulabels.id"],
            name=op.f("fk_ulabel_parents_parent_id_ulabels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("child_id", "parent_id", name=op.f("pk_ulabel_parents")),
    )
    with op.batch_alter_table("ulabel_parents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ulabel_parents_parent_id"), ["parent_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ulabel_parents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ulabel_parents_parent_id"))

    op.drop_table("ulabel_parents")
    with op.batch_alter_table("schema_features", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schema_features_feature_id"))

    op.drop_table("schema_features")
    with op.batch_alter_table("feature_values", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_feature_values_value_str",
            sqlite_where=sa.text("value_str IS NOT NULL"),
            postgresql_where=sa.text("value_str IS NOT NULL"),
        )
        batch_op.drop_index(
            "ix_feature_values_value_int",
            sqlite_where=sa.text("value_int IS NOT NULL"),
            postgresql_where=sa.text("value_int IS NOT NULL"),
        )
        batch_op.drop_index(
            "ix_feature_values_value_float",
            sqlite_where=sa.text("value_float IS NOT NULL"),
            postgresql_where=sa.text("value_float IS NOT NULL"),
        )
        batch_op.drop_index(
            "ix_feature_values_value_datetime",
            sqlite_where=sa.text("value_datetime IS NOT NULL"),
            postgresql_where=sa.text("value_datetime IS NOT NULL"),
        )
        batch_op.drop_index(
            "ix_feature_values_value_bool",
            sqlite_where=sa.text("value_bool IS NOT NULL"),
            postgresql_where=sa.text("value_bool IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_feature_values_run_id"))
        batch_op.drop_index("ix_feature_values_artifact_id_feature_id")

    op.drop_table("feature_values")
    with op.batch_alter_table("artifact_ulabels", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_artifact_ulabels_plain",
            sqlite_where=sa.text("feature_id IS NULL"),
            postgresql_where=sa.text("feature_id IS NULL"),
        )
        batch_op.drop_index(
            "uq_artifact_ulabels_feature",
            sqlite_where=sa.text("feature_id IS NOT NULL"),
            postgresql_where=sa.text("feature_id IS NOT NULL"),
        )
        batch_op.drop_index("ix_artifact_ulabels_ulabel_id")
        batch_op.drop_index(batch_op.f("ix_artifact_ulabels_run_id"))

    op.drop_table("artifact_ulabels")
    with op.batch_alter_table("artifact_schemas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artifact_schemas_schema_id"))
        batch_op.drop_index(batch_op.f("ix_artifact_schemas_run_id"))

    op.drop_table("artifact_schemas")
    with op.batch_alter_table("ulabels", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_ulabels_type_id_name",
            sqlite_where=sa.text("type_id IS NOT NULL"),
            postgresql_where=sa.text("type_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_ulabels_name_untyped",
            sqlite_where=sa.text("type_id IS NULL"),
            postgresql_where=sa.text("type_id IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_ulabels_run_id"))
        batch_op.drop_index("ix_ulabels_name")
        batch_op.drop_index(batch_op.f("ix_ulabels_created_at"))

    op.drop_table("ulabels")
    with op.batch_alter_table("schemas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schemas_run_id"))
        batch_op.drop_index(batch_op.f("ix_schemas_created_at"))

    op.drop_table("schemas")
    with op.batch_alter_table("features", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_features_run_id"))
        batch_op.drop_index(batch_op.f("ix_features_created_at"))

    op.drop_table("features")
