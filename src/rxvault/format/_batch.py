"""The upload batch: blocks and tombstones signed together under one batch id.

Layout::

    magic "RXU" 0x01 | u16 header length | header (canonical JSON) |
    block_count x (u32 length | block) | tombstone_count x (u32 length | tombstone) |
    Ed25519 signature (64) over every byte before it
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime

from rxvault.format._codec import (
    BATCH_MAGIC,
    check_hex_id,
    decode_header,
    encode_header,
    format_time,
    parse_time,
    read_magic,
)
from rxvault.format._envelope import BlockHeader, Verifier, verify_block_with
from rxvault.format._errors import FormatError, MalformedObject, SignatureInvalid
from rxvault.format._keys import SIGNATURE_LENGTH, PharmacyKey
from rxvault.format._primitives import random_bytes, sha256
from rxvault.format._tombstone import TombstoneHeader, verify_tombstone

__all__ = ["MAX_BATCH_ITEMS", "Batch", "make_batch", "new_batch_id", "verify_batch"]

MAX_BATCH_ITEMS = 10_000
_BATCH_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{16,64}\Z")
_HEADER_KEYS = frozenset(
    {"batch_id", "block_count", "created_at", "pharmacy_id", "tombstone_count"}
)
_WHAT = "batch"


@dataclass(frozen=True)
class Batch:
    batch_id: str
    pharmacy_id: str
    created_at: datetime
    blocks: list[tuple[BlockHeader, bytes]]
    tombstones: list[tuple[TombstoneHeader, bytes]]
    digest: bytes


def new_batch_id() -> str:
    """A fresh random batch id: 128 bits, base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(random_bytes(16)).rstrip(b"=").decode("ascii")


def _check_batch_id(value: object) -> str:
    if not isinstance(value, str) or not _BATCH_ID_RE.match(value):
        raise MalformedObject("batch: batch_id must be 16 to 64 characters of A-Z a-z 0-9 _ -")
    return value


def make_batch(
    *,
    pharmacy_key: PharmacyKey,
    batch_id: str,
    blocks: list[bytes],
    tombstones: list[bytes],
    created_at: datetime,
) -> bytes:
    """Sign a batch of already sealed blocks and tombstones (blocks first, in order)."""
    _check_batch_id(batch_id)
    if len(blocks) + len(tombstones) > MAX_BATCH_ITEMS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_ITEMS} items")
    parts = [
        BATCH_MAGIC,
        encode_header(
            {
                "batch_id": batch_id,
                "block_count": len(blocks),
                "created_at": format_time(created_at),
                "pharmacy_id": pharmacy_key.pharmacy_id,
                "tombstone_count": len(tombstones),
            }
        ),
    ]
    for item in [*blocks, *tombstones]:
        parts.append(len(item).to_bytes(4, "big"))
        parts.append(item)
    body = b"".join(parts)
    return body + pharmacy_key.sign(body)


def _count(value: object, field: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_BATCH_ITEMS:
        raise MalformedObject(f"batch: {field} must be an integer from 0 to {MAX_BATCH_ITEMS}")
    return value


def verify_batch(data: bytes, pharmacy_public_key: bytes) -> Batch:
    """Verify the batch signature, then every item in it; refuse a handle present twice.

    The pharmacy key is loaded once for the batch and all its blocks.
    """
    read_magic(data, BATCH_MAGIC, _WHAT)
    fields, offset = decode_header(data, 4, _HEADER_KEYS, _WHAT)
    batch_id = _check_batch_id(fields["batch_id"])
    block_count = _count(fields["block_count"], "block_count")
    tombstone_count = _count(fields["tombstone_count"], "tombstone_count")
    if block_count + tombstone_count > MAX_BATCH_ITEMS:
        raise MalformedObject(f"batch: more than {MAX_BATCH_ITEMS} items")
    created_at = parse_time(fields["created_at"], "created_at", _WHAT)
    claimed_id = check_hex_id(fields["pharmacy_id"], "pharmacy_id", _WHAT)
    end = len(data) - SIGNATURE_LENGTH
    items: list[bytes] = []
    for index in range(block_count + tombstone_count):
        if offset + 4 > end:
            raise MalformedObject(f"batch: truncated before item {index}")
        length = int.from_bytes(data[offset : offset + 4], "big")
        offset += 4
        if offset + length > end:
            raise MalformedObject(f"batch: item {index} is truncated")
        items.append(data[offset : offset + length])
        offset += length
    if offset != end:
        raise MalformedObject("batch: length does not match its items and signature")
    verifier = Verifier(pharmacy_public_key)
    verifier.check(data[end:], memoryview(data)[:end], _WHAT)
    if claimed_id != verifier.pharmacy_id:
        raise SignatureInvalid("batch: signed for another pharmacy id")
    blocks: list[tuple[BlockHeader, bytes]] = []
    tombstones: list[tuple[TombstoneHeader, bytes]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            if index < block_count:
                header: BlockHeader | TombstoneHeader = verify_block_with(item, verifier)
            else:
                header = verify_tombstone(item, pharmacy_public_key)
        except FormatError as exc:
            raise type(exc)(f"batch item {index}: {exc}") from None
        if header.handle in seen:
            raise MalformedObject(f"batch: handle {header.handle} appears twice")
        seen.add(header.handle)
        if isinstance(header, BlockHeader):
            blocks.append((header, item))
        else:
            tombstones.append((header, item))
    return Batch(
        batch_id=batch_id,
        pharmacy_id=claimed_id,
        created_at=created_at,
        blocks=blocks,
        tombstones=tombstones,
        digest=sha256(data),
    )
