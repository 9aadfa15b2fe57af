"""The append-only, hash-chained audit log: who, what, when, from where, outcome.

Each entry's MAC is HMAC-SHA256, under a key derived from the pepper, of the previous entry's
MAC and the entry's own fields. ``audit_head`` holds the last sequence number and MAC; appends
lock it, so the chain has one order even with many server processes. Without the pepper no
entry can be forged or re-chained; ``verify`` finds any edited, inserted or removed entry (a
removal of the newest entries together with a rewrite of the head is found by comparing the
head with a value recorded elsewhere, which ``rxvault server audit verify`` prints).

Two ways in:

- :func:`append`, inside the caller's write transaction (a login, a registration, a batch):
  the entry commits or rolls back with the change it records. The caller's own changes are
  flushed first, so the head is locked only for the append itself and the commit.
- :class:`AuditWriter` (group commit), for requests that change nothing else (a block or key
  bundle fetch, a refusal): the request waits until its entry is committed, but the entries of
  all requests waiting in this process at that moment are chained and committed together, in
  one transaction that locks the head once. The chain, its order and its MACs are the same as
  with one transaction per entry; what changes is that concurrent readers no longer queue one
  by one on the head row (the bottleneck measured in ``tests/reliability/test_load.py``).

Entries never hold health data: actors and targets are account, pharmacy and handle ids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from rxvault.server._db import transaction
from rxvault.server._models import AuditEntry, AuditHead

#: The most entries one group commit writes (a longer queue is written in several).
MAX_GROUP = 500


def audit_key(pepper: bytes) -> bytes:
    return hmac.new(pepper, b"rxvault audit chain v1", hashlib.sha256).digest()


@dataclasses.dataclass(frozen=True)
class Fields:
    """One entry before it is numbered and chained."""

    at: dt.datetime
    actor: str
    action: str
    target: str = ""
    address: str = ""
    outcome: str = "ok"
    detail: str = ""


_MAC_FIELDS = ("actor", "action", "target", "address", "outcome", "detail")


def _mac(key: bytes, prev_mac: str, entry: AuditEntry | dict[str, Any]) -> str:
    e = (
        entry
        if isinstance(entry, dict)
        else {n: getattr(entry, n) for n in ("seq", "at", *_MAC_FIELDS)}
    )
    at: dt.datetime = e["at"]
    fields = [
        e["seq"],
        at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        *(e[n] for n in _MAC_FIELDS),
        prev_mac,
    ]
    message = json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def append_many(session: Session, key: bytes, entries: Sequence[Fields]) -> None:
    """Number, chain and add ``entries`` in the caller's transaction, locking the head once."""
    if not entries:
        return
    session.flush()  # the caller's pending changes first: hold the head lock as briefly as can be
    head = session.execute(
        sa.select(AuditHead.seq, AuditHead.mac).where(AuditHead.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        raise RuntimeError("the audit_head row is missing: the database was not migrated")
    seq, mac = head
    rows: list[dict[str, Any]] = []
    for f in entries:
        seq += 1
        row: dict[str, Any] = {
            "seq": seq,
            "at": f.at,
            "actor": f.actor[:128],
            "action": f.action[:64],
            "target": f.target[:191],
            "address": f.address[:64],
            "outcome": f.outcome[:32],
            "detail": f.detail[:500],
        }
        mac = row["mac"] = _mac(key, mac, row)
        rows.append(row)
    session.execute(sa.insert(AuditEntry), rows)
    session.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(seq=seq, mac=mac))


def append(
    session: Session,
    key: bytes,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str = "",
    address: str = "",
    outcome: str = "ok",
    detail: str = "",
) -> None:
    """Append one entry in the caller's transaction (it commits or rolls back with it)."""
    append_many(session, key, [Fields(at, actor, action, target, address, outcome, detail)])


class AuditWriteFailed(Exception):
    """The group commit that held this entry failed (the request must not succeed)."""


@dataclasses.dataclass(eq=False)
class _Pending:
    fields: Fields
    done: bool = False
    error: BaseException | None = None


class AuditWriter:
    """Group commit of audit entries for one server process (thread-safe).

    :meth:`write` returns once the entry is committed, or raises :class:`AuditWriteFailed`.
    The first waiting thread that finds no write in progress becomes the leader: it takes up to
    :data:`MAX_GROUP` queued entries (its own among them, or it goes round again), appends them
    in one transaction and wakes the others. No background thread: nothing to start or stop.

    Never call :meth:`write` while holding a transaction that has locked the audit head (it would
    wait for itself); the routes call it after their read transaction has ended.
    """

    def __init__(self, factory: sessionmaker[Session], key: bytes) -> None:
        self._factory = factory
        self._key = key
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        #: Committed groups and entries (for tests and benchmarks).
        self.groups = 0
        self.entries = 0

    def write(self, fields: Fields) -> None:
        item = _Pending(fields)
        with self._cond:
            self._queue.append(item)
        while True:
            with self._cond:
                while not item.done and self._writing:
                    self._cond.wait()
                if item.done:
                    break
                self._writing = True
                group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            error: BaseException | None = None
            try:
                with transaction(self._factory) as session:
                    append_many(session, self._key, [p.fields for p in group])
            except BaseException as exc:  # every waiter of the group must learn of it
                error = exc
            with self._cond:
                for p in group:
                    p.done = True
                    p.error = error
                self._writing = False
                if error is None:
                    self.groups += 1
                    self.entries += len(group)
                self._cond.notify_all()
        if item.error is not None:
            raise AuditWriteFailed("the audit entry could not be written") from item.error


@dataclasses.dataclass(frozen=True)
class AuditReport:
    entries: int
    head_seq: int
    head_mac: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, key: bytes, *, chunk: int = 5000) -> AuditReport:
    """Check the whole chain; every problem names the sequence number it was found at."""
    problems: list[str] = []
    head = session.execute(sa.select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        return AuditReport(0, 0, "", ["the audit head row is missing"])
    prev_mac = ""
    expected_seq = 1
    count = 0
    last_seq = 0
    while True:
        stmt = (
            sa.select(AuditEntry)
            .where(AuditEntry.seq >= expected_seq)
            .order_by(AuditEntry.seq)
            .limit(chunk)
        )
        rows = session.execute(stmt).scalars().all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                problems.append(f"entries {expected_seq}..{entry.seq - 1} are missing")
                # Re-synchronise so that later problems are reported too.
            recomputed = _mac(key, prev_mac, entry)
            if not hmac.compare_digest(recomputed, entry.mac):
                problems.append(f"entry {entry.seq} was altered (its MAC does not match)")
            prev_mac = entry.mac
            expected_seq = entry.seq + 1
            last_seq = entry.seq
            count += 1
        session.expunge_all()
    if head.seq != last_seq or not hmac.compare_digest(head.mac, prev_mac):
        problems.append(
            f"the chain ends at entry {last_seq} but the head says {head.seq}: "
            "entries were removed or the head was altered"
        )
    return AuditReport(count, head.seq, head.mac, problems)
