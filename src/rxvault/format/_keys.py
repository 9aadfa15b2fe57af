"""Pharmacy signing keys (Ed25519), patient key pairs (X25519) and pharmacy ids."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from rxvault.format._errors import SignatureInvalid
from rxvault.format._primitives import random_bytes, sha256

__all__ = [
    "SIGNATURE_LENGTH",
    "PharmacyKey",
    "generate_patient_keypair",
    "generate_pharmacy_key",
    "patient_public_key",
    "pharmacy_id",
    "verify_signature",
]

SIGNATURE_LENGTH = 64


def pharmacy_id(public_key: bytes) -> str:
    """The pharmacy's stable id: the first 16 bytes of SHA-256(public key), lowercase hex."""
    if len(public_key) != 32:
        raise ValueError("a pharmacy public key is 32 bytes")
    return sha256(public_key)[:16].hex()


class PharmacyKey:
    """A pharmacy's Ed25519 signing key. ``repr`` never shows the private half."""

    __slots__ = ("_private", "_public")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._public = private.public_key().public_bytes_raw()

    @classmethod
    def from_private_bytes(cls, data: bytes) -> PharmacyKey:
        if len(data) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(data))

    def private_bytes(self) -> bytes:
        return self._private.private_bytes_raw()

    def public_bytes(self) -> bytes:
        return self._public

    @property
    def pharmacy_id(self) -> str:
        return pharmacy_id(self._public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"PharmacyKey(pharmacy_id={self.pharmacy_id!r})"


def generate_pharmacy_key() -> PharmacyKey:
    return PharmacyKey.from_private_bytes(random_bytes(32))


def verify_signature(public_key: bytes, signature: bytes, message: bytes, what: str) -> None:
    """Verify an Ed25519 signature; raise :class:`SignatureInvalid` naming ``what``."""
    if len(public_key) != 32:
        raise ValueError("a pharmacy public key is 32 bytes")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SignatureInvalid(f"{what}: pharmacy signature does not verify") from None


def patient_public_key(private_key: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key."""
    if len(private_key) != 32:
        raise ValueError("an X25519 private key is 32 bytes")
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def generate_patient_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair as (private, public), 32 bytes each."""
    private = random_bytes(32)
    return private, patient_public_key(private)
