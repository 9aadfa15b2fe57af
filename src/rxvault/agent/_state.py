"""The agent's local state: SQLite in WAL mode with ``synchronous=FULL``.

What the server has (per patient: the digest and key of the live block, the last version used),
what the last run saw in the source, the enrollments the agent issued (with their binding keys),
the verified patient keys, the outbox of batches not yet acknowledged, and the runs. The file
holds binding keys: it is created readable by its owner only.

A disk that is full or failing (SQLite's ``SQLITE_FULL``, ``SQLITE_IOERR``, ``SQLITE_CANTOPEN``,
``SQLITE_READONLY``) makes any statement fail with :class:`StateError`, a clear error (exit code
2) that names the file; a transaction whose ``COMMIT`` fails is rolled back, so the state never
holds half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rxvault._cli_errors import UserError
from rxvault.agent._crash import crash_point

__all__ = ["PatientRow", "State", "StateError", "open_state"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    patient_id TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    seen_digest INTEGER,
    in_source INTEGER NOT NULL DEFAULT 1,
    sent_digest INTEGER,
    sent_key BLOB,
    version INTEGER NOT NULL DEFAULT 0,
    server_state TEXT NOT NULL DEFAULT 'none'
);
-- the leaves of the sync statement, read in handle order from the index alone
CREATE INDEX IF NOT EXISTS patients_leaves ON patients (handle, version, server_state);
CREATE TABLE IF NOT EXISTS enrollments (
    lookup_id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    handle TEXT NOT NULL,
    binding_key BLOB NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    registered_at TEXT
);
CREATE INDEX IF NOT EXISTS enrollments_handle ON enrollments (handle);
CREATE TABLE IF NOT EXISTS keys (
    handle TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    lookup_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    verified_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refused_keys (
    seq INTEGER PRIMARY KEY,
    handle TEXT NOT NULL,
    lookup_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    batch_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    file TEXT NOT NULL,
    items TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    dry_run INTEGER NOT NULL,
    exit_code INTEGER,
    summary TEXT
);
"""


class StateError(UserError):
    """The local state database is unusable."""


# Primary SQLite result codes that mean the disk, not the agent, is at fault.
_DISK_CODES = {
    getattr(sqlite3, "SQLITE_FULL", 13),
    getattr(sqlite3, "SQLITE_IOERR", 10),
    getattr(sqlite3, "SQLITE_CANTOPEN", 14),
    getattr(sqlite3, "SQLITE_READONLY", 8),
}
_DISK_WORDS = ("disk is full", "disk i/o error", "unable to open", "readonly database")


