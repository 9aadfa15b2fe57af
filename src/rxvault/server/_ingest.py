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


def _records(session: Session, pharmacy_id: int, handles: Sequence[str]) -> dict[str, Record]:
    found: dict[str, Record] = {}
    ordered = sorted(set(handles))
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        stmt = (
            sa.select(Record)
            .where(Record.pharmacy_id == pharmacy_id, Record.handle.in_(chunk))
            .order_by(Record.handle)
            .with_for_update()
        )
        for record in session.execute(stmt).scalars():
            found[record.handle] = record
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
    records = _records(session, pharmacy.id, handles)
    applied: list[HandleVersion] = []
    deleted: list[HandleVersion] = []
    stale: list[StaleItem] = []
    retention = dt.timedelta(days=limits.tombstone_retention_days)
    for header, envelope in sorted(batch.blocks, key=lambda item: item[0].handle):
        record = records.get(header.handle)
        if record is not None and header.version <= record.version:
            stale.append(
                StaleItem(
                    handle=header.handle,
                    version=header.version,
                    current_version=record.version,
                    kind="block",
                )
            )
            continue
        if record is None:
            record = Record(pharmacy_id=pharmacy.id, handle=header.handle)
            session.add(record)
            records[header.handle] = record
        record.state = "live"
        record.version = header.version
        record.block_version = header.version
        record.envelope = envelope
        record.tombstone = None
        record.updated_at = now
        record.deleted_at = None
        record.purge_after = None
        applied.append(HandleVersion(handle=header.handle, version=header.version))
    for theader, tombstone in sorted(batch.tombstones, key=lambda item: item[0].handle):
        record = records.get(theader.handle)
        if record is not None and theader.version <= record.version:
            stale.append(
                StaleItem(
                    handle=theader.handle,
                    version=theader.version,
                    current_version=record.version,
                    kind="tombstone",
                )
            )
            continue
        if record is None:
            record = Record(
                pharmacy_id=pharmacy.id, handle=theader.handle, envelope=None, block_version=None
            )
            session.add(record)
            records[theader.handle] = record
        record.state = "deleted"
        record.version = theader.version
        record.tombstone = tombstone
        record.updated_at = now
        record.deleted_at = now
        record.purge_after = now + retention
        deleted.append(HandleVersion(handle=theader.handle, version=theader.version))
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
    purge_expired(session, pharmacy.id, now)
    return result, row


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
