"""The block: one patient's document, compressed, padded, sealed with HPKE and signed.

Layout (docs/spec/format.md, "The block")::

    magic "RXB" 0x01 | u16 header length | header (canonical JSON) | enc (32) |
    ciphertext (padded_length + 16) | Ed25519 signature (64)

The HPKE ``info`` is every byte from the magic to the end of the header; the signature covers
every byte before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rxvault.format._codec import (
    BLOCK_MAGIC,
    check_counter,
    check_handle,
    check_hex_id,
    decode_header,
    encode_header,
    format_time,
    parse_time,
    read_magic,
)
from rxvault.format._errors import (
    HandleMismatch,
    MalformedObject,
    RollbackRefused,
    SignatureInvalid,
    UnsupportedSuite,
)
from rxvault.format._hpke import ENC_LENGTH, TAG_LENGTH, open_base, seal_base
from rxvault.format._keys import SIGNATURE_LENGTH, PharmacyKey, pharmacy_id
from rxvault.format._padding import compress, decompress, is_valid_padded_length, pad, unpad
from rxvault.format._primitives import random_bytes

__all__ = [
    "BLOCK_SUITE",
    "BlockHeader",
    "OpenedBlock",
    "Verifier",
    "compress_document",
    "open_block",
    "seal_block",
    "seal_block_from_parts",
    "seal_compressed",
    "seal_padded_from_parts",
    "verify_block",
    "verify_block_with",
]

BLOCK_SUITE = "HPKE-X25519-SHA256-A128GCM+Ed25519+zlib"
_HEADER_KEYS = frozenset({"as_of", "handle", "padded_length", "pharmacy_id", "suite", "version"})
_WHAT = "block"


@dataclass(frozen=True)
class BlockHeader:
    """The public, signed header of a block."""

    pharmacy_id: str
    handle: str
    version: int
    as_of: datetime
    suite: str
    padded_length: int


@dataclass(frozen=True)
class OpenedBlock:
    header: BlockHeader
    document: bytes


def seal_padded_from_parts(
    plaintext: bytes,
    *,
    pharmacy_key: PharmacyKey,
    handle: str,
    version: int,
    as_of: datetime,
    recipient_public_key: bytes,
    ephemeral_private_key: bytes,
) -> bytes:
    """The lowest, deterministic layer: seal an already padded plaintext and sign.

    Exposed for test vectors (which need blocks with deliberately bad padding inside);
    ``len(plaintext)`` becomes the header's ``padded_length``.
    """
    check_handle(handle)
    check_counter(version, "version", _WHAT)
    if len(recipient_public_key) != 32:
        raise ValueError("a patient public key is 32 bytes")
    header = encode_header(
        {
            "as_of": format_time(as_of),
            "handle": handle,
            "padded_length": len(plaintext),
            "pharmacy_id": pharmacy_key.pharmacy_id,
            "suite": BLOCK_SUITE,
            "version": version,
        }
    )
    info = BLOCK_MAGIC + header
    enc, ciphertext = seal_base(recipient_public_key, info, plaintext, ephemeral_private_key)
    body = info + enc + ciphertext
    return body + pharmacy_key.sign(body)


def seal_block_from_parts(
    compressed: bytes,
    *,
    pharmacy_key: PharmacyKey,
    handle: str,
    version: int,
    as_of: datetime,
    recipient_public_key: bytes,
    ephemeral_private_key: bytes,
) -> bytes:
    """Deterministic sealing from an already-compressed document (a zlib stream) and an
    explicit ephemeral X25519 private key. :func:`seal_block` is this with fresh randomness."""
    return seal_padded_from_parts(
        pad(compressed),
        pharmacy_key=pharmacy_key,
        handle=handle,
        version=version,
        as_of=as_of,
        recipient_public_key=recipient_public_key,
        ephemeral_private_key=ephemeral_private_key,
    )


def seal_block(
    document: bytes,
    *,
    pharmacy_key: PharmacyKey,
    handle: str,
    version: int,
    as_of: datetime,
    recipient_public_key: bytes,
) -> bytes:
    """Compress, pad, HPKE-seal ``document`` to the patient's X25519 key, and sign."""
    return seal_compressed(
        compress(document),
        pharmacy_key=pharmacy_key,
        handle=handle,
        version=version,
        as_of=as_of,
        recipient_public_key=recipient_public_key,
    )


def compress_document(document: bytes) -> bytes:
    """The first step of :func:`seal_block` alone (zlib, docs/spec/format.md "Compression"):
    zlib releases the GIL, so a caller can compress the next documents on another thread while
    :func:`seal_compressed` seals these."""
    return compress(document)


