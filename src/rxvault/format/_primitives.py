"""The lowest layer: the one place randomness is drawn, plus small hashing helpers.

Public functions call :func:`random_bytes` and pass the result down to ``*_from_parts``
functions, which are deterministic; the test vectors call those directly.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["hkdf_sha256", "hmac_sha256", "random_bytes", "sha256"]


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG. The only source of randomness."""
    return os.urandom(n)


def hkdf_sha256(ikm: bytes, *, info: bytes, length: int, salt: bytes = b"") -> bytes:
    """HKDF-SHA256 (RFC 5869). An empty salt means HashLen zero bytes, as in the RFC."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
