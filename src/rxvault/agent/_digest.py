"""Vectorized 64-bit hashes of Arrow columns and rows, for change detection.

Every column is hashed in a few numpy passes (strings through their dictionary of distinct
values, each hashed 8 bytes at a time); a row's hash mixes its columns' hashes in the mapping's
order; a patient's digest sums the mixed hashes of their rows, so it does not depend on the
order of records (a PACK changes nothing) and sees every byte of every published value,
memo contents included. Seeds come from the mapping's digest, so another mapping gives other
digests (and a re-upload). A change goes unnoticed with probability about 2**-64.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["U64", "hash_column", "mix", "seed_of"]

U64 = npt.NDArray[np.uint64]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_NULL = 0x6E756C6C6E756C6C  # "nullnull"


_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix(x: U64) -> U64:
    """SplitMix64's finalizer, elementwise (wrapping arithmetic); returns a new array."""
    x = x ^ (x >> _S30)
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


_BYTE_MASKS = np.array(
    [(1 << (8 * k)) - 1 for k in range(8)] + [0xFFFFFFFFFFFFFFFF], dtype=np.uint64
)


def hash_strings(values: pa.Array, seed: int) -> U64:
    """One hash per string or binary value (no nulls), vectorized: 8 bytes at a time.

    Each value is read as little-endian 64-bit words (an unaligned strided view of the data
    buffer, bytes past the value's end masked to zero); the words are mixed in order, starting
    from the value's length, so values of different lengths never collide by padding.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    t = values.type
    large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    stored = np.frombuffer(values.buffers()[1], dtype=np.int64 if large else np.int32)
    offsets: npt.NDArray[np.int64] = stored[values.offset : values.offset + n + 1].astype(np.int64)
    raw = values.buffers()[2]
    data = np.frombuffer(raw, dtype=np.uint8) if raw is not None else np.zeros(0, np.uint8)
    padded = np.zeros(len(data) + 8, dtype=np.uint8)
    padded[: len(data)] = data
    words = np.ndarray(shape=(len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    h = mix(lengths.astype(np.uint64) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
    longest = int(lengths.max())
    for position in range(0, longest, 8):
        keep = np.clip(lengths - position, 0, 8)
        word = words[np.minimum(starts + position, len(padded) - 8)] & _BYTE_MASKS[keep]
        # only the values that still have bytes here take another round: a value's hash must
        # not depend on the length of the longest value beside it
        h = np.where(keep > 0, mix(h ^ word), h)
    return h


def seed_of(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _const(value: int, n: int) -> U64:
    return np.full(n, value & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)


def _with_nulls(hashes: U64, array: pa.Array, seed: int) -> U64:
    if array.null_count:
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        null_hash = mix(_const(seed ^ _NULL, 1))[0]
        hashes = np.where(valid, hashes, null_hash)
    return hashes


def _int_values(array: pa.Array) -> npt.NDArray[np.int64]:
    filled = pc.fill_null(array, 0) if array.null_count else array
    return np.asarray(filled.to_numpy(zero_copy_only=False)).astype(np.int64, copy=False)


def hash_column(column: pa.Array | pa.ChunkedArray, seed: int) -> U64:
    """One 64-bit hash per value; equal values (and nulls) hash alike under one seed."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    t = array.type
    s = _const(seed, n)
    if pa.types.is_dictionary(t):
        array = array.cast(t.value_type)
        t = array.type
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        encoded = pc.dictionary_encode(array)
        table = hash_strings(encoded.dictionary, seed)
        indices = encoded.indices
        idx = np.asarray(pc.fill_null(indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        hashes = table[idx] if len(table) else _const(0, n)
        return _with_nulls(hashes, array, seed)
    if pa.types.is_boolean(t):
        values = _int_values(array.cast(pa.int8()))
    elif pa.types.is_date32(t) or pa.types.is_time32(t):
        values = _int_values(array.view(pa.int32()))
    elif pa.types.is_date64(t) or pa.types.is_timestamp(t) or pa.types.is_time64(t):
        values = _int_values(array.view(pa.int64()))
    elif pa.types.is_integer(t):
        values = _int_values(array.cast(pa.int64()))
    elif pa.types.is_floating(t):
        floats = np.asarray(
            pc.fill_null(array.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        )
        values = floats.view(np.int64)
    elif pa.types.is_decimal(t):
        words = np.frombuffer(array.buffers()[1], dtype=np.uint64)
        words = words[2 * array.offset : 2 * (array.offset + n)].reshape(n, 2)
        lo = mix(words[:, 0] ^ s)
        return _with_nulls(mix(lo ^ words[:, 1]), array, seed)
    else:
        return hash_column(array.cast(pa.string()), seed)
    return _with_nulls(mix(values.view(np.uint64) ^ s), array, seed)


def combine(hashes: list[U64], seed: int, n: int) -> U64:
    """Mix column hashes into one hash per row (order of ``hashes`` matters)."""
    h = mix(_const(seed, n))
    for column in hashes:
        h = mix(h ^ column)
    return h