def seal_compressed(
    compressed: bytes,
    *,
    pharmacy_key: PharmacyKey,
    handle: str,
    version: int,
    as_of: datetime,
    recipient_public_key: bytes,
) -> bytes:
    """:func:`seal_block` of ``compress_document(document)``, with fresh randomness."""
    return seal_block_from_parts(
        compressed,
        pharmacy_key=pharmacy_key,
        handle=handle,
        version=version,
        as_of=as_of,
        recipient_public_key=recipient_public_key,
        ephemeral_private_key=random_bytes(32),
    )


def _parse(envelope: bytes) -> tuple[BlockHeader, int]:
    """Parse the public part; return the header and the offset where ``enc`` starts."""
    read_magic(envelope, BLOCK_MAGIC, _WHAT)
    fields, end = decode_header(envelope, 4, _HEADER_KEYS, _WHAT)
    if fields["suite"] != BLOCK_SUITE:
        raise UnsupportedSuite(f"block: unsupported suite {fields['suite']!r}")
    padded = fields["padded_length"]
    if type(padded) is not int or not is_valid_padded_length(padded):
        raise MalformedObject("block: padded_length is not a valid bucket size")
    header = BlockHeader(
        pharmacy_id=check_hex_id(fields["pharmacy_id"], "pharmacy_id", _WHAT),
        handle=check_handle(fields["handle"], _WHAT),
        version=check_counter(fields["version"], "version", _WHAT),
        as_of=parse_time(fields["as_of"], "as_of", _WHAT),
        suite=BLOCK_SUITE,
        padded_length=padded,
    )
    expected = end + ENC_LENGTH + padded + TAG_LENGTH + SIGNATURE_LENGTH
    if len(envelope) != expected:
        raise MalformedObject(
            f"block: {len(envelope)} bytes, but its header implies exactly {expected}"
        )
    return header, end


class Verifier:
    """A pharmacy public key loaded once, with its id, for verifying many objects.

    ``check`` is :func:`verify_signature` without loading the key again: a batch of a
    thousand blocks loads it once, not a thousand times.
    """

    __slots__ = ("_key", "pharmacy_id")

    def __init__(self, public_key: bytes) -> None:
        self.pharmacy_id = pharmacy_id(public_key)  # ValueError unless 32 bytes
        try:
            self._key: Ed25519PublicKey | None = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            self._key = None  # verify_signature's refusal, at the time of the first check

    def check(self, signature: bytes, message: bytes | memoryview, what: str) -> None:
        """Verify an Ed25519 signature; raise :class:`SignatureInvalid` naming ``what``."""
        try:
            if self._key is None:
                raise InvalidSignature
            self._key.verify(signature, message)
        except (InvalidSignature, ValueError):
            raise SignatureInvalid(f"{what}: pharmacy signature does not verify") from None


def _signed(envelope: bytes, header: BlockHeader, verifier: Verifier) -> None:
    """Steps 7 and 8 of the order of checks, on a parsed block."""
    split = len(envelope) - SIGNATURE_LENGTH
    verifier.check(envelope[split:], memoryview(envelope)[:split], _WHAT)
    if header.pharmacy_id != verifier.pharmacy_id:
        raise SignatureInvalid("block: signed for another pharmacy id")


def verify_block_with(envelope: bytes, verifier: Verifier) -> BlockHeader:
    """:func:`verify_block` with a key already loaded (a batch loads it once)."""
    header, _ = _parse(envelope)
    _signed(envelope, header, verifier)
    return header


def _verify(envelope: bytes, pharmacy_public_key: bytes) -> tuple[BlockHeader, int]:
    header, end = _parse(envelope)
    _signed(envelope, header, Verifier(pharmacy_public_key))
    return header, end


def verify_block(envelope: bytes, pharmacy_public_key: bytes) -> BlockHeader:
    """Check the structure and the pharmacy signature (no decryption); return the header."""
    return _verify(envelope, pharmacy_public_key)[0]


def open_block(
    envelope: bytes,
    *,
    recipient_private_key: bytes,
    pharmacy_public_key: bytes,
    expected_handle: str,
    min_version: int = 0,
) -> OpenedBlock:
    """Verify, check handle and version, then decrypt and decompress.

    Raises :class:`SignatureInvalid`, :class:`HandleMismatch`, :class:`RollbackRefused`, or
    :class:`DecryptionFailed` (every failure after the public checks).
    """
    header, end = _verify(envelope, pharmacy_public_key)
    if header.handle != expected_handle:
        raise HandleMismatch("block: for another patient handle")
    if header.version < min_version:
        raise RollbackRefused(
            f"block: version {header.version} is older than version {min_version} already seen"
        )
    info = envelope[:end]
    enc = envelope[end : end + ENC_LENGTH]
    ciphertext = envelope[end + ENC_LENGTH : -SIGNATURE_LENGTH]
    plaintext = open_base(recipient_private_key, enc, info, ciphertext)
    return OpenedBlock(header=header, document=decompress(unpad(plaintext)))
