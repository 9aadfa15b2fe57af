"""Blocks: seal, verify and open, and every way opening must refuse."""

from __future__ import annotations

from datetime import datetime

import pytest

from rxvault import format as fmt


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
