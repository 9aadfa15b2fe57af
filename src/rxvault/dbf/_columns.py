"""Decoding one field of a batch of records into an Arrow array, as numpy vector operations.

A batch is a contiguous ``(n, record_length)`` uint8 array; a field is the slice
``[:, offset:offset + length]``. Nothing here makes a Python object per value except the rare
fallbacks named in the code (odd numeric spellings, multi-byte code pages, dBase III memos).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from rxvault.dbf._errors import (
    BadValueError,
    DbfError,
    DecodeError,
    MissingMemoError,
    Reporter,
)
from rxvault.dbf._header import Field
from rxvault.dbf._memo import MemoBudget, MemoFile
from rxvault.dbf._text import binary_array, string_array, validity_buffer

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

JULIAN_UNIX_EPOCH = 2440588  # Julian day number of 1970-01-01
JULIAN_MIN, JULIAN_MAX = 1721426, 5373484  # 0001-01-01 and 9999-12-31, the range of datetime
UNIX_MS_MIN, UNIX_MS_MAX = -62_135_596_800_000, 253_402_300_799_999
MS_PER_DAY = 86_400_000
DBASE7_UNIX_EPOCH_MS = 62_135_683_200_000  # dBase 7 @: ms since 0001-01-01 minus one day
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)

# L: 0 false, 1 true, 2 null, 3 invalid
_LOGICAL = np.full(256, 3, dtype=np.uint8)
for _c in b"TtYy1":
    _LOGICAL[_c] = 1
for _c in b"FfNn0":
    _LOGICAL[_c] = 0
for _c in b"? \x00":
    _LOGICAL[_c] = 2


@dataclass
class Batch:
    """The records of one batch and what is needed to decode them."""

    path: Path
    rec: U8  # (n, record_length), contiguous
    recnos: I64  # 1-based physical record numbers
    reporter: Reporter
    codec: str | None
    replace: bool
    memo: MemoFile | None
    memo_missing: bool
    nullflags: Field | None
    memo_budget: MemoBudget | None = None

    @property
    def n(self) -> int:
        return int(self.rec.shape[0])

    def raw(self, f: Field) -> U8:
        """The field's bytes of every record, as a contiguous (n, width) copy: the decoders
        make several passes over them, and a pass over a strided view of the records loads a
        cache line per record for a few bytes (about 2.5x slower for a numeric field). The
        copy moves each record's field as one item of ``width`` bytes (a void dtype), several
        times faster than numpy's byte-by-byte copy of a narrow 2-d slice."""
        view = self.rec[:, f.offset : f.offset + f.length]
        n, width = view.shape
        if width == 0 or n == 0:
            return np.ascontiguousarray(view)
        items = view.view(np.dtype((np.void, width))).copy()
        return items.view(np.uint8).reshape(n, width)

    def bit(self, bit: int) -> Mask:
        assert self.nullflags is not None
        at = self.nullflags.offset + bit // 8
        if at >= self.rec.shape[1]:  # lenient mode, a record shorter than its fields
            return np.zeros(self.rec.shape[0], dtype=bool)
        byte = self.rec[:, at]
        return ((byte >> (bit % 8)) & 1).astype(bool)

    def null_mask(self, f: Field) -> Mask | None:
        """True where ``_NullFlags`` says the value is NULL."""
        if f.null_bit is None or self.nullflags is None:
            return None
        if f.null_bit // 8 >= self.nullflags.length:
            return None
        return self.bit(f.null_bit)

    def fail(
        self,
        rows: npt.NDArray[np.intp] | I64,
        f: Field,
        make: type[DbfError],
        message: Callable[[int], str],
    ) -> None:
        """Report the problem at each of ``rows`` (batch positions): raise or record."""
        for i in rows:
            self.reporter.error(
                make(self.path, message(int(i)), record=int(self.recnos[i]), field=f.name)
            )