def is_disk_error(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _DISK_CODES
    return any(word in str(exc).lower() for word in _DISK_WORDS)


def disk_error(path: Path | str, exc: BaseException) -> StateError:
    """The clear error for a local write that the disk refused."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StateError(
        f"{path}: the agent's local state could not be written ({reason}); the run stopped, "
        "and nothing the server has not acknowledged was recorded",
        hint="free disk space or check the disk, then run `rxvault agent sync` again: it "
        "resends whatever was not acknowledged",
    )


class _Connection(sqlite3.Connection):
    """A connection whose statements turn disk failures into :class:`StateError`."""

    state_path: Path | str = "state.db"

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if is_disk_error(exc):
                raise disk_error(self.state_path, exc) from None
            raise

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            if is_disk_error(exc):
                raise disk_error(self.state_path, exc) from None
            raise


@dataclass
class PatientRow:
    patient_id: str
    handle: str
    seen_digest: int | None
    in_source: bool
    sent_digest: int | None
    sent_key: bytes | None
    version: int
    server_state: str


def now_text() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _private_file(path: Path) -> None:
    """Create ``path`` empty and readable by its owner only (if it does not exist)."""
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


class State:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            crash_point("commit")
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error, StateError):
                    self.conn.execute("ROLLBACK")
            raise

    # --- meta --------------------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def get_json(self, key: str) -> Any:
        value = self.get(key)
        return None if value is None else json.loads(value)

    def set(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- patients ----------------------------------------------------------------------

    def patients(self) -> dict[str, PatientRow]:
        rows = self.conn.execute(
            "SELECT patient_id, handle, seen_digest, in_source, sent_digest, sent_key, version, "
            "server_state FROM patients"
        )
        return {
            r[0]: PatientRow(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7]) for r in rows
        }

    def patient(self, patient_id: str) -> PatientRow | None:
        r = self.conn.execute(
            "SELECT patient_id, handle, seen_digest, in_source, sent_digest, sent_key, version, "
            "server_state FROM patients WHERE patient_id = ?",
            (patient_id,),
        ).fetchone()
        if r is None:
            return None
        return PatientRow(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7])

    def record_seen(
        self,
        conn: sqlite3.Connection,
        seen: Iterable[tuple[str, str, int]],
        gone: Iterable[str],
    ) -> None:
        """Record the digests of this read (new or changed patients) and those now gone."""
        conn.executemany(
            "INSERT INTO patients (patient_id, handle, seen_digest, in_source) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (patient_id) DO UPDATE SET seen_digest = excluded.seen_digest, "
            "in_source = 1",
            seen,
        )
        conn.executemany(
            "UPDATE patients SET in_source = 0 WHERE patient_id = ?", ((p,) for p in gone)
        )

    def ensure_patients(self, conn: sqlite3.Connection, rows: Iterable[tuple[str, str]]) -> None:
        conn.executemany(
            "INSERT INTO patients (patient_id, handle, in_source) VALUES (?, ?, 1) "
            "ON CONFLICT (patient_id) DO NOTHING",
            rows,
        )

    # --- keys and enrollments ------------------------------------------------------------

    def keys(self) -> dict[str, bytes]:
        return {r[0]: bytes(r[1]) for r in self.conn.execute("SELECT handle, public_key FROM keys")}

    def enrollment(self, lookup_id: str) -> tuple[str, str, bytes] | None:
        row = self.conn.execute(
            "SELECT patient_id, handle, binding_key FROM enrollments WHERE lookup_id = ?",
            (lookup_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1], bytes(row[2]))

    def waiting_enrollments(self) -> list[tuple[str, str, str]]:
        """(patient id, created, expires) of codes issued and not yet used."""
        return [
            (r[0], r[1], r[2])
            for r in self.conn.execute(
                "SELECT patient_id, created_at, expires_at FROM enrollments "
                "WHERE registered_at IS NULL AND handle NOT IN (SELECT handle FROM keys) "
                "ORDER BY created_at"
            )
        ]

    # --- outbox ------------------------------------------------------------------------

    def outbox(self) -> list[tuple[str, str, list[dict[str, Any]], int, str | None]]:
        return [
            (r[0], r[1], json.loads(r[2]), r[3], r[4])
            for r in self.conn.execute(
                "SELECT batch_id, file, items, attempts, last_error FROM outbox "
                "ORDER BY created_at, batch_id"
            )
        ]

    def runs(self, limit: int = 10) -> list[tuple[Any, ...]]:
        return list(
            self.conn.execute(
                "SELECT id, started_at, finished_at, dry_run, exit_code, summary FROM runs "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        )


def open_state(path: Path) -> State:
    """Open (creating if needed) the state database; refuse one that fails its integrity check."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _private_file(path)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, factory=_Connection)
        conn.state_path = path
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        result = conn.execute("PRAGMA quick_check").fetchone()
        if result is None or result[0] != "ok":
            conn.close()
            raise StateError(
                f"{path}: the agent's state database failed its integrity check "
                f"({result[0] if result else 'no answer'})",
                hint="restore it from a backup, or move it aside and re-run `rxvault agent "
                "sync`: the next run re-uploads every enrolled patient (nothing is lost on the "
                "server), but enrollments not yet registered must be issued again",
            )
        conn.executescript(_SCHEMA)
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is None:
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif int(version[0]) != SCHEMA_VERSION:
            conn.close()
            raise StateError(
                f"{path}: state schema {version[0]} is not the one this agent knows "
                f"({SCHEMA_VERSION})",
                hint="use the rxvault version that wrote it, or upgrade this one",
            )
    except OSError as exc:
        raise disk_error(path, exc) from None
    except sqlite3.DatabaseError as exc:
        if is_disk_error(exc):
            raise disk_error(path, exc) from None
        raise StateError(
            f"{path}: not a usable state database ({exc})",
            hint="restore it from a backup, or move it aside (the next run re-uploads)",
        ) from None
    return State(conn, path)
