"""lakeline-bio's registries: sources, ontology registries with parent edges, genes, cell
markers, and the artifact link table of every label registry.

Revision ID: bio_0001
The core is migrated first (same transaction): no depends_on.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from lakeline.modules import create_link_table, drop_link_table

revision = "bio_0001"
down_revision = None
branch_labels = ("bio",)
depends_on = None

ONTOLOGY_TABLES = (
    "bio_organisms",
    "bio_proteins",
    "bio_cell_types",
    "bio_cell_lines",
    "bio_tissues",
    "bio_diseases",
    "bio_phenotypes",
    "bio_experimental_factors",
    "bio_developmental_stages",
    "bio_ethnicities",
    "bio_pathways",
)
LABEL_TABLES = (*ONTOLOGY_TABLES, "bio_genes", "bio_cell_markers")


def KEY(length: int) -> sa.types.TypeEngine[str]:
    """A string compared in code-point order (the "C" collation on PostgreSQL)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _record_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", KEY(16), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=True),
    ]


def _indexes(table: str, *columns: str) -> None:
    for column in ("created_at", "run_id", *columns):
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "bio_sources",
        *_record_columns(),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("ontology", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("organism", sa.String(64), nullable=True),
        sa.Column("origin", sa.String(255), nullable=True),
        sa.Column("license", sa.String(255), nullable=True),
        sa.Column("file_hash", sa.String(64), nullable=True),
        sa.Column("in_use", sa.Boolean, nullable=False),
        sa.UniqueConstraint("entity", "ontology", "version", "organism"),
    )
    _indexes("bio_sources", "entity")
    for table in ONTOLOGY_TABLES:
        op.create_table(
            table,
            *_record_columns(),
            sa.Column("ontology_id", sa.String(64), nullable=True),
            sa.Column("name", sa.String(512), nullable=False),
            sa.Column("synonyms", sa.Text(), nullable=True),
            sa.Column("definition", sa.Text(), nullable=True),
            sa.Column("deprecated", sa.Boolean, nullable=False),
            sa.Column("replaced_by", sa.String(64), nullable=True),
            sa.Column("source_id", sa.Integer, sa.ForeignKey("bio_sources.id"), nullable=True),
            sa.UniqueConstraint("source_id", "ontology_id"),
        )
        _indexes(table, "ontology_id", "name", "source_id")
        op.create_table(
            f"{table}_parents",
            sa.Column(
                "child_id",
                sa.Integer,
                sa.ForeignKey(f"{table}.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column(
                "parent_id",
                sa.Integer,
                sa.ForeignKey(f"{table}.id", ondelete="CASCADE"),
                primary_key=True,
            ),
        )
        op.create_index(f"ix_{table}_parents_parent_id", f"{table}_parents", ["parent_id"])
    op.create_table(
        "bio_genes",
        *_record_columns(),
        sa.Column("ensembl_gene_id", sa.String(64), nullable=True),
        sa.Column("symbol", sa.String(64), nullable=True),
        sa.Column("biotype", sa.String(64), nullable=True),
        sa.Column("synonyms", sa.Text(), nullable=True),
        sa.Column("ncbi_gene_id", sa.String(32), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("organism", sa.String(64), nullable=True),
        sa.Column("source_id", sa.Integer, sa.ForeignKey("bio_sources.id"), nullable=True),
        sa.UniqueConstraint("source_id", "ensembl_gene_id"),
    )
    _indexes("bio_genes", "ensembl_gene_id", "symbol", "organism", "source_id")
    op.create_table(
        "bio_cell_markers",
        *_record_columns(),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("synonyms", sa.Text(), nullable=True),
        sa.Column("gene_symbol", sa.String(64), nullable=True),
        sa.Column("protein", sa.String(64), nullable=True),
        sa.Column("organism", sa.String(64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
    )
    _indexes("bio_cell_markers")
    for table in LABEL_TABLES:
        create_link_table(op, table)


def downgrade() -> None:
    for table in reversed(LABEL_TABLES):
        drop_link_table(op, table)
    op.drop_table("bio_cell_markers")
    op.drop_table("bio_genes")
    for table in reversed(ONTOLOGY_TABLES):
        op.drop_table(f"{table}_parents")
        op.drop_table(table)
    op.drop_table("bio_sources")
