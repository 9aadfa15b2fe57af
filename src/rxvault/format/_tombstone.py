"""The signed deletion of a patient's block (a tombstone).

Layout: ``magic "RXT" 0x01 | u16 header length | header (canonical JSON) | signature (64)``;
the signature covers every byte before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rxvault.format._codec import (
    TOMBSTONE_MAGIC,
    check_counter,
    check_handle,
    check_hex_id,
    decode_header,
    encode_header,
    format_time,
    parse_time,
    read_magic,
)
from rxvault.format._errors import MalformedObject, SignatureInvalid
from rxvault.format._keys import SIGNATURE_LENGTH, PharmacyKey, pharmacy_id, verify_signature

__all__ = ["TombstoneHeader", "make_tombstone", "verify_tombstone"]

_HEADER_KEYS = frozenset({"deleted_at", "handle", "pharmacy_id", "version"})
_WHAT = "tombstone"


@dataclass(frozen=True)
class TombstoneHeader:
    pharmacy_id: str
    handle: str
    version: int
    deleted_at: datetime


def make_tombstone(
    *, pharmacy_key: PharmacyKey, handle: str, version: int, deleted_at: datetime
) -> bytes:
    """Sign the deletion of ``handle``'s block; ``version`` must exceed the block's."""
    check_handle(handle)
    check_counter(version, "version", _WHAT)
    body = TOMBSTONE_MAGIC + encode_header(
        {
            "deleted_at": format_time(deleted_at),
            "handle": handle,
            "pharmacy_id": pharmacy_key.pharmacy_id,
            "version": version,
        }
    )
    return body + pharmacy_key.sign(body)


def verify_tombstone(data: bytes, pharmacy_public_key: bytes) -> TombstoneHeader:
    read_magic(data, TOMBSTONE_MAGIC, _WHAT)
    fields, end = decode_header(data, 4, _HEADER_KEYS, _WHAT)
    header = TombstoneHeader(
        pharmacy_id=check_hex_id(fields["pharmacy_id"], "pharmacy_id", _WHAT),
        handle=check_handle(fields["handle"], _WHAT),
        version=check_counter(fields["version"], "version", _WHAT),
        deleted_at=parse_time(fields["deleted_at"], "deleted_at", _WHAT),
    )
    if len(data) != end + SIGNATURE_LENGTH:
        raise MalformedObject(
            f"tombstone: {len(data)} bytes, but its header implies exactly {end + SIGNATURE_LENGTH}"
        )
    verify_signature(pharmacy_public_key, data[end:], data[:end], _WHAT)
    if header.pharmacy_id != pharmacy_id(pharmacy_public_key):
        raise SignatureInvalid("tombstone: signed for another pharmacy id")
    return header
