"""Encoding of decimal numbers: N and F fields (right-aligned ASCII) and Y (currency).

Every value is first scaled exactly to an integer of ``value * 10**decimals`` (Python ints and
Decimals exactly, floats through their shortest repr, Arrow columns vectorized), then N and F
values are formatted as ASCII digits with numpy. Values of 19 or more digits take an exact
per-row path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa

from rxvault.dbf._field_spec import Column
from rxvault.dbf._values import (
    I64,
    U8,
    Context,
    Encoded,
    Mask,
    arrow_array,
    arrow_nulls,
    check_nulls,
    is_arrow,
)

__all__ = ["encode_currency", "encode_numeric"]


def _decimal_unscaled(value: object, decimals: int) -> int | None:
    """The value times 10**decimals as an exact int, or None when it has more decimals."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * int(10**decimals)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals))
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        try:
            scaled = value.scaleb(decimals)
            if scaled != scaled.to_integral_value():
                return None
            return int(scaled)
        except InvalidOperation:
            return None
    return None


def _scaled_python(
    col: Column, values: Sequence[object], n: int, ctx: Context, decimals: int
) -> tuple[list[int], Mask]:
    out: list[int] = [0] * n
    null = np.zeros(n, dtype=bool)
    for row, value in enumerate(values):
        if value is None:
            null[row] = True
            continue
        scaled = _decimal_unscaled(value, decimals)
        if scaled is None:
            if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
                raise ctx.fail(row, col, f"{value!r} has more than {decimals} decimals")
            raise ctx.fail(row, col, f"expected a number, got {type(value).__name__}")
        out[row] = scaled
    return out, null


def _arrow_scaled(col: Column, arr: pa.Array, ctx: Context, decimals: int) -> I64:
    """Arrow ints/decimals/floats -> int64 of value * 10**decimals (nulls -> 0)."""
    n = len(arr)
    typ = arr.type
    if pa.types.is_integer(typ):
        ints = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        limit = np.int64(2**63 // 10**decimals - 1)
        bad = np.nonzero(np.abs(ints) > limit)[0]
        if bad.size:
            raise ctx.fail(int(bad[0]), col, f"{ints[bad[0]]} is too large")
        return ints * np.int64(10**decimals)
    if pa.types.is_floating(typ):
        floats = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
        if not np.isfinite(floats).all():
            raise ctx.fail(int(np.argmax(~np.isfinite(floats))), col, "not a finite number")
        scaled = np.round(floats * 10.0**decimals)
        if (np.abs(scaled) >= 2.0**62).any():
            raise ctx.fail(int(np.argmax(np.abs(scaled) >= 2.0**62)), col, "too large")
        return scaled.astype(np.int64)
    if pa.types.is_decimal(typ):
        try:
            arr = arr.cast(pa.decimal128(38, decimals))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ctx.fail(0, col, f"values have more than {decimals} decimals") from None
        arr = arr.fill_null(pa.scalar(Decimal(0), pa.decimal128(38, decimals)))
        buf = arr.buffers()[1]
        words = np.frombuffer(buf, dtype="<i8")[arr.offset * 2 : (arr.offset + n) * 2]
        low, high = words[0::2], words[1::2]
        bad = np.nonzero(high != (low >> 63))[0]
        if bad.size:
            raise ctx.fail(int(bad[0]), col, "value too large")
        return low.astype(np.int64)
    raise ctx.fail(0, col, f"expected numbers, got an Arrow column of {typ}")


def encode_currency(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """Y: a little-endian int64 of the value times 10**4."""
    if is_arrow(values):
        arr = arrow_array(values)
        null = arrow_nulls(arr)
        scaled = _arrow_scaled(col, arr, ctx, 4)
    else:
        ints, null = _scaled_python(col, values, n, ctx, 4)
        for row, v in enumerate(ints):
            if not -(2**63) <= v < 2**63:
                raise ctx.fail(row, col, "value too large for a currency field")
        scaled = np.array(ints, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
    checked = check_nulls(col, null, ctx, blank_ok=False)
    null = null if checked is not None else np.zeros(n, dtype=bool)
    return Encoded(scaled.astype("<i8").view(np.uint8).reshape(n, 8), null)


def _format_fixed(unscaled: I64, width: int, decimals: int) -> tuple[U8, Mask]:
    """Right-aligned ASCII numbers ("  -12.30"), vectorized; also which rows overflow."""
    n = len(unscaled)
    out = np.full((n, width), 0x20, dtype=np.uint8)
    neg = unscaled < 0
    mag = np.abs(unscaled)
    p = np.int64(10**decimals)
    ip = mag // p
    fp = mag % p
    nd = np.ones(n, dtype=np.int64)
    for k in range(1, 19):
        nd += ip >= np.int64(10**k)
    total = nd + (decimals + 1 if decimals else 0) + neg
    overflow = total > width
    for k in range(decimals):
        out[:, width - 1 - k] = 48 + (fp // np.int64(10**k)) % 10
    if decimals:
        out[:, width - 1 - decimals] = ord(".")
    base = width - 1 - (decimals + 1 if decimals else 0)
    for k in range(base + 1):
        rows = k < nd
        if not rows.any():
            break
        out[rows, base - k] = 48 + (ip[rows] // np.int64(10**k)) % 10
    sign_col = base - nd
    sign_rows = np.nonzero(neg & ~overflow)[0]
    out[sign_rows, sign_col[sign_rows]] = ord("-")
    return out, overflow


def encode_numeric(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """N and F: right-aligned ASCII with ``col.decimals`` decimals; None is blank."""
    width, decimals = col.length, col.decimals
    if is_arrow(values) and width > 18 and pa.types.is_decimal(values.type):
        values = arrow_array(values).to_pylist()  # may not fit int64: the exact Python path
    if is_arrow(values):
        arr = arrow_array(values)
        null = arrow_nulls(arr)
        unscaled = _arrow_scaled(col, arr, ctx, decimals)
    else:
        ints, null = _scaled_python(col, values, n, ctx, decimals)
        big = [row for row, v in enumerate(ints) if abs(v) >= 10**18]
        if big:
            return _encode_numeric_python(col, ints, null, ctx)
        unscaled = np.array(ints, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
    data, overflow = _format_fixed(unscaled, width, decimals)
    overflow &= ~null
    if overflow.any():
        row = int(np.argmax(overflow))
        value = Decimal(int(unscaled[row])).scaleb(-decimals)
        raise ctx.fail(row, col, f"{value} does not fit {col.spec.type}({width},{decimals})")
    data[null] = 0x20
    return Encoded(data, check_nulls(col, null, ctx, blank_ok=True))


def _encode_numeric_python(col: Column, ints: list[int], null: Mask, ctx: Context) -> Encoded:
    width, decimals = col.length, col.decimals
    rows = []
    for row, v in enumerate(ints):
        if null[row]:
            rows.append(b" " * width)
            continue
        text = f"{Decimal(v).scaleb(-decimals):.{decimals}f}"
        if len(text) > width:
            raise ctx.fail(row, col, f"{text} does not fit {col.spec.type}({width},{decimals})")
        rows.append(text.rjust(width).encode("ascii"))
    data = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(ints), width).copy()
    return Encoded(data, check_nulls(col, null, ctx, blank_ok=True))
