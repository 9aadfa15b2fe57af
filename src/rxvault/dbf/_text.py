"""Building Arrow string/binary arrays from concatenated bytes, with vectorized code-page decoding.

Single-byte code pages go through a 256-entry table to UTF-8 with numpy (lengths, cumulative sum,
scatter) and the Arrow array is built from the offsets and data buffers directly. Pure ASCII needs
no translation at all. Multi-byte code pages fall back to Python's codecs, value by value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from rxvault.dbf._codepages import REPLACEMENT, byte_table

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

_MAX_OFFSET = 2**31 - 1


def validity_buffer(valid: Mask | None) -> tuple[pa.Buffer | None, int]:
    """An Arrow validity bitmap for ``valid`` (None when every value is present)."""
    if valid is None or bool(valid.all()):
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), int(len(valid) - valid.sum())


def _check_size(total: int) -> None:
    if total > _MAX_OFFSET:
        raise OverflowError("more than 2 GiB of text in one batch; use a smaller batch_size")


def binary_array(data: U8, offsets: I64, valid: Mask | None) -> pa.Array:
    """An Arrow binary array from concatenated bytes and n + 1 offsets."""
    n = len(offsets) - 1
    _check_size(int(offsets[-1]))
    vbuf, nulls = validity_buffer(valid)
    return pa.Array.from_buffers(
        pa.binary(),
        n,
        [vbuf, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(data))],
        null_count=nulls,
    )


def _rows_of(positions: I64, offsets: I64) -> I64:
    return np.searchsorted(offsets, positions, side="right").astype(np.int64) - 1


def string_array(
    data: U8, offsets: I64, valid: Mask | None, codec: str | None, replace: bool
) -> tuple[pa.Array, I64]:
    """Decode to an Arrow string array; returns it and the (sorted, unique) rows not decodable.

    ``codec`` None means "no code page known": only ASCII is accepted. With ``replace`` the
    undecodable bytes become U+FFFD; the bad rows are still returned so they can be reported.
    """
    n = len(offsets) - 1
    no_rows = np.zeros(0, dtype=np.int64)
    if len(data) == 0 or int(data.max()) < 0x80:
        return _from_utf8(data, offsets, valid), no_rows
    table = byte_table(codec) if codec is not None else None
    if codec is not None and table is None:
        return _python_decode(data, offsets, valid, codec, replace)
    if table is None:  # ASCII only
        lens = np.where(data < 0x80, 1, 0).astype(np.int64)
        first = np.zeros((256, 3), dtype=np.uint8)
        first[:128, 0] = np.arange(128, dtype=np.uint8)
        utf8 = first
    else:
        lens = table.utf8_len[data]
        utf8 = table.utf8_bytes
    invalid = lens == 0
    bad_rows = no_rows
    if invalid.any():
        bad_rows = np.unique(_rows_of(np.flatnonzero(invalid), offsets))
        if not replace:
            return pa.nulls(n, pa.string()), bad_rows
        lens = np.where(invalid, 3, lens)
    out_off = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(lens, out=out_off[1:])
    total = int(out_off[-1])
    _check_size(total)
    out = np.empty(total, dtype=np.uint8)
    starts = out_off[:-1]
    for k in range(3):
        sel = lens > k
        src = utf8[data[sel], k]
        if invalid.any():
            src = np.where(invalid[sel], REPLACEMENT[k], src)
        out[starts[sel] + k] = src
    return _from_utf8(out, out_off[offsets], valid), bad_rows


def _from_utf8(data: U8, offsets: I64, valid: Mask | None) -> pa.Array:
    n = len(offsets) - 1
    _check_size(int(offsets[-1]) if n >= 0 else 0)
    vbuf, nulls = validity_buffer(valid)
    return pa.Array.from_buffers(
        pa.string(),
        n,
        [vbuf, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(data))],
        null_count=nulls,
    )


def _python_decode(
    data: U8, offsets: I64, valid: Mask | None, codec: str, replace: bool
) -> tuple[pa.Array, I64]:
    raw = data.tobytes()
    values: list[str | None] = []
    bad: list[int] = []
    for i in range(len(offsets) - 1):
        if valid is not None and not valid[i]:
            values.append(None)
            continue
        chunk = raw[offsets[i] : offsets[i + 1]]
        try:
            values.append(chunk.decode(codec))
        except UnicodeDecodeError:
            bad.append(i)
            values.append(chunk.decode(codec, errors="replace") if replace else None)
    return pa.array(values, type=pa.string()), np.array(bad, dtype=np.int64)
