"""Encoding of fixed-width scalars: D (date), T (datetime), L (logical), I (integer), B (double).

Python values are checked row by row; Arrow columns of the matching type are converted whole.
Dates become ``YYYYMMDD`` digits, datetimes a Julian day and milliseconds since midnight (both
little-endian int32), integers a little-endian int32, doubles a little-endian float64.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
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

__all__ = ["encode_date", "encode_datetime", "encode_double", "encode_integer", "encode_logical"]

_JULIAN_EPOCH = 2440588  # Julian day number of 1970-01-01
_MS_PER_DAY = 86_400_000


def _digits(out: U8, col0: int, values: I64, width: int) -> None:
    for k in range(width):
        out[:, col0 + width - 1 - k] = 48 + (values // np.int64(10**k)) % 10


def _dates(col: Column, values: Any, n: int, ctx: Context) -> tuple[I64, Mask]:
    if is_arrow(values):
        arr = arrow_array(values)
        if pa.types.is_timestamp(arr.type) or pa.types.is_date64(arr.type):
            raise ctx.fail(0, col, f"a date field takes dates, not {arr.type}")
        if not pa.types.is_date32(arr.type):
            raise ctx.fail(0, col, f"expected dates, got an Arrow column of {arr.type}")
        null = arrow_nulls(arr)
        days = np.asarray(
            arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64
        )
        return days, null
    days = np.zeros(n, dtype=np.int64)
    null = np.zeros(n, dtype=bool)
    epoch = dt.date(1970, 1, 1).toordinal()
    for row, value in enumerate(values):
        if value is None:
            null[row] = True
        elif isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise ctx.fail(row, col, f"expected a date, got {type(value).__name__}")
        else:
            days[row] = value.toordinal() - epoch
    return days, null


def encode_date(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """D: ``YYYYMMDD`` in ASCII digits; None is blank."""
    days, null = _dates(col, values, n, ctx)
    d64 = days.astype("datetime64[D]")
    years = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    months = d64.astype("datetime64[M]").astype(np.int64) % 12 + 1
    mday = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    out = np.empty((len(days), 8), dtype=np.uint8)
    _digits(out, 0, years, 4)
    _digits(out, 4, months, 2)
    _digits(out, 6, mday, 2)
    out[null] = 0x20
    return Encoded(out, null if col.spec.nullable else None)


def _datetimes(col: Column, values: Any, n: int, ctx: Context) -> tuple[I64, Mask]:
    if is_arrow(values):
        arr = arrow_array(values)
        if pa.types.is_date32(arr.type):
            arr = arr.cast(pa.timestamp("ms"))
        if not pa.types.is_timestamp(arr.type):
            raise ctx.fail(0, col, f"expected datetimes, got an Arrow column of {arr.type}")
        if arr.type.tz is not None:
            raise ctx.fail(0, col, "datetimes must be naive (a DBF stores local time)")
        null = arrow_nulls(arr)
        ms = arr.cast(pa.timestamp("ms"), safe=False).cast(pa.int64()).fill_null(0)
        return np.asarray(ms.to_numpy(zero_copy_only=False), dtype=np.int64), null
    out = np.zeros(n, dtype=np.int64)
    null = np.zeros(n, dtype=bool)
    epoch = dt.datetime(1970, 1, 1)
    for row, value in enumerate(values):
        if value is None:
            null[row] = True
            continue
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                raise ctx.fail(row, col, "datetimes must be naive (a DBF stores local time)")
            delta = value - epoch
        elif isinstance(value, dt.date):
            delta = dt.datetime(value.year, value.month, value.day) - epoch
        else:
            raise ctx.fail(row, col, f"expected a datetime, got {type(value).__name__}")
        out[row] = delta.days * _MS_PER_DAY + delta.seconds * 1000 + delta.microseconds // 1000
    return out, null


def encode_datetime(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """T: Julian day and milliseconds since midnight, two little-endian int32; None is zeros."""
    ms, null = _datetimes(col, values, n, ctx)
    days = ms // _MS_PER_DAY
    julian = (days + _JULIAN_EPOCH).astype("<i4")
    msday = (ms - days * _MS_PER_DAY).astype("<i4")
    out = np.empty((len(ms), 8), dtype=np.uint8)
    out[:, 0:4] = julian.view(np.uint8).reshape(len(ms), 4)
    out[:, 4:8] = msday.view(np.uint8).reshape(len(ms), 4)
    out[null] = 0
    return Encoded(out, null if col.spec.nullable else None)


def encode_logical(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """L: ``T`` or ``F``; None is blank."""
    if is_arrow(values):
        arr = arrow_array(values)
        if not pa.types.is_boolean(arr.type):
            raise ctx.fail(0, col, f"expected booleans, got an Arrow column of {arr.type}")
        null = arrow_nulls(arr)
        truth = np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    else:
        null = np.zeros(n, dtype=bool)
        truth = np.zeros(n, dtype=bool)
        for row, value in enumerate(values):
            if value is None:
                null[row] = True
            elif isinstance(value, (bool, np.bool_)):
                truth[row] = bool(value)
            else:
                raise ctx.fail(row, col, f"expected True, False or None, got {value!r}")
    out = np.where(truth, ord("T"), ord("F")).astype(np.uint8)
    out[null] = 0x20
    return Encoded(out.reshape(n, 1), null if col.spec.nullable else None)


def encode_integer(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """I: a little-endian int32."""
    lo, hi = -(2**31), 2**31 - 1
    if is_arrow(values):
        arr = arrow_array(values)
        if not pa.types.is_integer(arr.type):
            raise ctx.fail(0, col, f"expected integers, got an Arrow column of {arr.type}")
        null = arrow_nulls(arr)
        ints = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False))
        if ints.dtype == np.uint64 and (ints > hi).any():
            bad = int(np.argmax(ints > hi))
            raise ctx.fail(bad, col, f"{ints[bad]} is out of range {lo}..{hi}")
        ints = ints.astype(np.int64)
    else:
        ints = np.zeros(n, dtype=np.int64)
        null = np.zeros(n, dtype=bool)
        for row, value in enumerate(values):
            if value is None:
                null[row] = True
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                if not lo <= value <= hi:
                    raise ctx.fail(row, col, f"{value} is out of range {lo}..{hi}")
                ints[row] = value
            else:
                raise ctx.fail(row, col, f"expected an integer, got {value!r}")
    bad_rows = np.nonzero((ints < lo) | (ints > hi))[0]
    if bad_rows.size:
        row = int(bad_rows[0])
        raise ctx.fail(row, col, f"{ints[row]} is out of range {lo}..{hi}")
    null_mask = check_nulls(col, null, ctx, blank_ok=False)
    return Encoded(ints.astype("<i4").view(np.uint8).reshape(n, 4), null_mask)


def encode_double(col: Column, values: Any, n: int, ctx: Context) -> Encoded:
    """B: a little-endian float64."""
    floats: npt.NDArray[Any]
    if is_arrow(values):
        arr = arrow_array(values)
        if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
            raise ctx.fail(0, col, f"expected numbers, got an Arrow column of {arr.type}")
        null = arrow_nulls(arr)
        floats = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        floats = np.zeros(n, dtype=np.float64)
        null = np.zeros(n, dtype=bool)
        for row, value in enumerate(values):
            if value is None:
                null[row] = True
            elif isinstance(value, (int, float, Decimal, np.number)) and not isinstance(
                value, bool
            ):
                floats[row] = float(value)
            else:
                raise ctx.fail(row, col, f"expected a number, got {value!r}")
    checked = check_nulls(col, null, ctx, blank_ok=False)
    null = checked if checked is not None else np.zeros(n, dtype=bool)
    return Encoded(floats.astype("<f8").view(np.uint8).reshape(n, 8), null)
