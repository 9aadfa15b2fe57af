"""Compression (zlib, RFC 1950) and padding to power-of-two buckets with a floor.

The plaintext sealed in a block is ``u32 length || zlib stream || zero bytes``, and its total
length (the *padded length*) is the smallest power of two that holds it, but at least
:data:`PADDING_FLOOR`. See docs/spec/format.md, "Compression" and "Padding".
"""

from __future__ import annotations

import zlib

from rxvault.format._errors import DecryptionFailed, DocumentTooLarge

__all__ = [
    "BEST_COMPRESSION_LEVEL",
    "COMPRESSION_LEVEL",
    "MAX_DOCUMENT_LENGTH",
    "MAX_PADDED_LENGTH",
    "PADDING_FLOOR",
    "compress",
    "decompress",
    "is_valid_padded_length",
    "pad",
    "padded_length",
    "unpad",
]

PADDING_FLOOR = 8192
MAX_PADDED_LENGTH = 16 * 1024 * 1024
MAX_DOCUMENT_LENGTH = 64 * 1024 * 1024
#: the fast first level: below the floor bucket the level changes nothing anyone can see
COMPRESSION_LEVEL = 1
#: the level tried as well when :data:`COMPRESSION_LEVEL` does not fit the floor bucket
BEST_COMPRESSION_LEVEL = 9
_LENGTH_PREFIX = 4


def compress(document: bytes) -> bytes:
    """zlib level 1; for a document that then needs more than the floor bucket, also level 9,
    keeping the shorter stream. A block is so never in a larger bucket than with level 9
    alone, at half the time for the usual patient (docs/spec/format.md, "Compression")."""
    if len(document) > MAX_DOCUMENT_LENGTH:
        raise DocumentTooLarge(
            f"document is {len(document)} bytes; the limit is {MAX_DOCUMENT_LENGTH}"
        )
    stream = zlib.compress(document, COMPRESSION_LEVEL)
    if _LENGTH_PREFIX + len(stream) <= PADDING_FLOOR:
        return stream
    best = zlib.compress(document, BEST_COMPRESSION_LEVEL)
    return best if len(best) < len(stream) else stream


def decompress(stream: bytes) -> bytes:
    """Inflate one complete zlib stream, refusing trailing bytes and oversized output."""
    try:
        inflater = zlib.decompressobj()
        document = inflater.decompress(stream, MAX_DOCUMENT_LENGTH + 1)
    except zlib.error:
        raise DecryptionFailed() from None
    if (
        not inflater.eof
        or inflater.unused_data
        or inflater.unconsumed_tail
        or len(document) > MAX_DOCUMENT_LENGTH
    ):
        raise DecryptionFailed()
    return document


def padded_length(content_length: int) -> int:
    """The bucket for ``content_length`` bytes of length prefix plus compressed stream."""
    size = PADDING_FLOOR
    while size < content_length:
        size *= 2
    if size > MAX_PADDED_LENGTH:
        raise DocumentTooLarge(
            f"compressed document needs {content_length} bytes; the largest bucket is "
            f"{MAX_PADDED_LENGTH}"
        )
    return size


def is_valid_padded_length(value: int) -> bool:
    return PADDING_FLOOR <= value <= MAX_PADDED_LENGTH and value & (value - 1) == 0


def pad(compressed: bytes) -> bytes:
    framed = len(compressed).to_bytes(_LENGTH_PREFIX, "big") + compressed
    return framed + bytes(padded_length(len(framed)) - len(framed))


def unpad(plaintext: bytes) -> bytes:
    """Undo :func:`pad`; any inconsistency raises :class:`DecryptionFailed`."""
    if len(plaintext) < _LENGTH_PREFIX:
        raise DecryptionFailed()
    length = int.from_bytes(plaintext[:_LENGTH_PREFIX], "big")
    end = _LENGTH_PREFIX + length
    if end > len(plaintext) or plaintext[end:].strip(b"\x00"):
        raise DecryptionFailed()
    return plaintext[_LENGTH_PREFIX:end]
