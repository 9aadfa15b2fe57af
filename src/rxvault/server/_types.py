"""Column types that map the same way on SQLite, PostgreSQL and MariaDB/MySQL.

Shared by the ORM models and the migrations, so both agree on every database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql


def blob() -> sa.types.TypeEngine[bytes]:
    """Binary of any size: BLOB on SQLite, BYTEA on PostgreSQL, LONGBLOB on MariaDB/MySQL."""
    return (
        sa.LargeBinary()
        .with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
        .with_variant(postgresql.BYTEA(), "postgresql")
    )


def small_blob(length: int) -> sa.types.TypeEngine[bytes]:
    """A short binary value (keys, tags, hashes): VARBINARY on MariaDB/MySQL."""
    return sa.LargeBinary(length).with_variant(mysql.VARBINARY(length), "mysql", "mariadb")


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A UTC instant with microseconds, stored naive (DATETIME(6) on MariaDB/MySQL)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in {"mysql", "mariadb"}:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)
