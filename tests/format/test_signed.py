"""Tombstones and batches: round trips and refusal of every mutation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault import format as fmt

from .strategies import counters, handles, moments, whole_seconds

PHARMACY = fmt.PharmacyKey.from_private_bytes(bytes(range(32)))
OTHER = fmt.PharmacyKey.from_private_bytes(bytes(range(1, 33)))
PATIENT_PUBLIC = fmt.patient_public_key(b"\x77" * 32)
WHEN = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@settings(max_examples=50, deadline=None)
@given(handle=handles, version=counters, deleted_at=moments)
def test_tombstone_round_trip(handle: str, version: int, deleted_at: datetime) -> None:
    data = fmt.make_tombstone(
        pharmacy_key=PHARMACY, handle=handle, version=version, deleted_at=deleted_at
    )
    header = fmt.verify_tombstone(data, PHARMACY.public_bytes())
    assert header == fmt.TombstoneHeader(
        pharmacy_id=PHARMACY.pharmacy_id,
        handle=handle,
        version=version,
        deleted_at=whole_seconds(deleted_at),
    )
    with pytest.raises(fmt.SignatureInvalid):
        fmt.verify_tombstone(data, OTHER.public_bytes())


TOMBSTONE = fmt.make_tombstone(pharmacy_key=PHARMACY, handle="cd" * 16, version=4, deleted_at=WHEN)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, len(TOMBSTONE) - 1), mask=st.integers(1, 255))
def test_tombstone_any_byte_change_is_refused(position: int, mask: int) -> None:
    mutated = bytearray(TOMBSTONE)
    mutated[position] ^= mask
    with pytest.raises(fmt.FormatError):
        fmt.verify_tombstone(bytes(mutated), PHARMACY.public_bytes())


def _block(handle: str, version: int = 1) -> bytes:
    return fmt.seal_block(
        b'{"fills":[]}',
        pharmacy_key=PHARMACY,
        handle=handle,
        version=version,
        as_of=WHEN,
        recipient_public_key=PATIENT_PUBLIC,
    )


@settings(max_examples=20, deadline=None)
@given(
    handle_list=st.lists(handles, unique=True, max_size=6),
    split=st.integers(0, 6),
    created_at=moments,
)
def test_batch_round_trip(handle_list: list[str], split: int, created_at: datetime) -> None:
    blocks = [_block(h) for h in handle_list[:split]]
    tombstones = [
        fmt.make_tombstone(pharmacy_key=PHARMACY, handle=h, version=2, deleted_at=WHEN)
        for h in handle_list[split:]
    ]
    batch_id = fmt.new_batch_id()
    data = fmt.make_batch(
        pharmacy_key=PHARMACY,
        batch_id=batch_id,
        blocks=blocks,
        tombstones=tombstones,
        created_at=created_at,
    )
    batch = fmt.verify_batch(data, PHARMACY.public_bytes())
    assert batch.batch_id == batch_id
    assert batch.pharmacy_id == PHARMACY.pharmacy_id
    assert batch.created_at == whole_seconds(created_at)
    assert [raw for _, raw in batch.blocks] == blocks
    assert [raw for _, raw in batch.tombstones] == tombstones
    assert [h.handle for h, _ in batch.blocks] == handle_list[:split]
    assert [h.handle for h, _ in batch.tombstones] == handle_list[split:]
    assert batch.digest == hashlib.sha256(data).digest()


BATCH = fmt.make_batch(
    pharmacy_key=PHARMACY,
    batch_id="batch-for-mutation-tests",
    blocks=[_block("01" * 16)],
    tombstones=[
        fmt.make_tombstone(pharmacy_key=PHARMACY, handle="02" * 16, version=3, deleted_at=WHEN)
    ],
    created_at=WHEN,
)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, len(BATCH) - 1), mask=st.integers(1, 255))
def test_batch_any_byte_change_is_refused(position: int, mask: int) -> None:
    mutated = bytearray(BATCH)
    mutated[position] ^= mask
    with pytest.raises(fmt.FormatError):
        fmt.verify_batch(bytes(mutated), PHARMACY.public_bytes())


def test_batch_ids_are_random_and_valid() -> None:
    ids = {fmt.new_batch_id() for _ in range(50)}
    assert len(ids) == 50
    for batch_id in ids:
        fmt.make_batch(
            pharmacy_key=PHARMACY, batch_id=batch_id, blocks=[], tombstones=[], created_at=WHEN
        )


def test_batch_refuses_bad_ids_and_too_many_items() -> None:
    with pytest.raises(fmt.MalformedObject):
        fmt.make_batch(
            pharmacy_key=PHARMACY, batch_id="short", blocks=[], tombstones=[], created_at=WHEN
        )
    with pytest.raises(ValueError, match="at most"):
        fmt.make_batch(
            pharmacy_key=PHARMACY,
            batch_id="batch-too-many-items",
            blocks=[b""] * (fmt.MAX_BATCH_ITEMS + 1),
            tombstones=[],
            created_at=WHEN,
        )


def test_batch_error_names_the_item() -> None:
    foreign = fmt.make_tombstone(pharmacy_key=OTHER, handle="03" * 16, version=1, deleted_at=WHEN)
    data = fmt.make_batch(
        pharmacy_key=PHARMACY,
        batch_id="batch-with-foreign-item",
        blocks=[],
        tombstones=[foreign],
        created_at=WHEN,
    )
    with pytest.raises(fmt.SignatureInvalid, match="batch item 0"):
        fmt.verify_batch(data, PHARMACY.public_bytes())
