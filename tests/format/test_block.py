"""Blocks: seal, verify and open, and every way opening must refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxvault import format as fmt
from rxvault.format import _hpke

from .strategies import counters, handles, moments, whole_seconds


def _seal(
    pharmacy: fmt.PharmacyKey, handle: str, public: bytes, as_of: datetime, **kw: object
) -> bytes:
    args: dict[str, object] = {"version": 5, "as_of": as_of}
    args.update(kw)
    return fmt.seal_block(
        b'{"fills":[]}',
        pharmacy_key=pharmacy,
        handle=handle,
        recipient_public_key=public,
        **args,  # type: ignore[arg-type]
    )


def test_round_trip(
    pharmacy: fmt.PharmacyKey, patient: tuple[bytes, bytes], handle: str, as_of: datetime
) -> None:
    private, public = patient
    envelope = _seal(pharmacy, handle, public, as_of)
    header = fmt.verify_block(envelope, pharmacy.public_bytes())
    assert header.handle == handle
    assert header.version == 5
    assert header.as_of == as_of
    assert header.pharmacy_id == fmt.pharmacy_id(pharmacy.public_bytes())
    assert header.padded_length == 8192
    opened = fmt.open_block(
        envelope,
        recipient_private_key=private,
        pharmacy_public_key=pharmacy.public_bytes(),
        expected_handle=handle,
        min_version=5,
    )
    assert opened.document == b'{"fills":[]}'
    assert opened.header == header


def test_wrong_recipient_is_decryption_failed(
    pharmacy: fmt.PharmacyKey, patient: tuple[bytes, bytes], handle: str, as_of: datetime
) -> None:
    envelope = _seal(pharmacy, handle, patient[1], as_of)
    with pytest.raises(fmt.DecryptionFailed):
        fmt.open_block(
            envelope,
            recipient_private_key=bytes(range(32)),
            pharmacy_public_key=pharmacy.public_bytes(),
            expected_handle=handle,
        )


def test_rollback_and_handle_and_pharmacy(
    pharmacy: fmt.PharmacyKey,
    other_pharmacy: fmt.PharmacyKey,
    patient: tuple[bytes, bytes],
    handle: str,
    as_of: datetime,
) -> None:
    private, public = patient
    envelope = _seal(pharmacy, handle, public, as_of)
    common = {"recipient_private_key": private}
    with pytest.raises(fmt.RollbackRefused):
        fmt.open_block(
            envelope,
            pharmacy_public_key=pharmacy.public_bytes(),
            expected_handle=handle,
            min_version=6,
            **common,
        )
    with pytest.raises(fmt.HandleMismatch):
        fmt.open_block(
            envelope,
            pharmacy_public_key=pharmacy.public_bytes(),
            expected_handle="0" * 32,
            **common,
        )
    with pytest.raises(fmt.SignatureInvalid):
        fmt.open_block(
            envelope,
            pharmacy_public_key=other_pharmacy.public_bytes(),
            expected_handle=handle,
            **common,
        )


def test_naive_time_is_refused(
    pharmacy: fmt.PharmacyKey, patient: tuple[bytes, bytes], handle: str
) -> None:
    with pytest.raises(ValueError, match="timezone"):
        _seal(pharmacy, handle, patient[1], datetime(2026, 1, 1))


# --------------------------------------------------------------------------- properties


_PHARMACY = fmt.PharmacyKey.from_private_bytes(bytes(range(32)))
_PATIENT = bytes.fromhex("77" * 32)
_PATIENT_PUBLIC = fmt.patient_public_key(_PATIENT)
_FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(document=st.binary(max_size=20_000), handle=handles, version=counters, as_of=moments)
def test_any_document_round_trips(
    document: bytes, handle: str, version: int, as_of: datetime
) -> None:
    envelope = fmt.seal_block(
        document,
        pharmacy_key=_PHARMACY,
        handle=handle,
        version=version,
        as_of=as_of,
        recipient_public_key=_PATIENT_PUBLIC,
    )
    opened = fmt.open_block(
        envelope,
        recipient_private_key=_PATIENT,
        pharmacy_public_key=_PHARMACY.public_bytes(),
        expected_handle=handle,
        min_version=version,
    )
    assert opened.document == document
    assert opened.header.version == version
    assert opened.header.as_of == whole_seconds(as_of)
    assert opened.header.padded_length >= 8192
    header_length = int.from_bytes(envelope[4:6], "big")
    assert len(envelope) == 6 + header_length + 32 + opened.header.padded_length + 16 + 64


_SEALED = fmt.seal_block(
    b'{"fills":[{"drug":"Atorvastatin 20 mg","qty":"30"}]}',
    pharmacy_key=_PHARMACY,
    handle="ab" * 16,
    version=3,
    as_of=datetime(2026, 12, 4, tzinfo=UTC),
    recipient_public_key=_PATIENT_PUBLIC,
)


def _open(envelope: bytes) -> bytes:
    return fmt.open_block(
        envelope,
        recipient_private_key=_PATIENT,
        pharmacy_public_key=_PHARMACY.public_bytes(),
        expected_handle="ab" * 16,
    ).document


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, len(_SEALED) - 1), mask=st.integers(1, 255))
def test_any_byte_change_is_refused(position: int, mask: int) -> None:
    mutated = bytearray(_SEALED)
    mutated[position] ^= mask
    with pytest.raises(fmt.FormatError):
        _open(bytes(mutated))
    with pytest.raises(fmt.FormatError):
        fmt.verify_block(bytes(mutated), _PHARMACY.public_bytes())


@settings(max_examples=50, deadline=None)
@given(cut=st.integers(0, len(_SEALED) - 1), extra=st.binary(min_size=1, max_size=70))
def test_truncation_and_extension_are_refused(cut: int, extra: bytes) -> None:
    with pytest.raises(fmt.MalformedObject):
        _open(_SEALED[:cut])
    with pytest.raises(fmt.MalformedObject):
        _open(_SEALED + extra)


def test_sealed_ciphertext_opens_with_cryptography_hpke() -> None:
    """Interoperability: our sealing against cryptography's own RFC 9180 implementation."""
    from cryptography.hazmat.primitives import hpke
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
    header_end = 6 + int.from_bytes(_SEALED[4:6], "big")
    info = _SEALED[:header_end]
    enc_and_ciphertext = _SEALED[header_end:-64]
    recipient = X25519PrivateKey.from_private_bytes(_PATIENT)
    plaintext = suite.decrypt(enc_and_ciphertext, recipient, info=info)
    assert plaintext == _hpke.open_base(
        _PATIENT, enc_and_ciphertext[:32], info, enc_and_ciphertext[32:]
    )
    theirs = suite.encrypt(b"from the other implementation", recipient.public_key(), info=b"ctx")
    assert (
        _hpke.open_base(_PATIENT, theirs[:32], b"ctx", theirs[32:])
        == b"from the other implementation"
    )


