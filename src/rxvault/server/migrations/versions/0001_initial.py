"""The initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rxvault.server._types import UTCDateTime, blob, small_blob

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pharmacies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("public_key", small_blob(32), nullable=True),
        sa.Column("key_id", sa.String(128), nullable=True),
        sa.Column("directory_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("slug", name="uq_pharmacies_slug"),
        sa.UniqueConstraint("key_id", name="uq_pharmacies_key_id"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey("pharmacies.id", ondelete="CASCADE", name="fk_api_tokens_pharmacy_id"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("scopes", sa.String(191), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_pharmacy_id", "api_tokens", ["pharmacy_id"])
    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey("pharmacies.id", ondelete="CASCADE", name="fk_enrollments_pharmacy_id"),
            nullable=False,
        ),
        sa.Column("lookup_id", sa.String(128), nullable=False),
        sa.Column("handle", sa.String(128), nullable=False),
        sa.Column("pin_tag", small_blob(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pending_salt", small_blob(64), nullable=True),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("lookup_id", name="uq_enrollments_lookup_id"),
    )
    op.create_index("ix_enrollments_pharmacy_id", "enrollments", ["pharmacy_id"])
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey("pharmacies.id", ondelete="CASCADE", name="fk_accounts_pharmacy_id"),
            nullable=False,
        ),
        sa.Column("handle", sa.String(128), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("salt", small_blob(64), nullable=False),
        sa.Column("kdf_memory_kib", sa.Integer, nullable=False),
        sa.Column("kdf_iterations", sa.Integer, nullable=False),
        sa.Column("kdf_parallelism", sa.Integer, nullable=False),
        sa.Column("verifier", small_blob(64), nullable=False),
        sa.Column("key_bundle", blob(), nullable=False),
        sa.Column("public_key", small_blob(64), nullable=False),
        sa.Column("binding", small_blob(64), nullable=False),
        sa.Column("pending_salt", small_blob(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("password_changed_at", UTCDateTime(), nullable=False),
        sa.Column("locked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("username", name="uq_accounts_username"),
        sa.UniqueConstraint("pharmacy_id", "handle", name="uq_accounts_handle"),
    )
    op.create_table(
        "key_registrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey(
                "pharmacies.id", ondelete="CASCADE", name="fk_key_registrations_pharmacy_id"
            ),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("handle", sa.String(128), nullable=False),
        sa.Column("lookup_id", sa.String(128), nullable=False),
        sa.Column("public_key", small_blob(64), nullable=False),
        sa.Column("binding", small_blob(64), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("pharmacy_id", "seq", name="uq_key_registrations_seq"),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey("pharmacies.id", ondelete="CASCADE", name="fk_records_pharmacy_id"),
            nullable=False,
        ),
        sa.Column("handle", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("block_version", sa.BigInteger, nullable=True),
        sa.Column("envelope", blob(), nullable=True),
        sa.Column("tombstone", blob(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("purge_after", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("pharmacy_id", "handle", name="uq_records_handle"),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "pharmacy_id",
            sa.Integer,
            sa.ForeignKey("pharmacies.id", ondelete="CASCADE", name="fk_batches_pharmacy_id"),
            nullable=False,
        ),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("digest", small_blob(32), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("deletions", sa.Integer, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("pharmacy_id", "batch_id", name="uq_batches_id"),
    )
    op.create_index("ix_batches_received_at", "batches", ["received_at"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("accounts.id", ondelete="CASCADE", name="fk_sessions_account_id"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(200), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
        sa.UniqueConstraint("public_id", name="uq_sessions_public_id"),
    )
    op.create_index("ix_sessions_account_id", "sessions", ["account_id"])
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(191), primary_key=True),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_failures", sa.Integer, nullable=False),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(191), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "mac": ""}])


def downgrade() -> None:
    for table in (
        "audit_head",
        "audit_log",
        "rate_limits",
        "sessions",
        "batches",
        "records",
        "key_registrations",
        "accounts",
        "enrollments",
        "api_tokens",
        "pharmacies",
    ):
        op.drop_table(table)
