"""Randomness enters only through ``_primitives.random_bytes``: with it fixed, every public
function equals its deterministic ``*_from_parts`` counterpart (which the vectors use)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import pytest

from rxvault import format as fmt
from rxvault.format import _batch, _bundle, _enrollment, _envelope, _handle, _kdf, _keys

FIXED = bytes(range(64))


@pytest.fixture
def fixed_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    def fixed(n: int) -> bytes:
        return FIXED[:n]

    for module in (_batch, _bundle, _enrollment, _envelope, _handle, _kdf, _keys):
        monkeypatch.setattr(module, "random_bytes", fixed)


@pytest.mark.usefixtures("fixed_randomness")
def test_public_functions_are_their_deterministic_layer_plus_random_bytes() -> None:
    pharmacy = fmt.PharmacyKey.from_private_bytes(b"\x05" * 32)
    patient_public = fmt.patient_public_key(b"\x06" * 32)
    when = datetime(2026, 12, 4, tzinfo=UTC)
    block_args = {
        "pharmacy_key": pharmacy,
        "handle": "ab" * 16,
        "version": 2,
        "as_of": when,
        "recipient_public_key": patient_public,
    }
    assert (
        fmt.seal_block(b"{}", **block_args)
        == fmt.seal_block_from_parts(  # type: ignore[arg-type]
            zlib.compress(b"{}", 1), ephemeral_private_key=FIXED[:32], **block_args
        )
    )
    bundle_args = {
        "unlock_key": b"\x01" * 32,
        "server_share": b"\x02" * 32,
        "account": "jane",
        "patient_private_key": b"\x06" * 32,
        "pharmacy_public_key": pharmacy.public_bytes(),
    }
    assert (
        fmt.wrap_key_bundle(**bundle_args)
        == fmt.wrap_key_bundle_from_parts(  # type: ignore[arg-type]
            nonce=FIXED[:12], **bundle_args
        )
    )
    assert fmt.new_enrollment_code() == fmt.enrollment_code_from_secret(FIXED[:16])
    assert fmt.new_salt() == FIXED[:16]
    assert fmt.generate_handle_secret() == FIXED[:32]
    assert fmt.generate_pharmacy_key().private_bytes() == FIXED[:32]
    assert fmt.generate_patient_keypair() == (FIXED[:32], fmt.patient_public_key(FIXED[:32]))
    assert len(fmt.new_batch_id()) == 22


def test_real_randomness_differs_between_calls() -> None:
    assert fmt.generate_handle_secret() != fmt.generate_handle_secret()
    assert fmt.new_enrollment_code() != fmt.new_enrollment_code()
