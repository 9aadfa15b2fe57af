"""Batches from the agent: verified, idempotent, monotonic, capped.

A batch is applied in one transaction that first locks the pharmacy's row, so batches of one
pharmacy apply one at a time on every database, and the daily deletion cap cannot be passed by
two batches racing. The batch id is unique per pharmacy: the same id with the same bytes returns
the stored result; the same id with other bytes is refused.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rxvault.server import _crypto
from rxvault.server._errors import ApiError
from rxvault.server._models import Batch, Pharmacy, Record
from rxvault.server._schemas import BatchResult, HandleVersion, StaleItem
from rxvault.server._settings import Limits

_IN_CHUNK = 500
_RECORDS = Record.metadata.tables[Record.__tablename__]


def lock_pharmacy(session: Session, pharmacy_id: int) -> Pharmacy:
    stmt = sa.select(Pharmacy).where(Pharmacy.id == pharmacy_id).with_for_update()
    return session.execute(stmt).scalar_one()


def stored_result(session: Session, pharmacy_id: int, batch_id: str) -> Batch | None:
    stmt = sa.select(Batch).where(Batch.pharmacy_id == pharmacy_id, Batch.batch_id == batch_id)
    return session.execute(stmt).scalar_one_or_none()


def replay(existing: Batch, digest: bytes) -> BatchResult:
    """The stored result of a batch sent again, or a refusal if its bytes differ."""
    if not hmac.compare_digest(existing.digest, digest):
        raise ApiError(
            409,
            "batch_conflict",
            f"Batch {existing.batch_id} was already received with different contents.",
        )
    return BatchResult.model_validate(json.loads(existing.result))


def _current(
    session: Session, pharmacy_id: int, handles: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """handle -> (row id, version) of the handles that have a row, locked (envelopes unread)."""
    found: dict[str, tuple[int, int]] = {}
    ordered = sorted(set(handles))
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        stmt = (
            sa.select(Record.id, Record.handle, Record.version)
            .where(Record.pharmacy_id == pharmacy_id, Record.handle.in_(chunk))
            .order_by(Record.handle)
            .with_for_update()
        )
        for row_id, handle, version in session.execute(stmt):
            found[handle] = (row_id, version)
    return found


def check_limits(batch: _crypto.Batch, limits: Limits) -> None:
    if len(batch.blocks) + len(batch.tombstones) > limits.max_blocks_per_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"A batch may hold at most {limits.max_blocks_per_batch} blocks and deletions.",
        )
    for header, envelope in batch.blocks:
        if len(envelope) > limits.max_block_bytes:
            raise ApiError(
                413,
                "block_too_large",
                f"The block for handle {header.handle} is larger than "
                f"{limits.max_block_bytes} bytes.",
            )
    if len(batch.tombstones) > limits.delete_cap_per_batch:
        raise ApiError(
            409,
            "deletion_cap_exceeded",
            f"This batch deletes {len(batch.tombstones)} patients; the server allows at most "
            f"{limits.delete_cap_per_batch} per batch.",
        )
    handles = [h.handle for h, _ in batch.blocks] + [h.handle for h, _ in batch.tombstones]
    if len(set(handles)) != len(handles):
        raise ApiError(422, "invalid_batch", "A handle appears more than once in the batch.")


def deletions_today(session: Session, pharmacy_id: int, now: dt.datetime) -> int:
    stmt = sa.select(sa.func.coalesce(sa.func.sum(Batch.deletions), 0)).where(
        Batch.pharmacy_id == pharmacy_id, Batch.received_at > now - dt.timedelta(days=1)
    )
    return int(session.execute(stmt).scalar_one())


def apply(
    session: Session,
    pharmacy: Pharmacy,
    batch: _crypto.Batch,
    *,
    now: dt.datetime,
    limits: Limits,
) -> tuple[BatchResult, Batch]:
    """Apply a verified batch inside the caller's transaction (the pharmacy row is locked)."""
    if batch.tombstones:
        already = deletions_today(session, pharmacy.id, now)
        if already + len(batch.tombstones) > limits.delete_cap_per_day:
            raise ApiError(
                409,
                "deletion_cap_exceeded",
                f"This batch deletes {len(batch.tombstones)} patients and {already} were deleted "
                f"in the last 24 hours; the server allows at most {limits.delete_cap_per_day} "
                "per day.",
            )
    handles = [h.handle for h, _ in batch.blocks] + [h.handle for h, _ in batch.tombstones]
    current = _current(session, pharmacy.id, handles)
    applied: list[HandleVersion] = []
    deleted: list[HandleVersion] = []
    stale: list[StaleItem] = []
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    retention = dt.timedelta(days=limits.tombstone_retention_days)
    # One statement per kind of change (executemany), in handle order; a handle appears at most
    # once in a batch (check_limits).
    for header, envelope in sorted(batch.blocks, key=lambda item: item[0].handle):
        known = current.get(header.handle)
        if known is not None and header.version <= known[1]:
            stale.append(
                StaleItem(
                    handle=header.handle,
                    version=header.version,
                    current_version=known[1],
                    kind="block",
                )
            )
            continue
        values: dict[str, Any] = {
            "state": "live",
            "version": header.version,
            "block_version": header.version,
            "envelope": envelope,
            "tombstone": None,
            "updated_at": now,
            "deleted_at": None,
            "purge_after": None,
        }
        if known is None:
            inserts.append({"pharmacy_id": pharmacy.id, "handle": header.handle, **values})
        else:
            updates.append({"id": known[0], **values})
        applied.append(HandleVersion(handle=header.handle, version=header.version))
    tomb_inserts: list[dict[str, Any]] = []
    tomb_updates: list[dict[str, Any]] = []
    for theader, tombstone in sorted(batch.tombstones, key=lambda item: item[0].handle):
        known = current.get(theader.handle)
        if known is not None and theader.version <= known[1]:
            stale.append(
                StaleItem(
                    handle=theader.handle,
                    version=theader.version,
                    current_version=known[1],
                    kind="tombstone",
                )
            )
            continue
        values = {
            "state": "deleted",
            "version": theader.version,
            "tombstone": tombstone,
            "updated_at": now,
            "deleted_at": now,
            "purge_after": now + retention,
        }
        if known is None:
            # a deletion of a handle never uploaded: no envelope to keep
            tomb_inserts.append(
                {
                    "pharmacy_id": pharmacy.id,
                    "handle": theader.handle,
                    "envelope": None,
                    "block_version": None,
                    **values,
                }
            )
        else:
            # the envelope and its block version stay, restorable until purge_after
            tomb_updates.append({"id": known[0], **values})
        deleted.append(HandleVersion(handle=theader.handle, version=theader.version))
    # new rows go through Core (one executemany, no ORM bookkeeping per row): the rows carry
    # every column and nothing in the session refers to them
    for rows in (inserts, tomb_inserts):
        if rows:
            session.execute(sa.insert(_RECORDS), rows)
    for rows in (updates, tomb_updates):
        if rows:
            session.execute(sa.update(Record), rows)
    result = BatchResult(
        batch_id=batch.batch_id,
        digest=batch.digest.hex(),
        received_at=now,
        applied=applied,
        deleted=deleted,
        stale=stale,
    )
    row = Batch(
        pharmacy_id=pharmacy.id,
        batch_id=batch.batch_id,
        digest=batch.digest,
        result=result.model_dump_json(),
        deletions=len(deleted),
        received_at=now,
    )
    session.add(row)
    session.flush()
    if _purge_due(session, pharmacy.id, now):
        purge_expired(session, pharmacy.id, now)
    return result, row