def test_every_seal_uses_a_fresh_ephemeral_key() -> None:
    args = {
        "pharmacy_key": _PHARMACY,
        "handle": "ab" * 16,
        "version": 1,
        "as_of": datetime(2026, 1, 1, tzinfo=UTC),
        "recipient_public_key": _PATIENT_PUBLIC,
    }
    first = fmt.seal_block(b"{}", **args)  # type: ignore[arg-type]
    second = fmt.seal_block(b"{}", **args)  # type: ignore[arg-type]
    assert first[:214] == second[:214]  # same header
    header_end = 6 + int.from_bytes(first[4:6], "big")
    assert first[header_end : header_end + 32] != second[header_end : header_end + 32]


def test_invalid_arguments_are_programming_errors() -> None:
    base = {
        "pharmacy_key": _PHARMACY,
        "handle": "ab" * 16,
        "version": 1,
        "as_of": datetime(2026, 1, 1, tzinfo=UTC),
        "recipient_public_key": _PATIENT_PUBLIC,
    }
    for change in ({"handle": "AB" * 16}, {"version": 0}, {"recipient_public_key": b"short"}):
        with pytest.raises((ValueError, fmt.MalformedObject)):
            fmt.seal_block(b"{}", **{**base, **change})  # type: ignore[arg-type]
    with pytest.raises(fmt.DocumentTooLarge):
        fmt.seal_block(b"\x00" * (64 * 1024 * 1024 + 1), **base)  # type: ignore[arg-type]


def test_sealing_a_compressed_document_is_sealing_the_document() -> None:
    """compress_document + seal_compressed (the compression on another thread) gives what
    seal_block gives: the same header, plaintext and padding, a fresh ephemeral key."""
    private, public = fmt.generate_patient_keypair()
    args = {
        "pharmacy_key": _PHARMACY,
        "handle": "cd" * 16,
        "version": 3,
        "as_of": datetime(2026, 1, 1, tzinfo=UTC),
        "recipient_public_key": public,
    }
    document = b'{"rows":[' + b'{"sig":"TAKE 1 TABLET DAILY"},' * 400 + b"{}]}"
    split = fmt.seal_compressed(fmt.compress_document(document), **args)  # type: ignore[arg-type]
    whole = fmt.seal_block(document, **args)  # type: ignore[arg-type]
    assert len(split) == len(whole)
    header_end = 6 + int.from_bytes(split[4:6], "big")
    assert split[:header_end] == whole[:header_end]
    assert split[header_end : header_end + 32] != whole[header_end : header_end + 32]
    opened = fmt.open_block(
        split,
        recipient_private_key=private,
        pharmacy_public_key=_PHARMACY.public_bytes(),
        expected_handle="cd" * 16,
    )
    assert opened.document == document
