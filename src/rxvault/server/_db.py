"""Engines, transactions and migrations for SQLite, PostgreSQL and MariaDB/MySQL.

Every write transaction that reads before it writes locks what it reads (``SELECT … FOR
UPDATE`` on PostgreSQL and MariaDB); SQLite write transactions start with ``BEGIN IMMEDIATE`` so
that writers queue on the database lock instead of failing on a lock upgrade. Transactions that
only read (:func:`read_transaction`) take no lock: on SQLite a deferred ``BEGIN``, which in WAL
mode neither waits for a writer nor makes one wait.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker


class DatabaseError(Exception):
    """The database cannot be reached or is not at the schema this version needs."""


def create_db_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    """An engine with the settings each backend needs (isolation, pragmas, pool)."""
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        engine = sa.create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600)
    if backend in {"mysql", "mariadb"}:
        # READ COMMITTED: locking reads see the latest committed row, as on PostgreSQL.
        kwargs["isolation_level"] = "READ COMMITTED"
        kwargs.setdefault("connect_args", {})["charset"] = "utf8mb4"
    return sa.create_engine(url, **kwargs)


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Execution option of the connections :func:`read_transaction` uses.
READ_ONLY = "rxvault_read_only"


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


@contextlib.contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads: a consistent snapshot without any lock. Writing in it is
    a bug (on SQLite the write could fail on a lock upgrade); it is rolled back at the end."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
        finally:
            session.expunge_all()  # what was read stays usable after the end
            session.rollback()


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    location = resources.files("rxvault.server") / "migrations"
    cfg.set_main_option("script_location", str(location))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def check_schema(engine: sa.Engine) -> None:
    """Raise :class:`DatabaseError` unless the database is reachable and fully migrated."""
    try:
        current = current_revision(engine)
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {exc.orig}") from None
    head = head_revision()
    if current != head:
        raise DatabaseError(
            f"the database schema is at revision {current or 'none'}, this version needs {head}"
        )
