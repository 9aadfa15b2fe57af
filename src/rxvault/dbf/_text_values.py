"""Encoding of text and bytes: C, V and Q fields, and the values of M, G and W memo fields.

Each distinct value is encoded once (Arrow dictionary columns keep their dictionary), then the
rows index into a table of padded fixed-width byte strings. A V or Q value shorter than the
field stores its length in the last byte and sets its "short" bit in ``_NullFlags``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rxvault.dbf._field_spec import VAR_TYPES, Column, DbfWriteError
from rxvault.dbf._values import (
    I64,
    Context,
    Encoded,
    arrow_array,
    as_list,
    check_nulls,
    is_arrow,
)

__all__ = ["encode_text", "memo_values"]


def _to_bytes(col: Column, value: object, ctx: Context, row: int) -> bytes:
    if isinstance(value, str):
        if col.spec.type == "Q":
            raise ctx.fail(row, col, "varbinary takes bytes, not str")
        try:
            return value.encode(ctx.codepage)
        except UnicodeEncodeError as exc:
            bad = value[exc.start : exc.end]
            raise ctx.fail(row, col, f"{bad!r} cannot be encoded in {ctx.codepage}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        # Bytes for a text field are taken as already encoded in the table's code page.
        return bytes(value)
    raise ctx.fail(row, col, f"expected str or bytes, got {type(value).__name__}")


def _dictionary(col: Column, values: Any, n: int, ctx: Context) -> tuple[list[bytes], I64]:
    """Distinct encoded values and, per row, an index into them (-1 for None)."""
    if is_arrow(values):
        arr = arrow_array(values)
        enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
        uniques = enc.dictionary.to_pylist()
        idx = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        encoded: list[bytes] = []
        for k, value in enumerate(uniques):
            try:
                encoded.append(_to_bytes(col, value, ctx, 0))
            except DbfWriteError:
                row = int(np.argmax(idx == k))
                _to_bytes(col, value, ctx, row)  # raises again, naming the first row
                raise
        return encoded, idx
    table: dict[tuple[type, object], int] = {}
    encoded_list: list[bytes] = []
    idx = np.empty(n, dtype=np.int64)
    for row, value in enumerate(values):
        if value is None:
            idx[row] = -1
            continue
        plain = value if isinstance(value, (str, bytes)) else _to_bytes(col, value, ctx, row)
        key = (type(plain), plain)
        found = table.get(key)
        if found is None:
            found = len(encoded_list)
            table[key] = found
            encoded_list.append(_to_bytes(col, plain, ctx, row))
        idx[row] = found
    return encoded_list, idx


def encode_text(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """C (space-padded), V and Q (zero-padded, length in the last byte when short)."""
    uniques, idx = _dictionary(col, values, n, ctx)
    t = col.spec.type
    length = col.length
    lens = np.array([len(u) for u in uniques], dtype=np.int64)
    too_long = np.nonzero(lens > length)[0]
    if too_long.size:
        k = int(too_long[0])
        row = int(np.argmax(idx == k))
        raise ctx.fail(row, col, f"{len(uniques[k])} bytes do not fit a length of {length}")
    pad = 0x20 if t == "C" else 0x00
    table = np.full((len(uniques) + 1, length), pad, dtype=np.uint8)
    if uniques:
        raw = np.array(uniques, dtype=f"S{length}").view(np.uint8).reshape(len(uniques), length)
        keep = np.arange(length)[None, :] < lens[:, None]
        table[:-1] = np.where(keep, raw, pad)
    short_u = np.zeros(len(uniques) + 1, dtype=bool)
    if t in VAR_TYPES:
        short_u[:-1] = lens < length
        rows_short = np.nonzero(short_u[:-1])[0]
        table[rows_short, length - 1] = lens[rows_short].astype(np.uint8)
        table[-1] = 0
    data = table[idx]  # idx -1 -> the blank last row
    null = check_nulls(col, idx < 0, ctx, blank_ok=t == "C")
    short = short_u[idx] if t in VAR_TYPES else None
    if short is not None and null is not None:
        short = short & ~null
    return Encoded(data, null, short)


def memo_values(col: Column, values: Any, n: int, ctx: Context) -> list[bytes | None]:
    """The bytes each row stores in the memo file (None: no memo)."""
    if is_arrow(values) and pa.types.is_dictionary(values.type):
        # Encode each distinct value once (a column of repeated texts, such as sigs).
        uniques, idx = _dictionary(col, values, n, ctx)
        table: list[bytes | None] = [*uniques, None]
        return [table[k] for k in idx.tolist()]
    out: list[bytes | None] = []
    for row, value in enumerate(as_list(values)):
        if value is None:
            out.append(None)
            continue
        if col.spec.type in "GW" and isinstance(value, str):
            raise ctx.fail(row, col, f"a {col.spec.type} field takes bytes, not str")
        out.append(_to_bytes(col, value, ctx, row))
    return out
