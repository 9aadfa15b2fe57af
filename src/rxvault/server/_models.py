"""The database schema (SQLAlchemy 2 typed ORM). The migrations in ``migrations/`` build it.

Nothing here holds a password, a derived key other than the peppered verifier, a private key or
a plaintext record: blocks and key bundles are ciphertext, and the pepper lives outside the
database.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from rxvault.server._types import UTCDateTime, blob, small_blob

# MariaDB/MySQL index key prefixes are limited (767 or 3072 bytes with utf8mb4): every indexed
# string column is at most 191 characters.


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
        }
    )


class Pharmacy(Base):
    __tablename__ = "pharmacies"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    public_key: Mapped[bytes | None] = mapped_column(small_blob(32))
    key_id: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    directory_seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int] = mapped_column(
        sa.ForeignKey("pharmacies.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(32))
    scopes: Mapped[str] = mapped_column(sa.String(191))
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int] = mapped_column(
        sa.ForeignKey("pharmacies.id", ondelete="CASCADE"), index=True
    )
    lookup_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    handle: Mapped[str] = mapped_column(sa.String(128))
    pin_tag: Mapped[bytes] = mapped_column(small_blob(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    pending_salt: Mapped[bytes | None] = mapped_column(small_blob(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("pharmacy_id", "handle", name="uq_accounts_handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int] = mapped_column(sa.ForeignKey("pharmacies.id", ondelete="CASCADE"))
    handle: Mapped[str] = mapped_column(sa.String(128))
    username: Mapped[str] = mapped_column(sa.String(128), unique=True)
    salt: Mapped[bytes] = mapped_column(small_blob(64))
    kdf_memory_kib: Mapped[int] = mapped_column()
    kdf_iterations: Mapped[int] = mapped_column()
    kdf_parallelism: Mapped[int] = mapped_column()
    verifier: Mapped[bytes] = mapped_column(small_blob(64))
    key_bundle: Mapped[bytes] = mapped_column(blob())
    public_key: Mapped[bytes] = mapped_column(small_blob(64))
    binding: Mapped[bytes] = mapped_column(small_blob(64))
    pending_salt: Mapped[bytes | None] = mapped_column(small_blob(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class KeyRegistration(Base):
    """One line of a pharmacy's key directory; ``seq`` grows in commit order per pharmacy."""

    __tablename__ = "key_registrations"
    __table_args__ = (sa.UniqueConstraint("pharmacy_id", "seq", name="uq_key_registrations_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int] = mapped_column(sa.ForeignKey("pharmacies.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    handle: Mapped[str] = mapped_column(sa.String(128))
    lookup_id: Mapped[str] = mapped_column(sa.String(128))
    public_key: Mapped[bytes] = mapped_column(small_blob(64))
    binding: Mapped[bytes] = mapped_column(small_blob(64))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Record(Base):
    """A patient's block (state ``live``) or signed deletion (``deleted``), one row per handle.

    ``version`` is the highest version ever accepted for the handle, so it only grows; a deleted
    block's envelope stays until ``purge_after`` so that it can be restored.

    ``ix_records_leaves`` covers what a sync statement's check reads of every record of a
    pharmacy, so that read never touches the rows (and their envelopes).
    """

    __tablename__ = "records"
    __table_args__ = (
        sa.UniqueConstraint("pharmacy_id", "handle", name="uq_records_handle"),
        sa.Index("ix_records_leaves", "pharmacy_id", "handle", "state", "version", "block_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int] = mapped_column(sa.ForeignKey("pharmacies.id", ondelete="CASCADE"))
    handle: Mapped[str] = mapped_column(sa.String(128))
    state: Mapped[str] = mapped_column(sa.String(16))
    version: Mapped[int] = mapped_column(sa.BigInteger)
    block_version: Mapped[int | None] = mapped_column(sa.BigInteger)
    envelope: Mapped[bytes | None] = mapped_column(blob())
    tombstone: Mapped[bytes | None] = mapped_column(blob())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    purge_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (sa.UniqueConstraint("pharmacy_id", "batch_id", name="uq_batches_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int] = mapped_column(sa.ForeignKey("pharmacies.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(sa.String(128))
    digest: Mapped[bytes] = mapped_column(small_blob(32))
    result: Mapped[str] = mapped_column(sa.Text)
    deletions: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    account_id: Mapped[int] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    address: Mapped[str] = mapped_column(sa.String(64))
    user_agent: Mapped[str] = mapped_column(sa.String(200))


class RateLimit(Base):
    """Failed-attempt counters per account name or address, shared by all server processes."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(sa.String(191), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    window_failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """An append-only, hash-chained line: who, what, when, from where, outcome. No health data."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str] = mapped_column(sa.String(191))
    address: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.String(500))
    mac: Mapped[str] = mapped_column(sa.String(64))


class AuditHead(Base):
    """The single row that serializes appends to the audit chain (locked for each append)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    mac: Mapped[str] = mapped_column(sa.String(64))


class PharmacyStatement(Base):
    """A pharmacy's latest accepted sync statement (docs/spec). The leaves it covers are in
    :class:`StatementLeaves`."""

    __tablename__ = "pharmacy_statements"

    pharmacy_id: Mapped[int] = mapped_column(
        sa.ForeignKey("pharmacies.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    statement: Mapped[bytes] = mapped_column(blob())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StatementLeaves(Base):
    """The snapshot of a pharmacy's records that its statement's root was checked against.

    The leaf bytes (41 each: handle, u64 version, state byte) concatenated in handle order, so
    that inclusion proofs stay consistent while later batches change the records; stored in
    parts of at most 20,000 leaves (820 KB), ``part`` 0, 1, …, because one value of 41 bytes a
    record passes MariaDB's default ``max_allowed_packet`` (16 MB) at about 400,000 records.
    """

    __tablename__ = "statement_leaves"

    pharmacy_id: Mapped[int] = mapped_column(
        sa.ForeignKey("pharmacies.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    part: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    leaves: Mapped[bytes] = mapped_column(blob())
