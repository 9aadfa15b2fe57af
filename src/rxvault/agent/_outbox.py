"""The outbox: every batch is on disk before it is sent, and leaves only when acknowledged.

``write`` stores the batch bytes (written to a temporary name, flushed to disk, renamed) and then
a row with what the batch carries; ``send`` PUTs the same bytes under the same batch id until the
server answers; ``acknowledge`` applies the server's result to the local state and removes the
batch, in one transaction. A run killed anywhere leaves either nothing, or a batch that the next
run sends again (the server answers a batch id it has seen with the stored result).

A write, rename, ``fsync`` or removal that the disk refuses (full, failing) stops the run with
:class:`~rxvault.agent._state.StateError` naming the file: what the outbox holds is then either
the whole batch with its row, or a file without a row (removed by the next run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxvault.agent._api import ServerApi
from rxvault.agent._crash import crash_point
from rxvault.agent._state import State, disk_error, now_text

__all__ = ["Ack", "Outbox", "OutboxItem"]


@dataclass(frozen=True)
class OutboxItem:
    patient_id: str
    handle: str
    version: int
    kind: str  # "block" or "tombstone"
    digest: int | None = None
    key: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.patient_id,
            "h": self.handle,
            "v": self.version,
            "k": self.kind,
            "d": self.digest,
            "key": self.key.hex() if self.key else None,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> OutboxItem:
        key = raw.get("key")
        return cls(
            raw["p"],
            raw["h"],
            int(raw["v"]),
            raw["k"],
            raw.get("d"),
            bytes.fromhex(key) if key else None,
        )


@dataclass
class Ack:
    applied: int = 0
    deleted: int = 0
    stale: list[str] = field(default_factory=list)  # patient ids to send again, newer
    replayed: bool = False


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    def __init__(self, directory: Path, state: State) -> None:
        self.directory = directory
        self.state = state
        directory.mkdir(parents=True, exist_ok=True)

    def clean_orphans(self) -> None:
        """Remove files that never got their outbox row (a run killed between the two)."""
        known = {file for _, file, _, _, _ in self.state.outbox()}
        try:
            for path in self.directory.iterdir():
                if path.name not in known:
                    path.unlink(missing_ok=True)
        except OSError as exc:
            raise disk_error(exc.filename or self.directory, exc) from None

    def _remove(self, batch_id: str) -> None:
        path = self.directory / f"{batch_id}.batch"
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise disk_error(path, exc) from None

    def write(self, batch_id: str, data: bytes, items: list[OutboxItem]) -> None:
        name = f"{batch_id}.batch"
        final = self.directory / name
        tmp = self.directory / f"{name}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise disk_error(exc.filename or tmp, exc) from None
        with self.state.transaction() as c:
            c.execute(
                "INSERT INTO outbox (batch_id, created_at, file, items) VALUES (?, ?, ?, ?)",
                (batch_id, now_text(), name, json.dumps([i.to_json() for i in items])),
            )
        crash_point("outbox-written")

    def pending(self) -> Iterator[tuple[str, bytes | None, list[OutboxItem]]]:
        for batch_id, file, items, _, _ in self.state.outbox():
            path = self.directory / file
            data = path.read_bytes() if path.exists() else None
            yield batch_id, data, [OutboxItem.from_json(i) for i in items]

    def drop(self, batch_id: str) -> None:
        with self.state.transaction() as c:
            c.execute("DELETE FROM outbox WHERE batch_id = ?", (batch_id,))
        self._remove(batch_id)

    def note_failure(self, batch_id: str, error: str) -> None:
        with self.state.transaction() as c:
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE batch_id = ?",
                (error[:500], batch_id),
            )

    def send(self, api: ServerApi, batch_id: str, data: bytes, items: list[OutboxItem]) -> Ack:
        """Send (or send again) a batch, then apply the acknowledgement."""
        try:
            result = api.put_batch(batch_id, data)
        except Exception as exc:
            self.note_failure(batch_id, str(exc))
            raise
        crash_point("sent")
        ack = self.acknowledge(batch_id, items, result)
        crash_point("committed")
        return ack

    def acknowledge(self, batch_id: str, items: list[OutboxItem], result: dict[str, Any]) -> Ack:
        applied = {(h["handle"], int(h["version"])) for h in result.get("applied", [])}
        deleted = {(h["handle"], int(h["version"])) for h in result.get("deleted", [])}
        stale = {s["handle"]: int(s["current_version"]) for s in result.get("stale", [])}
        ack = Ack()
        # The updates in the items' order, each run of one kind as one statement.
        runs: list[tuple[str, list[tuple[Any, ...]]]] = []
        for item in items:
            row: tuple[Any, ...]
            if item.kind == "block" and (item.handle, item.version) in applied:
                sql, row = _APPLIED, (item.digest, item.key, item.version, item.patient_id)
                ack.applied += 1
            elif item.kind == "tombstone" and (item.handle, item.version) in deleted:
                sql, row = _DELETED, (item.version, item.patient_id)
                ack.deleted += 1
            elif item.handle in stale:
                sql, row = _STALE, (stale[item.handle], item.patient_id)
                ack.stale.append(item.patient_id)
            else:
                continue
            if runs and runs[-1][0] is sql:
                runs[-1][1].append(row)
            else:
                runs.append((sql, [row]))
        with self.state.transaction() as c:
            for sql, rows in runs:
                c.executemany(sql, rows)
            c.execute("DELETE FROM outbox WHERE batch_id = ?", (batch_id,))
        self._remove(batch_id)
        return ack


_APPLIED = (
    "UPDATE patients SET sent_digest = ?, sent_key = ?, server_state = 'live', "
    "version = MAX(version, ?) WHERE patient_id = ?"
)
_DELETED = (
    "UPDATE patients SET sent_digest = NULL, sent_key = NULL, server_state = 'deleted', "
    "in_source = 0, version = MAX(version, ?) WHERE patient_id = ?"
)
_STALE = "UPDATE patients SET version = MAX(version, ?) WHERE patient_id = ?"
