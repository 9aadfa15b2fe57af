"""A statement's snapshot of leaves in parts of at most 20,000 leaves (one value per pharmacy
passed MariaDB's default max_allowed_packet of 16 MB at about 400,000 records).

Downgrading drops the stored statements (an agent sends a new one with its next sync).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rxvault.server._types import blob

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "statement_leaves",
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey(
                "pharmacies.id", ondelete="CASCADE", name="fk_statement_leaves_pharmacy_id"
            ),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("leaves", blob(), nullable=False),
    )
    op.execute(
        "INSERT INTO statement_leaves (pharmacy_id, part, leaves) "
        "SELECT pharmacy_id, 0, leaves FROM pharmacy_statements"
    )
    with op.batch_alter_table("pharmacy_statements") as batch:
        batch.drop_column("leaves")


def downgrade() -> None:
    op.execute("DELETE FROM pharmacy_statements")
    with op.batch_alter_table("pharmacy_statements") as batch:
        batch.add_column(sa.Column("leaves", blob(), nullable=False))
    op.drop_table("statement_leaves")