def _combine(valid: Mask, null: Mask | None) -> Mask:
    return valid if null is None else valid & ~null


def _blank(raw: U8) -> Mask:
    blank: Mask = (raw == 0x20) | (raw == 0)
    return blank


def _view(batch: Batch, f: Field, dtype: str, at: int = 0) -> npt.NDArray[Any]:
    """A zero-copy strided view of a binary field (one value per record)."""
    rec = batch.rec
    if rec.shape[0] == 0 or f.offset + at + np.dtype(dtype).itemsize > rec.shape[1]:
        return np.zeros(rec.shape[0], dtype=dtype)
    return np.ndarray(
        shape=(rec.shape[0],),
        dtype=dtype,
        buffer=rec,
        offset=f.offset + at,
        strides=(rec.shape[1],),
    )


def _digits_value(raw: U8, weights: list[int]) -> I64:
    """Sum of digit * weight per row, column by column (no (n, w) int64 temporary)."""
    acc = np.zeros(raw.shape[0], dtype=np.int64)
    for col, weight in enumerate(weights):
        if weight:
            digit = raw[:, col] - np.uint8(48)
            acc += np.where(digit < 10, digit, 0).astype(np.int64) * weight
    return acc


def decode(batch: Batch, f: Field) -> pa.Array:
    """The Arrow array of field ``f`` for the records of ``batch``."""
    t = f.type
    if f.offset + f.length > batch.rec.shape[1]:
        # lenient mode, record length shorter than the fields (reported at open): no bytes
        return pa.nulls(batch.n, f.arrow_type)
    null = batch.null_mask(f)
    if f.is_memo:
        return _memo(batch, f, null)
    if t == "C":
        return _character(batch, f, null)
    if t in "VQ":
        return _varlength(batch, f, null)
    if t in "NF":
        return _numeric(batch, f, null)
    if t == "D":
        return _date(batch, f, null)
    if t == "T":
        return _datetime(batch, f, null)
    if t == "L":
        return _logical(batch, f, null)
    if t in "I+":
        return _integer(batch, f, null)
    if t == "Y":
        return _currency(batch, f, null)
    if t in "BO":
        return _double(batch, f, null)
    if t == "@":
        return _timestamp(batch, f, null)
    # unknown type (lenient mode only): raw bytes
    raw = np.ascontiguousarray(batch.raw(f))
    offsets = np.arange(batch.n + 1, dtype=np.int64) * f.length
    return binary_array(raw.reshape(-1), offsets, None if null is None else ~null)


def _text_or_binary(
    batch: Batch, f: Field, data: U8, offsets: I64, valid: Mask | None, *, binary: bool
) -> pa.Array:
    if binary:
        return binary_array(data, offsets, valid)
    arr, bad = string_array(data, offsets, valid, batch.codec, batch.replace)
    if len(bad):
        if batch.codec is None:
            why = "text has bytes above 0x7F but the table has no (known) code page mark"
        else:
            why = f"text is not valid {batch.codec}"
        if batch.replace:
            first = int(batch.recnos[bad[0]])
            batch.reporter.note(
                batch.path,
                f"field {f.name}: {why} in {len(bad)} value(s) from record {first}; "
                "undecodable bytes replaced by U+FFFD",
            )
        else:
            batch.fail(bad, f, DecodeError, lambda i: why)
            # lenient mode without replacement: the undecodable values become null
            arr, _ = string_array(data, offsets, valid, batch.codec, True)
            keep = np.ones(len(offsets) - 1, dtype=bool)
            keep[bad] = False
            arr = pc.if_else(pa.array(keep), arr, pa.nulls(len(keep), pa.string()))
    return arr


