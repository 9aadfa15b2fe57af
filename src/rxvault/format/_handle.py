"""Patient handles: a keyed hash of the pharmacy's patient id."""

from __future__ import annotations

from rxvault.format._primitives import hmac_sha256, random_bytes

__all__ = ["HANDLE_LABEL", "generate_handle_secret", "patient_handle"]

HANDLE_LABEL = b"rxvault/v1/patient-handle\x00"


def generate_handle_secret() -> bytes:
    """A new 32-byte secret for patient handles (kept on the pharmacy PC only)."""
    return random_bytes(32)


def patient_handle(handle_secret: bytes, patient_id: str) -> str:
    """HMAC-SHA256(handle_secret, label || UTF-8(patient_id)), first 16 bytes, lowercase hex.

    ``patient_id`` is hashed exactly as given; callers normalise it (e.g. strip the blanks a DBF
    character field is padded with) before calling.
    """
    if len(handle_secret) != 32:
        raise ValueError("a handle secret is 32 bytes")
    if not patient_id:
        raise ValueError("a patient id must not be empty")
    return hmac_sha256(handle_secret, HANDLE_LABEL + patient_id.encode("utf-8"))[:16].hex()