#: (engine, pharmacy id) -> the server-clock time of the last purge made while applying a batch
_last_purge: weakref.WeakKeyDictionary[sa.Engine, dict[int, dt.datetime]] = (
    weakref.WeakKeyDictionary()
)
PURGE_EVERY = dt.timedelta(hours=1)


def _purge_due(session: Session, pharmacy_id: int, now: dt.datetime) -> bool:
    """Whether this batch also purges expired envelopes (at most once an hour per pharmacy).

    The purge scans the pharmacy's records; doing it on every batch made a first sync of
    100,000 patients quadratic. An envelope past its window is refused for restoring at once
    (:func:`restore` checks ``purge_after``); its bytes go at the next purge.
    """
    engine = session.get_bind()
    if not isinstance(engine, sa.Engine):
        return True
    seen = _last_purge.setdefault(engine, {})
    last = seen.get(pharmacy_id)
    if last is not None and last <= now < last + PURGE_EVERY:
        return False
    seen[pharmacy_id] = now
    return True


def purge_expired(session: Session, pharmacy_id: int | None, now: dt.datetime) -> int:
    """Drop the envelopes of deleted blocks past their restore window; returns how many."""
    stmt = (
        sa.update(Record)
        .where(
            Record.state == "deleted",
            Record.envelope.is_not(None),
            Record.purge_after < now,
        )
        .values(envelope=None, block_version=None)
    )
    if pharmacy_id is not None:
        stmt = stmt.where(Record.pharmacy_id == pharmacy_id)
    result: Any = session.execute(stmt)
    return int(result.rowcount or 0)


def restore(session: Session, pharmacy_id: int, handle: str, now: dt.datetime) -> Record:
    """Make a deleted block live again, if its envelope is still kept."""
    stmt = (
        sa.select(Record)
        .where(Record.pharmacy_id == pharmacy_id, Record.handle == handle)
        .with_for_update()
    )
    record = session.execute(stmt).scalar_one_or_none()
    if (
        record is None
        or record.state != "deleted"
        or record.envelope is None
        or (record.purge_after is not None and record.purge_after < now)
    ):
        raise ApiError(
            404, "not_restorable", f"No deleted block that can be restored for handle {handle}."
        )
    record.state = "live"
    record.tombstone = None
    record.deleted_at = None
    record.purge_after = None
    record.updated_at = now
    return record
