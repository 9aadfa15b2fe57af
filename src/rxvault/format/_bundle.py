"""The key bundle: the patient's X25519 key pair and the pinned pharmacy key, wrapped with
AES-256-GCM under a key from the unlock key and the server's share, bound to the account.

Layout: ``magic "RXK" 0x01 | nonce (12) | AES-256-GCM(private || public || pharmacy key) (112)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rxvault.format._codec import BUNDLE_MAGIC
from rxvault.format._errors import DecryptionFailed
from rxvault.format._keys import patient_public_key
from rxvault.format._primitives import hkdf_sha256, random_bytes

__all__ = [
    "BUNDLE_LENGTH",
    "KeyBundle",
    "bundle_key",
    "unwrap_key_bundle",
    "wrap_key_bundle",
    "wrap_key_bundle_from_parts",
]

BUNDLE_KEY_LABEL = b"rxvault/v1/key-bundle"
_NONCE = 12
_PLAINTEXT = 96
BUNDLE_LENGTH = 4 + _NONCE + _PLAINTEXT + 16


@dataclass(frozen=True, repr=False)
class KeyBundle:
    patient_private_key: bytes
    pharmacy_public_key: bytes
    patient_public_key: bytes

    def __repr__(self) -> str:
        return "KeyBundle(<secret>)"


def bundle_key(unlock_key: bytes, server_share: bytes) -> bytes:
    """HKDF-SHA256(unlock_key || server_share, info = label): the AES-256-GCM key."""
    if len(unlock_key) != 32 or len(server_share) != 32:
        raise ValueError("the unlock key and the server share are 32 bytes each")
    return hkdf_sha256(unlock_key + server_share, info=BUNDLE_KEY_LABEL, length=32)


def _aad(account: str) -> bytes:
    if not account:
        raise ValueError("the account must not be empty")
    return BUNDLE_MAGIC + account.encode("utf-8")


def wrap_key_bundle_from_parts(
    *,
    unlock_key: bytes,
    server_share: bytes,
    account: str,
    patient_private_key: bytes,
    pharmacy_public_key: bytes,
    nonce: bytes,
) -> bytes:
    if len(nonce) != _NONCE:
        raise ValueError("the nonce is 12 bytes")
    if len(pharmacy_public_key) != 32:
        raise ValueError("a pharmacy public key is 32 bytes")
    plaintext = patient_private_key + patient_public_key(patient_private_key) + pharmacy_public_key
    sealed = AESGCM(bundle_key(unlock_key, server_share)).encrypt(nonce, plaintext, _aad(account))
    return BUNDLE_MAGIC + nonce + sealed


def wrap_key_bundle(
    *,
    unlock_key: bytes,
    server_share: bytes,
    account: str,
    patient_private_key: bytes,
    pharmacy_public_key: bytes,
) -> bytes:
    return wrap_key_bundle_from_parts(
        unlock_key=unlock_key,
        server_share=server_share,
        account=account,
        patient_private_key=patient_private_key,
        pharmacy_public_key=pharmacy_public_key,
        nonce=random_bytes(_NONCE),
    )


def unwrap_key_bundle(
    bundle: bytes, *, unlock_key: bytes, server_share: bytes, account: str
) -> KeyBundle:
    """Any failure (version, length, tag, inconsistent keys) is :class:`DecryptionFailed`."""
    if len(bundle) != BUNDLE_LENGTH or bundle[:4] != BUNDLE_MAGIC:
        raise DecryptionFailed()
    try:
        key = bundle_key(unlock_key, server_share)
        plaintext = AESGCM(key).decrypt(bundle[4:16], bundle[16:], _aad(account))
        private, public, pharmacy = plaintext[:32], plaintext[32:64], plaintext[64:]
        if patient_public_key(private) != public:
            raise DecryptionFailed()
    except (InvalidTag, ValueError):
        raise DecryptionFailed() from None
    return KeyBundle(
        patient_private_key=private, pharmacy_public_key=pharmacy, patient_public_key=public
    )