def _trimmed_lengths(field: U8) -> I64:
    """Per row, the length without trailing blanks (spaces or NULs): the largest (column + 1)
    holding a non-blank byte, as one reduction along the (contiguous) rows."""
    n, w = field.shape
    if w == 0:
        return np.zeros(n, dtype=np.int64)
    position = np.arange(1, w + 1, dtype=np.uint8 if w < 256 else np.uint16)
    nonblank = (field | np.uint8(0x20)) != 0x20  # false exactly for 0x00 and 0x20
    lengths: I64 = (nonblank * position).max(axis=1).astype(np.int64)
    return lengths


def _character(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = np.ascontiguousarray(batch.raw(f))
    n, w = raw.shape
    valid = None if null is None else ~null
    lengths = np.full(n, w, dtype=np.int64) if f.binary else _trimmed_lengths(raw)
    if null is not None:
        lengths = np.where(null, 0, lengths)
    full = bool((lengths == w).all())  # nothing to trim: the bytes as they are
    data = raw.reshape(-1) if full else raw[np.arange(w) < lengths[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return _text_or_binary(batch, f, data, offsets, valid, binary=f.binary)


def _varlength(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n, w = raw.shape
    lengths = np.full(n, w, dtype=np.int64)
    if f.varlength_bit is not None and batch.nullflags is not None and w:
        short = batch.bit(f.varlength_bit)
        stored = raw[:, w - 1].astype(np.int64)
        over = short & (stored > w - 1)
        if null is not None:
            over &= ~null
        if over.any():
            batch.fail(
                np.flatnonzero(over),
                f,
                BadValueError,
                lambda i: f"stored length {int(stored[i])} exceeds the field width {w - 1}",
            )
            null = over if null is None else null | over
        lengths = np.where(short, np.minimum(stored, w - 1), w)
    if null is not None:
        lengths = np.where(null, 0, lengths)
    keep = np.arange(w) < lengths[:, None]
    data = raw[keep]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    valid = None if null is None else ~null
    return _text_or_binary(batch, f, data, offsets, valid, binary=f.type == "Q" or f.binary)


def _numeric_fast(raw: U8, dec: int) -> tuple[I64, Mask] | None:
    """Right-aligned numbers as VFP and dBase write them (" -123.45", the point at its column):
    (scaled values, non-blank mask), or None if any row is spelled otherwise.

    Only whole-array checks: no blank follows a non-blank and the last byte is a digit or a
    blank, so a row ending in a blank is all blank; a sign follows only blanks.
    """
    n, w = raw.shape
    if w > 18 or dec >= w:
        return None
    blank = (raw == 0x20) | (raw == 0)
    digit = (raw - np.uint8(0x30)) < 10
    dot = raw == 0x2E
    sign = raw == 0x2D
    if not (blank | digit | dot | sign).all():
        return None
    if not (digit[:, -1] | blank[:, -1]).all():
        return None
    if w > 1:
        after = ~blank[:, :-1]
        if (blank[:, 1:] & after).any() or (sign[:, 1:] & after).any():
            return None
    nonblank = digit[:, -1]
    if dec:
        col = w - dec - 1
        if (~dot[:, col] & nonblank).any():
            return None
        if dot[:, :col].any() or dot[:, col + 1 :].any():
            return None
        weights = [10 ** (col - 1 - j + dec) for j in range(col)] + [0]
        weights += [10 ** (w - 1 - j) for j in range(col + 1, w)]
    else:
        if dot.any():
            return None
        weights = [10 ** (w - 1 - j) for j in range(w)]
    values = _digits_value(raw, weights)
    if sign.any():
        negative = np.zeros(n, dtype=bool)
        for j in range(w - 1):
            negative |= sign[:, j]
        values = np.where(negative, -values, values)
    return values, nonblank


def _numeric(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n, w = raw.shape
    out_type = f.arrow_type
    # a damaged header can declare more decimals than a decimal128 holds: the type's scale wins
    dec = f.decimals if pa.types.is_integer(out_type) else int(out_type.scale)
    if w == 0:
        return pa.nulls(n, out_type)
    fast = _numeric_fast(raw, dec)
    if fast is not None:
        fast_values, fast_present = fast
        if null is not None:
            fast_present &= ~null
        if pa.types.is_integer(out_type):
            return pa.array(fast_values, type=pa.int64(), mask=~fast_present)
        _fit(batch, f, raw, fast_values, fast_present, out_type=out_type)
        return _decimal_from_int64(fast_values, fast_present, out_type)
    blank = _blank(raw)
    # all blank is an empty number; all asterisks is how dBase writers store an empty (or
    # overflowing) number; both read as null
    present = ~(blank.all(axis=1) | ((raw == 42) | blank).all(axis=1))
    if null is not None:
        present &= ~null
    j = np.arange(w)
    nb = ~blank
    first = np.argmax(nb, axis=1)
    last = w - 1 - np.argmax(nb[:, ::-1], axis=1)
    inside = (j >= first[:, None]) & (j <= last[:, None])
    is_digit = (raw - np.uint8(48)) < 10
    is_dot = raw == 46
    is_sign = ((raw == 45) | (raw == 43)) & (j == first[:, None])
    odd = (inside & ~(is_digit | is_dot | is_sign)).any(axis=1)
    odd |= (is_dot & inside).sum(axis=1) > 1
    odd |= (is_digit & inside).sum(axis=1) == 0
    values = np.zeros(n, dtype=np.int64)
    exact = w <= 18 and dec <= 18
    slow = present & (odd | (not exact))
    if exact:
        acc = np.zeros(n, dtype=np.int64)
        for c in range(w):
            acc = np.where(is_digit[:, c], acc * 10 + (raw[:, c].astype(np.int64) - 48), acc)
        has_dot = is_dot.any(axis=1)
        dotpos = np.where(has_dot, np.argmax(is_dot, axis=1), w)
        frac = (is_digit & (j > dotpos[:, None])).sum(axis=1)
        diff = dec - frac
        up = np.where(diff >= 0, _POW10[np.clip(diff, 0, 18)], 1)
        down = np.where(diff < 0, _POW10[np.clip(-diff, 0, 18)], 1)
        lossy = (acc % down) != 0
        slow |= present & lossy
        acc = (acc // down) * up
        negative = (raw[np.arange(n), first] == 45) & present
        values = np.where(negative, -acc, acc)
    slow_idx = np.flatnonzero(slow)
    big: dict[int, int] = {}
    bad: list[int] = []
    for i in slow_idx:
        text = raw[i].tobytes().strip(b" \0").decode("ascii", errors="replace")
        try:
            number = Decimal(text)
        except InvalidOperation:
            bad.append(int(i))
            continue
        scaled = number.scaleb(dec)
        if not number.is_finite() or scaled != scaled.to_integral_value():
            bad.append(int(i))
            continue
        big[int(i)] = int(scaled)
    if bad:
        batch.fail(
            np.array(bad, dtype=np.int64),
            f,
            BadValueError,
            lambda i: f"{raw[i].tobytes()!r} is not a number with {dec} decimals",
        )
        present[bad] = False
    if pa.types.is_integer(out_type):
        for pos, number_value in big.items():
            values[pos] = number_value
        return pa.array(values, type=pa.int64(), mask=~present)
    if not exact or any(abs(v) >= 2**63 for v in big.values()):
        limit = 10 ** int(out_type.precision)
        pyvals: list[Decimal | None] = [None] * n
        too_big: list[int] = []
        for at in np.flatnonzero(present):
            scaled_value = big.get(int(at), int(values[at]))
            if abs(scaled_value) >= limit:
                too_big.append(int(at))
                continue
            pyvals[int(at)] = Decimal(scaled_value).scaleb(-dec)
        if too_big:
            _too_big(batch, f, raw, np.array(too_big, dtype=np.int64))
        return pa.array(pyvals, type=out_type)
    for pos, number_value in big.items():
        values[pos] = number_value
    _fit(batch, f, raw, values, present, out_type=out_type)
    return _decimal_from_int64(values, present, out_type)


def _too_big(batch: Batch, f: Field, raw: U8, rows: I64) -> None:
    batch.fail(
        rows,
        f,
        BadValueError,
        lambda i: (
            f"{raw[i].tobytes()!r} does not fit the field's {f.type}({f.length},{f.decimals})"
        ),
    )


def _fit(
    batch: Batch, f: Field, raw: U8, values: I64, present: Mask, *, out_type: pa.DataType
) -> None:
    """Report (and make null) the values with more digits than the decimal type holds (a
    number written without its decimals, its integer part using the decimals' columns)."""
    precision = int(out_type.precision)
    if precision > 18:
        return  # any int64 fits
    too_big = present & (np.abs(values) >= 10**precision)
    if too_big.any():
        rows = np.flatnonzero(too_big)
        _too_big(batch, f, raw, rows)
        present[rows] = False


def _decimal_from_int64(values: I64, valid: Mask | None, out_type: pa.DataType) -> pa.Array:
    n = len(values)
    words = np.empty((n, 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = values >> 63
    vbuf, nulls = validity_buffer(valid)
    return pa.Array.from_buffers(out_type, n, [vbuf, pa.py_buffer(words)], null_count=nulls)


def _days_from_civil(y: I64, m: I64, d: I64) -> I64:
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: I64 = era * 146097 + doe - 719468
    return days


_ZEROS8 = 0x3030303030303030
_BLANKS8 = 0x2020202020202020
_SWAR_10 = 0x7676767676767676  # + this sets a byte's top bit iff the byte is >= 10
_TOPBITS = 0x8080808080808080


def _date(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n, w = raw.shape
    if w < 8:
        batch.reporter.error(BadValueError(batch.path, f"date field of width {w}", field=f.name))
        return pa.nulls(n, pa.date32())
    head = np.ascontiguousarray(raw[:, :8])
    word = head.view("<u8").reshape(n)
    # all blank, all NUL or "00000000": an empty date
    present = ~((word == _BLANKS8) | (word == 0) | (word == _ZEROS8))
    if w > 8:
        present |= ~_blank(raw[:, 8:]).all(axis=1)
    if null is not None:
        present &= ~null
    offset = word ^ np.uint64(_ZEROS8)
    ok = ((offset + np.uint64(_SWAR_10)) | offset) & np.uint64(_TOPBITS) == 0
    if w > 8:
        ok &= _blank(raw[:, 8:]).all(axis=1)
    y = _digits_value(head, [1000, 100, 10, 1, 0, 0, 0, 0])
    m = _digits_value(head, [0, 0, 0, 0, 10, 1, 0, 0])
    d = _digits_value(head, [0, 0, 0, 0, 0, 0, 10, 1])
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = _DAYS_IN_MONTH[np.clip(m, 0, 12)] + ((m == 2) & leap)
    ok &= (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim) & (y >= 1)
    bad = present & ~ok
    if bad.any():
        batch.fail(
            np.flatnonzero(bad),
            f,
            BadValueError,
            lambda i: f"{raw[i].tobytes()!r} is not a date (YYYYMMDD)",
        )
        present &= ~bad
    days = np.where(present, _days_from_civil(y, m, d), 0).astype(np.int32)
    vbuf, nulls = validity_buffer(present)
    return pa.Array.from_buffers(pa.date32(), n, [vbuf, pa.py_buffer(days)], null_count=nulls)


_YMD_WEIGHTS = np.array(
    [
        [1000, 0, 0],
        [100, 0, 0],
        [10, 0, 0],
        [1, 0, 0],
        [0, 10, 0],
        [0, 1, 0],
        [0, 0, 10],
        [0, 0, 1],
    ],
    dtype=np.int64,
)


def _datetime(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n = raw.shape[0]
    if raw.shape[1] != 8:
        batch.reporter.error(BadValueError(batch.path, "datetime field not 8 bytes", field=f.name))
        return pa.nulls(n, pa.timestamp("ms"))
    day = _view(batch, f, "<i4").astype(np.int64)
    ms = _view(batch, f, "<i4", 4).astype(np.int64)
    spaces = 0x20202020
    present = ~(((day == 0) & (ms == 0)) | ((day == spaces) & (ms == spaces)))
    if null is not None:
        present &= ~null
    bad = present & ((day < JULIAN_MIN) | (day > JULIAN_MAX) | (ms < 0) | (ms >= MS_PER_DAY))
    if bad.any():
        batch.fail(
            np.flatnonzero(bad),
            f,
            BadValueError,
            lambda i: f"datetime (Julian day {int(day[i])}, {int(ms[i])} ms) is out of range",
        )
        present &= ~bad
    # VFP often stores a time 1 ms short of the second; it displays it rounded to the second.
    seconds = (ms + 500) // 1000
    value = (day - JULIAN_UNIX_EPOCH) * MS_PER_DAY + seconds * 1000
    return pa.array(np.where(present, value, 0), type=pa.timestamp("ms"), mask=~present)


def _logical(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n = raw.shape[0]
    if raw.shape[1] == 0:
        return pa.nulls(n, pa.bool_())
    code = _LOGICAL[raw[:, 0]]
    bad = code == 3
    if null is not None:
        bad &= ~null
    if bad.any():
        batch.fail(
            np.flatnonzero(bad),
            f,
            BadValueError,
            lambda i: f"{raw[i].tobytes()!r} is not a logical value (T/F/Y/N/?)",
        )
    present = code < 2
    if null is not None:
        present &= ~null
    return pa.array(code == 1, type=pa.bool_(), mask=~present)


def _big_endian_flipped(raw: U8) -> npt.NDArray[np.uint64]:
    """dBase 7 keys: big-endian with the sign bit flipped (so bytes sort as numbers)."""
    width = raw.shape[1]
    return np.ascontiguousarray(raw).view(f">u{width}").reshape(-1).astype(np.uint64)


def _integer(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n = raw.shape[0]
    if raw.shape[1] != 4:
        batch.reporter.error(BadValueError(batch.path, "integer field not 4 bytes", field=f.name))
        return pa.nulls(n, pa.int32())
    present = np.ones(n, dtype=bool) if null is None else ~null
    if f.dbase7 or f.type == "+":
        u = _big_endian_flipped(raw)
        present &= u != 0
        values = ((u ^ np.uint64(0x80000000)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        ints = values.view(np.int32)
    else:
        ints = _view(batch, f, "<i4").astype(np.int32)
    return pa.array(ints, type=pa.int32(), mask=~present)


def _currency(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n = raw.shape[0]
    if raw.shape[1] != 8:
        batch.reporter.error(BadValueError(batch.path, "currency field not 8 bytes", field=f.name))
        return pa.nulls(n, pa.decimal128(19, 4))
    values = _view(batch, f, "<i8").astype(np.int64)
    return _decimal_from_int64(values, None if null is None else ~null, pa.decimal128(19, 4))


def _double(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    raw = batch.raw(f)
    n = raw.shape[0]
    if raw.shape[1] != 8:
        batch.reporter.error(BadValueError(batch.path, "double field not 8 bytes", field=f.name))
        return pa.nulls(n, pa.float64())
    present = np.ones(n, dtype=bool) if null is None else ~null
    if f.type == "O":
        u = _big_endian_flipped(raw)
        present &= u != 0
        sign = np.uint64(1 << 63)
        u = np.where(u & sign, u ^ sign, ~u)
        values = u.view(np.float64)
    else:
        values = _view(batch, f, "<f8").astype(np.float64)
    return pa.array(values, type=pa.float64(), mask=~present)


def _timestamp(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    """dBase 7 ``@``: a big-endian double of milliseconds since 0001-01-01 (minus one day).

    dBase stores it with the sign bit flipped; some writers store the plain double. Timestamps
    are positive, so the top bit tells which: set means flipped.
    """
    raw = batch.raw(f)
    n = raw.shape[0]
    if raw.shape[1] != 8:
        batch.reporter.error(BadValueError(batch.path, "timestamp not 8 bytes", field=f.name))
        return pa.nulls(n, pa.timestamp("ms"))
    u = _big_endian_flipped(raw)
    present = u != 0
    if null is not None:
        present &= ~null
    sign = np.uint64(1 << 63)
    ms = np.where(u & sign, u ^ sign, u).view(np.float64) - DBASE7_UNIX_EPOCH_MS
    in_range = np.isfinite(ms) & (ms >= UNIX_MS_MIN) & (ms <= UNIX_MS_MAX)
    bad = present & ~in_range
    if bad.any():
        batch.fail(
            np.flatnonzero(bad),
            f,
            BadValueError,
            lambda i: f"timestamp {raw[i].tobytes().hex()} is out of range",
        )
        present &= ~bad
    value = np.rint(np.where(present, ms, 0.0)).astype(np.int64)
    return pa.array(value, type=pa.timestamp("ms"), mask=~present)


def _pointers(batch: Batch, f: Field, null: Mask | None) -> tuple[I64, Mask]:
    """Memo block numbers (0 = empty memo) and the mask of rows with a value."""
    raw = batch.raw(f)
    n, w = raw.shape
    present = np.ones(n, dtype=bool) if null is None else ~null
    if f.binary_pointer and w == 4:
        return _view(batch, f, "<u4").astype(np.int64), present
    blank = _blank(raw)
    is_digit = (raw - np.uint8(48)) < 10
    bad = ~(is_digit | blank).all(axis=1) & present
    if bad.any():
        batch.fail(
            np.flatnonzero(bad),
            f,
            BadValueError,
            lambda i: f"{raw[i].tobytes()!r} is not a memo block number",
        )
        present &= ~bad
    acc = np.zeros(n, dtype=np.int64)
    for c in range(w):
        acc = np.where(is_digit[:, c], acc * 10 + (raw[:, c].astype(np.int64) - 48), acc)
    return np.where(present, acc, 0), present


def memo_pointers(batch: Batch, f: Field) -> tuple[I64, Mask]:
    """The memo field's block numbers (0: no memo) and the mask of records with a value,
    as :func:`decode` reads them (bad pointers raise in strict mode)."""
    return _pointers(batch, f, batch.null_mask(f))


def _memo(batch: Batch, f: Field, null: Mask | None) -> pa.Array:
    n = batch.n
    binary = f.binary
    pointers, present = _pointers(batch, f, null)
    if batch.memo is None:
        if batch.memo_missing and (present & (pointers > 0)).any():
            # lenient mode (strict raised at open): the values cannot be read
            i = int(np.flatnonzero(present & (pointers > 0))[0])
            batch.reporter.error(
                MissingMemoError(
                    batch.path,
                    "memo file is missing; memo values read as null",
                    record=int(batch.recnos[i]),
                    field=f.name,
                )
            )
            present &= pointers == 0
        offsets = np.zeros(n + 1, dtype=np.int64)
        return _text_or_binary(batch, f, np.zeros(0, np.uint8), offsets, present, binary=binary)
    want = present & (pointers > 0)
    idx = np.flatnonzero(want)
    located = batch.memo.locate(
        pointers[idx], batch.recnos[idx], f.name, binary=binary, budget=batch.memo_budget
    )
    for _, error in located.problems:
        batch.reporter.error(error)
    if located.failed is not None and located.failed.any():
        bad = idx[located.failed]
        present[bad] = False
    starts = np.zeros(n, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    starts[idx] = located.starts
    lengths[idx] = located.lengths
    lengths[~present] = 0
    data, offsets = batch.memo.gather(starts, lengths)
    return _text_or_binary(batch, f, data, offsets, present, binary=binary)
