"""HPKE (RFC 9180) base mode for one suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
AES-128-GCM, single shot.

Implemented here on ``cryptography``'s X25519, HMAC and AES-GCM primitives because the ephemeral
key must be injectable for test vectors. The RFC 9180 vectors for this suite
(vectors/rfc9180.json) pass, and the tests check interoperability both ways with
``cryptography``'s own HPKE (``cryptography.hazmat.primitives.hpke``).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rxvault.format._errors import DecryptionFailed
from rxvault.format._primitives import hmac_sha256

__all__ = [
    "AEAD_ID",
    "ENC_LENGTH",
    "KDF_ID",
    "KEM_ID",
    "TAG_LENGTH",
    "decap",
    "derive_key_pair",
    "encap",
    "key_schedule",
    "labeled_expand",
    "open_base",
    "seal_base",
]

KEM_ID = 0x0020  # DHKEM(X25519, HKDF-SHA256)
KDF_ID = 0x0001  # HKDF-SHA256
AEAD_ID = 0x0001  # AES-128-GCM
ENC_LENGTH = 32
TAG_LENGTH = 16
_NK = 16
_NN = 12
_NH = 32
_KEM_SUITE_ID = b"KEM" + KEM_ID.to_bytes(2, "big")
_HPKE_SUITE_ID = (
    b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + AEAD_ID.to_bytes(2, "big")
)


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac_sha256(salt or bytes(_NH), ikm)


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_sha256(prk, block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def _labeled_expand_with(
    suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int
) -> bytes:
    labeled_info = length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
    return _expand(prk, labeled_info, length)


def labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """LabeledExpand with the full HPKE suite id (used for the exporter in tests)."""
    return _labeled_expand_with(_HPKE_SUITE_ID, prk, label, info, length)


def derive_key_pair(ikm: bytes) -> tuple[bytes, bytes]:
    """DeriveKeyPair for X25519 (RFC 9180 section 7.1.3): returns (private, public) raw."""
    dkp_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    sk = _labeled_expand_with(_KEM_SUITE_ID, dkp_prk, b"sk", b"", 32)
    pk = X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes_raw()
    return sk, pk


def _shared_secret(dh: bytes, enc: bytes, pk_r: bytes) -> bytes:
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand_with(_KEM_SUITE_ID, eae_prk, b"shared_secret", enc + pk_r, 32)


def encap(recipient_public_key: bytes, ephemeral_private_key: bytes) -> tuple[bytes, bytes]:
    """DHKEM Encap with an explicit ephemeral key: returns (shared_secret, enc).

    Raises ``ValueError`` for a recipient key that gives an all-zero shared secret.
    """
    sk_e = X25519PrivateKey.from_private_bytes(ephemeral_private_key)
    enc = sk_e.public_key().public_bytes_raw()
    try:
        dh = sk_e.exchange(X25519PublicKey.from_public_bytes(recipient_public_key))
    except ValueError:
        raise ValueError("the recipient public key is invalid (a low-order point)") from None
    return _shared_secret(dh, enc, recipient_public_key), enc


# mode_base has no pre-shared key: its id is empty, so this hash is a constant of the suite
_PSK_ID_HASH = _labeled_extract(_HPKE_SUITE_ID, b"", b"psk_id_hash", b"")


def key_schedule(shared_secret: bytes, info: bytes) -> tuple[bytes, bytes, bytes]:
    """KeySchedule for mode_base: returns (key, base_nonce, exporter_secret)."""
    psk_id_hash = _PSK_ID_HASH
    info_hash = _labeled_extract(_HPKE_SUITE_ID, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(_HPKE_SUITE_ID, shared_secret, b"secret", b"")
    key = _labeled_expand_with(_HPKE_SUITE_ID, secret, b"key", context, _NK)
    base_nonce = _labeled_expand_with(_HPKE_SUITE_ID, secret, b"base_nonce", context, _NN)
    exporter = _labeled_expand_with(_HPKE_SUITE_ID, secret, b"exp", context, _NH)
    return key, base_nonce, exporter


def decap(enc: bytes, recipient_private_key: bytes) -> bytes:
    """DHKEM Decap: returns shared_secret. Raises ``ValueError`` for a bad ``enc``."""
    if len(enc) != ENC_LENGTH:
        raise ValueError("enc has the wrong length")
    sk_r = X25519PrivateKey.from_private_bytes(recipient_private_key)
    dh = sk_r.exchange(X25519PublicKey.from_public_bytes(enc))
    return _shared_secret(dh, enc, sk_r.public_key().public_bytes_raw())


def seal_base(
    recipient_public_key: bytes,
    info: bytes,
    plaintext: bytes,
    ephemeral_private_key: bytes,
    aad: bytes = b"",
) -> tuple[bytes, bytes]:
    """Single-shot SealBase (sequence number 0): returns (enc, ciphertext)."""
    shared, enc = encap(recipient_public_key, ephemeral_private_key)
    key, base_nonce, _ = key_schedule(shared, info)
    return enc, AESGCM(key).encrypt(base_nonce, plaintext, aad)


def open_base(
    recipient_private_key: bytes, enc: bytes, info: bytes, ciphertext: bytes, aad: bytes = b""
) -> bytes:
    """Single-shot OpenBase (sequence number 0). Any failure raises :class:`DecryptionFailed`."""
    try:
        shared = decap(enc, recipient_private_key)
        key, base_nonce, _ = key_schedule(shared, info)
        return AESGCM(key).decrypt(base_nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise DecryptionFailed() from None
