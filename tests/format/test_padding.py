"""Compression and padding buckets."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault import format as fmt
from rxvault.format import _padding


@pytest.mark.parametrize(
    ("content", "bucket"),
    [(0, 8192), (1, 8192), (8192, 8192), (8193, 16384), (16384, 16384), (2**24, 2**24)],
)
def test_buckets_are_powers_of_two_with_a_floor(content: int, bucket: int) -> None:
    assert _padding.padded_length(content) == bucket


def test_largest_bucket_is_enforced() -> None:
    with pytest.raises(fmt.DocumentTooLarge):
        _padding.padded_length(2**24 + 1)


@settings(max_examples=100)
@given(st.binary(max_size=40_000))
def test_pad_unpad_round_trip(compressed: bytes) -> None:
    padded = _padding.pad(compressed)
    assert _padding.is_valid_padded_length(len(padded))
    assert len(padded) >= 4 + len(compressed)
    assert len(padded) == 8192 or len(padded) < 2 * (4 + len(compressed))
    assert _padding.unpad(padded) == compressed


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\x00\x00\x00",
        (9000).to_bytes(4, "big") + bytes(8188),
        (1).to_bytes(4, "big") + b"x" + b"\x00" * 100 + b"\x01",
    ],
)
def test_bad_padding_is_decryption_failed(plaintext: bytes) -> None:
    with pytest.raises(fmt.DecryptionFailed):
        _padding.unpad(plaintext)


def test_decompression_refuses_trailing_data_truncation_and_bombs() -> None:
    stream = zlib.compress(b"hello", 9)
    assert _padding.decompress(stream) == b"hello"
    for bad in (stream + b"\x00", stream[:-1], b"", b"\x78\x9c\xff", zlib.compress(b"")[:2]):
        with pytest.raises(fmt.DecryptionFailed):
            _padding.decompress(bad)
    bomb = zlib.compress(bytes(_padding.MAX_DOCUMENT_LENGTH + 1), 1)
    assert len(bomb) < 400_000  # a few hundred KB that inflate to over 64 MiB
    with pytest.raises(fmt.DecryptionFailed):
        _padding.decompress(bomb)


def test_typical_patients_share_the_floor_bucket() -> None:
    """The property the padding exists for: 10 and 400 fills look the same."""
    fill = {"drug": "Atorvastatin", "strength": "20 mg", "date": "2026-01-01", "qty": "30"}
    sizes = set()
    for fills in (10, 100, 400):
        doc = fmt.canonical_json(
            {"fills": [{**fill, "n": i, "date": f"2025-{i % 12 + 1:02d}-01"} for i in range(fills)]}
        )
        sizes.add(len(_padding.pad(_padding.compress(doc))))
    assert sizes == {8192}


def test_compress_uses_level_1_when_the_floor_bucket_holds_it() -> None:
    doc = fmt.canonical_json({"fills": [{"n": i, "drug": "Atorvastatin"} for i in range(300)]})
    assert _padding.compress(doc) == zlib.compress(doc, 1)
    assert len(_padding.pad(_padding.compress(doc))) == _padding.PADDING_FLOOR


def test_compress_is_never_in_a_larger_bucket_than_level_9() -> None:
    # above the floor, level 9 is tried too and the shorter stream kept
    doc = fmt.canonical_json(
        {"fills": [{"n": i, "drug": f"Drug {i * 7919 % 10007}"} for i in range(4000)]}
    )
    stream = _padding.compress(doc)
    assert len(stream) + 4 > _padding.PADDING_FLOOR
    assert len(stream) == min(len(zlib.compress(doc, 1)), len(zlib.compress(doc, 9)))
    assert len(stream) < len(zlib.compress(doc, 1))
    assert _padding.decompress(stream) == doc
