"""The latest sync statement per pharmacy and its leaves snapshot.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rxvault.server._types import UTCDateTime, blob

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pharmacy_statements",
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey(
                "pharmacies.id", ondelete="CASCADE", name="fk_pharmacy_statements_pharmacy_id"
            ),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("statement", blob(), nullable=False),
        sa.Column("leaves", blob(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pharmacy_statements")
