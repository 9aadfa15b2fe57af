"""The append-only, hash-chained audit log: who, what, when, from where, outcome.

Each entry's MAC is HMAC-SHA256, under a key derived from the pepper, of the previous entry's
MAC and the entry's own fields. ``audit_head`` holds the last sequence number and MAC; appends
lock it, so the chain has one order even with many server processes. Without the pepper no
entry can be forged or re-chained; ``verify`` finds any edited, inserted or removed entry (a
removal of the newest entries together with a rewrite of the head is found by comparing the
head with a value recorded elsewhere, which ``rxvault server audit verify`` prints).

Entries never hold health data: actors and targets are account, pharmacy and handle ids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rxvault.server._models import AuditEntry, AuditHead


def audit_key(pepper: bytes) -> bytes:
    return hmac.new(pepper, b"rxvault audit chain v1", hashlib.sha256).digest()


def _mac(key: bytes, prev_mac: str, entry: AuditEntry) -> str:
    fields = [
        entry.seq,
        entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        entry.actor,
        entry.action,
        entry.target,
        entry.address,
        entry.outcome,
        entry.detail,
        prev_mac,
    ]
    message = json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _lock_head(session: Session) -> AuditHead:
    stmt = sa.select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.execute(stmt).scalar_one_or_none()
    if head is None:
        raise RuntimeError("the audit_head row is missing: the database was not migrated")
    return head


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
    head = _lock_head(session)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=at,
        actor=actor[:128],
        action=action[:64],
        target=target[:191],
        address=address[:64],
        outcome=outcome[:32],
        detail=detail[:500],
        mac="",
    )
    entry.mac = _mac(key, head.mac, entry)
    session.add(entry)
    head.seq = entry.seq
    head.mac = entry.mac
    session.flush()


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
