"""Decoders given arbitrary bytes raise a FormatError, never anything else (no IndexError,
UnicodeDecodeError, ValueError or RecursionError escapes to the caller)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault import format as fmt

PHARMACY_PUBLIC = fmt.PharmacyKey.from_private_bytes(bytes(range(32))).public_bytes()
MAGICS = [b"RXB\x01", b"RXT\x01", b"RXU\x01", b"RXK\x01", b"RXS\x01", b"RXB\x02", b""]
HEADERISH = st.builds(
    lambda magic, header, rest: magic + len(header).to_bytes(2, "big") + header + rest,
    st.sampled_from(MAGICS),
    st.binary(max_size=300)
    | st.sampled_from(
        [
            b"{}",
            b'{"as_of":"2026-01-01T00:00:00Z","handle":"' + b"a" * 32 + b'"}',
            b'{"batch_id":"x","block_count":9999,"created_at":0,"pharmacy_id":"","tombstone_count":1}',
            b"[" * 200 + b"]" * 200,
            b'{"as_of":"2026-01-01T00:00:00Z","pharmacy_id":"","root":"","seq":1,"size":0}',
            b'{"a":1e999}',
            b'{"v":' + b"9" * 5000 + b"}",
        ]
    ),
    st.binary(max_size=200),
)
INPUTS = st.binary(max_size=400) | HEADERISH


def _refuses(func: Callable[[bytes], object], data: bytes, result_type: type) -> None:
    """``func(data)`` either raises a FormatError or returns a ``result_type``."""
    try:
        result = func(data)
    except fmt.FormatError:
        return
    assert isinstance(result, result_type)


@settings(max_examples=300, deadline=None)
@given(INPUTS)
def test_public_decoders_raise_only_format_errors(data: bytes) -> None:
    _refuses(lambda d: fmt.verify_block(d, PHARMACY_PUBLIC), data, fmt.BlockHeader)
    _refuses(
        lambda d: fmt.open_block(
            d,
            recipient_private_key=b"\x01" * 32,
            pharmacy_public_key=PHARMACY_PUBLIC,
            expected_handle="a" * 32,
        ),
        data,
        fmt.OpenedBlock,
    )
    _refuses(lambda d: fmt.verify_tombstone(d, PHARMACY_PUBLIC), data, fmt.TombstoneHeader)
    _refuses(lambda d: fmt.verify_batch(d, PHARMACY_PUBLIC), data, fmt.Batch)
    _refuses(lambda d: fmt.verify_statement(d, PHARMACY_PUBLIC), data, fmt.Statement)
    _refuses(
        lambda d: fmt.unwrap_key_bundle(
            d, unlock_key=b"\x01" * 32, server_share=b"\x02" * 32, account="a"
        ),
        data,
        fmt.KeyBundle,
    )
    _refuses(fmt.parse_canonical_json, data, object)
    _refuses(fmt.parse_json, data, object)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_code_parser_raises_only_invalid_enrollment_code(text: str) -> None:
    try:
        code = fmt.parse_enrollment_code(text)
    except fmt.InvalidEnrollmentCode:
        return
    assert fmt.parse_enrollment_code(code.text) == code


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["alg", "m", "t", "p", "v"]), st.integers() | st.text()))
def test_kdf_parameter_parser_raises_only_format_errors(value: dict[str, Any]) -> None:
    try:
        params = fmt.KdfParams.from_dict(value)
    except fmt.FormatError:
        return
    assert params.to_dict() == value
