"""A writer of Visual FoxPro and dBase III tables, for tests and the demo pharmacy.

It writes what Visual FoxPro writes: a DBF (versions 0x30/0x31/0x32, or dBase III 0x03/0x83)
with its field descriptors and flags (system, nullable, binary, autoincrement with next value
and step), the ``_NullFlags`` system field (for each field in order: one bit for a V/Q field's
"shorter than the field" marker, then one bit if the field is nullable), an FPT memo file with
any block size (a DBT for dBase III), the code page's language-driver byte, the DBC backlink and
the 0x1A end-of-file marker.

Rows are encoded column by column with numpy, so a million rows take seconds, not minutes.
``TableEditor`` changes a table in place the way Visual FoxPro does (append, replace, memo
rewrite in the same blocks when it fits, delete flag, pack).
"""

from __future__ import annotations

import codecs
import datetime as dt
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "LANGUAGE_DRIVERS",
    "DbfWriteError",
    "FieldSpec",
    "TableEditor",
    "write_dbc",
    "write_table",
]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

VFP_VERSIONS = (0x30, 0x31, 0x32)
DBASE3_VERSIONS = (0x03, 0x83)
VFP_TYPES = frozenset("CNFDLMIBYTVQWG")
DBASE3_TYPES = frozenset("CNFDLM")
MEMO_TYPES = frozenset("MGW")
VAR_TYPES = frozenset("VQ")
BACKLINK_SIZE = 263
FPT_HEADER_SIZE = 512
DBT_BLOCK_SIZE = 512
EOF_MARKER = 0x1A

FLAG_SYSTEM = 0x01
FLAG_NULLABLE = 0x02
FLAG_BINARY = 0x04
FLAG_AUTOINC = 0x0C

# Python codec name -> language-driver byte (header offset 29), the Visual FoxPro table.
LANGUAGE_DRIVERS: dict[str, int] = {
    "cp437": 0x01,
    "cp850": 0x02,
    "cp1252": 0x03,
    "mac-roman": 0x04,
    "cp852": 0x64,
    "cp866": 0x65,
    "cp865": 0x66,
    "cp861": 0x67,
    "cp737": 0x6A,
    "cp857": 0x6B,
    "cp863": 0x6C,
    "cp950": 0x78,
    "cp949": 0x79,
    "gbk": 0x7A,
    "cp932": 0x7B,
    "cp874": 0x7C,
    "cp1255": 0x7D,
    "cp1256": 0x7E,
    "mac-greek": 0x96,
    "mac-latin2": 0x97,
    "cp1250": 0xC8,
    "cp1251": 0xC9,
    "cp1254": 0xCA,
    "cp1253": 0xCB,
    "cp1257": 0xCC,
}

_IMPLIED_LENGTH = {"D": 8, "L": 1, "M": 4, "G": 4, "W": 4, "I": 4, "B": 8, "Y": 8, "T": 8}
_JULIAN_EPOCH = 2440588  # Julian day number of 1970-01-01
_MS_PER_DAY = 86_400_000
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DbfWriteError(ValueError):
    """A value, field list or option the writer cannot store; the message names where."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a table to write.

    ``name`` may be a long name (up to 128 characters) when the table is bound to a DBC; the
    DBF then stores its first 10 characters (made unique). ``length`` is required for C, N, F,
    V and Q and implied for the other types.
    """

    name: str
    type: str
    length: int = 0
    decimals: int = 0
    nullable: bool = False
    binary: bool = False
    autoincrement: bool = False


@dataclass(frozen=True)
class _Column:
    spec: FieldSpec
    dbf_name: str
    offset: int
    length: int
    decimals: int
    flags: int
    null_bit: int | None
    varlen_bit: int | None
    autoinc_next: int = 1
    autoinc_step: int = 1


@dataclass
class _Layout:
    version: int
    columns: list[_Column]
    record_length: int
    header_length: int
    nullflags_offset: int
    nullflags_length: int
    has_memo: bool

    @property
    def vfp(self) -> bool:
        return self.version in VFP_VERSIONS

    def column(self, name: str) -> _Column:
        key = name.upper()
        for col in self.columns:
            if col.spec.name == name or col.dbf_name == key or col.spec.name.upper() == key:
                return col
        raise KeyError(name)


# --------------------------------------------------------------------------------------------
# Layout: field descriptors, offsets, null bits
# --------------------------------------------------------------------------------------------


def _choose_version(fields: Sequence[FieldSpec]) -> int:
    if any(f.type in "VQW" for f in fields):
        return 0x32
    if any(f.autoincrement for f in fields):
        return 0x31
    return 0x30


def _short_names(fields: Sequence[FieldSpec], bound: bool, where: str) -> list[str]:
    """The DBF names: the names themselves, or for long names their first 10 characters."""
    seen: set[str] = set()
    for spec in fields:
        if not _NAME_RE.match(spec.name):
            raise DbfWriteError(
                f"{where}: field name {spec.name!r} must start with a letter or _ and "
                "hold only letters, digits and _"
            )
        limit = 128 if bound else 10
        if len(spec.name) > limit:
            hint = "" if bound else " (long names need a DBC: pass dbc=)"
            raise DbfWriteError(
                f"{where}: field name {spec.name!r} is longer than {limit} characters{hint}"
            )
        if spec.name.upper() in seen:
            raise DbfWriteError(f"{where}: duplicate field name {spec.name!r}")
        seen.add(spec.name.upper())
    names: list[str] = []
    taken = {f.name.upper() for f in fields if len(f.name) <= 10}
    for spec in fields:
        short = spec.name.upper()
        if len(short) > 10:
            short = short[:10]
            n = 1
            while short in taken:
                n += 1
                suffix = f"_{n}"
                short = spec.name[: 10 - len(suffix)].upper() + suffix
            taken.add(short)
        names.append(short)
    return names


def _build_layout(fields: Sequence[FieldSpec], version: int, bound: bool, where: str) -> _Layout:
    if not fields:
        raise DbfWriteError(f"{where}: a table needs at least one field")
    vfp = version in VFP_VERSIONS
    if not vfp and version not in DBASE3_VERSIONS:
        raise DbfWriteError(
            f"{where}: cannot write version 0x{version:02X} "
            "(choose 0x30, 0x31, 0x32 for Visual FoxPro or 0x03, 0x83 for dBase III)"
        )
    if bound and not vfp:
        raise DbfWriteError(f"{where}: only Visual FoxPro tables can belong to a DBC")
    allowed = VFP_TYPES if vfp else DBASE3_TYPES
    short = _short_names(fields, bound, where)
    columns: list[_Column] = []
    offset = 1
    bit = 0
    has_memo = False
    for spec, dbf_name in zip(fields, short, strict=True):
        ftype = spec.type.upper() if len(spec.type) == 1 else spec.type
        label = f"{where}: field {spec.name}"
        if ftype not in allowed:
            kind = "Visual FoxPro" if vfp else "dBase III"
            raise DbfWriteError(f"{label}: type {spec.type!r} cannot be written to a {kind} table")
        length, decimals = _field_size(spec, ftype, vfp, label)
        if not vfp and (spec.nullable or spec.binary or spec.autoincrement):
            raise DbfWriteError(
                f"{label}: nullable/binary/autoincrement need a Visual FoxPro table"
            )
        if spec.autoincrement and ftype != "I":
            raise DbfWriteError(f"{label}: only integer (I) fields can autoincrement")
        if spec.autoincrement and spec.nullable:
            raise DbfWriteError(f"{label}: an autoincrement field cannot be nullable")
        if spec.binary and ftype not in "CMV":
            raise DbfWriteError(f"{label}: only C, M and V fields take the binary flag")
        flags = 0
        if spec.nullable:
            flags |= FLAG_NULLABLE
        if spec.binary or ftype in "QW":
            flags |= FLAG_BINARY
        if spec.autoincrement:
            flags |= FLAG_AUTOINC
        varlen_bit = null_bit = None
        if ftype in VAR_TYPES:
            varlen_bit = bit
            bit += 1
        if spec.nullable:
            null_bit = bit
            bit += 1
        has_memo = has_memo or ftype in MEMO_TYPES
        columns.append(
            _Column(
                FieldSpec(
                    spec.name,
                    ftype,
                    length,
                    decimals,
                    spec.nullable,
                    spec.binary,
                    spec.autoincrement,
                ),
                dbf_name,
                offset,
                length,
                decimals,
                flags,
                null_bit,
                varlen_bit,
            )
        )
        offset += length
    nullflags_offset = offset
    nullflags_length = (bit + 7) // 8
    record_length = offset + nullflags_length
    if record_length > 65500:
        raise DbfWriteError(f"{where}: records of {record_length} bytes are too long (max 65500)")
    n_desc = len(columns) + (1 if nullflags_length else 0)
    header_length = 32 + 32 * n_desc + 1 + (BACKLINK_SIZE if vfp else 0)
    return _Layout(
        version,
        columns,
        record_length,
        header_length,
        nullflags_offset,
        nullflags_length,
        has_memo,
    )


def _field_size(spec: FieldSpec, ftype: str, vfp: bool, label: str) -> tuple[int, int]:
    if ftype in _IMPLIED_LENGTH:
        length = _IMPLIED_LENGTH[ftype]
        if ftype == "M" and not vfp:
            length = 10
        if spec.length not in (0, length):
            raise DbfWriteError(f"{label}: type {ftype} has length {length}, not {spec.length}")
        decimals = spec.decimals
        if ftype == "Y":
            decimals = 4
        elif ftype == "B":
            if not 0 <= decimals <= 18:
                raise DbfWriteError(f"{label}: decimals must be 0..18")
        elif decimals:
            raise DbfWriteError(f"{label}: type {ftype} takes no decimals")
        return length, decimals
    length, decimals = spec.length, spec.decimals
    if ftype in "CVQ":
        if not 1 <= length <= 254:
            raise DbfWriteError(f"{label}: length must be 1..254, not {length}")
        if decimals:
            raise DbfWriteError(f"{label}: type {ftype} takes no decimals")
    else:  # N, F
        if not 1 <= length <= 20:
            raise DbfWriteError(f"{label}: length must be 1..20, not {length}")
        if decimals and not 0 < decimals <= length - 2:
            raise DbfWriteError(
                f"{label}: {decimals} decimals do not fit a length of {length} "
                "(room is needed for a digit and the point)"
            )
        if decimals < 0:
            raise DbfWriteError(f"{label}: decimals cannot be negative")
    return length, decimals


def _language_driver(codepage: str, where: str) -> tuple[str, int]:
    try:
        name = codecs.lookup(codepage).name
    except LookupError:
        raise DbfWriteError(f"{where}: unknown code page {codepage!r}") from None
    aliases = {"gb2312": "gbk", "mac_roman": "mac-roman", "windows-1252": "cp1252"}
    name = aliases.get(name, name)
    if name not in LANGUAGE_DRIVERS:
        known = ", ".join(sorted(LANGUAGE_DRIVERS))
        raise DbfWriteError(f"{where}: code page {codepage!r} has no language driver ({known})")
    return name, LANGUAGE_DRIVERS[name]


def _header_bytes(
    layout: _Layout,
    count: int,
    last_update: dt.date,
    language_driver: int,
    backlink: str,
    *,
    table_flags: int = 0,
) -> bytes:
    head = bytearray(32)
    head[0] = layout.version
    year = last_update.year - 1900  # as dBase and Visual FoxPro 6+ store it
    head[1:4] = bytes((max(0, min(255, year)), last_update.month, last_update.day))
    struct.pack_into("<IHH", head, 4, count, layout.header_length, layout.record_length)
    flags = table_flags
    if layout.has_memo and layout.vfp:
        flags |= 0x02
    head[28] = flags
    head[29] = language_driver
    out = bytearray(head)
    for col in layout.columns:
        desc = bytearray(32)
        desc[0:11] = col.dbf_name.encode("ascii").ljust(11, b"\0")
        desc[11] = ord(col.spec.type)
        if layout.vfp:
            struct.pack_into("<I", desc, 12, col.offset)
            desc[18] = col.flags
            if col.spec.autoincrement:
                struct.pack_into("<IB", desc, 19, col.autoinc_next, col.autoinc_step)
        desc[16] = col.length
        desc[17] = col.decimals
        out += desc
    if layout.nullflags_length:
        desc = bytearray(32)
        desc[0:11] = b"_NullFlags\0"
        desc[11] = ord("0")
        struct.pack_into("<I", desc, 12, layout.nullflags_offset)
        desc[16] = layout.nullflags_length
        desc[18] = FLAG_SYSTEM | FLAG_BINARY
        out += desc
    out.append(0x0D)
    if layout.vfp:
        link = backlink.encode("ascii", "strict")
        if len(link) > BACKLINK_SIZE:
            raise DbfWriteError(f"DBC path {backlink!r} is longer than {BACKLINK_SIZE} bytes")
        out += link.ljust(BACKLINK_SIZE, b"\0")
    assert len(out) == layout.header_length
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Values: Python or Arrow columns -> fixed-width bytes, column by column
# --------------------------------------------------------------------------------------------


@dataclass
class _Encoded:
    """One column encoded: its bytes in the record, and which rows are NULL / short."""

    data: U8  # (n, length)
    null: Mask | None = None
    short: Mask | None = None
    memos: list[bytes | None] | None = None


@dataclass
class _Context:
    where: str
    codepage: str
    first_row: int = 1  # row number of index 0, for messages

    def fail(self, row: int, col: _Column, message: str) -> DbfWriteError:
        return DbfWriteError(
            f"{self.where}: row {row + self.first_row}, field {col.spec.name}: {message}"
        )


def _is_arrow(values: object) -> bool:
    return isinstance(values, (pa.Array, pa.ChunkedArray))


def _arrow_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def _arrow_nulls(arr: pa.Array) -> Mask:
    if arr.null_count == 0:
        return np.zeros(len(arr), dtype=bool)
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _blank_matrix(n: int, length: int, fill: int) -> U8:
    return np.full((n, length), fill, dtype=np.uint8)


def _encode_column(col: _Column, values: Any, n: int, ctx: _Context, vfp: bool) -> _Encoded:
    t = col.spec.type
    if t in "CV" or t == "Q":
        return _encode_text(col, values, n, ctx)
    if t in "NF":
        return _encode_numeric(col, values, n, ctx)
    if t == "D":
        days, null = _dates(col, values, n, ctx)
        return _encode_date(col, days, null)
    if t == "T":
        ms, null = _datetimes(col, values, n, ctx)
        return _encode_datetime(col, ms, null)
    if t == "L":
        return _encode_logical(col, values, n, ctx)
    if t == "I":
        ints, int_null = _integers(col, values, n, ctx)
        data = ints.astype("<i4").view(np.uint8).reshape(n, 4)
        return _Encoded(data, int_null)
    if t == "B":
        floats, null = _floats(col, values, n, ctx)
        return _Encoded(floats.astype("<f8").view(np.uint8).reshape(n, 8), null)
    if t == "Y":
        unscaled, null = _scaled(col, values, n, ctx, 4)
        return _Encoded(unscaled.astype("<i8").view(np.uint8).reshape(n, 8), null)
    if t in MEMO_TYPES:
        memos = _memo_values(col, values, n, ctx)
        memo_null = np.array([m is None for m in memos], dtype=bool) if col.spec.nullable else None
        blank = _blank_matrix(n, col.length, 0x20 if not vfp else 0)
        return _Encoded(blank, memo_null, memos=memos)
    raise AssertionError(t)


def _check_nulls(col: _Column, null: Mask, ctx: _Context, *, blank_ok: bool) -> Mask | None:
    if col.spec.nullable:
        return null
    if null.any() and not blank_ok:
        row = int(np.argmax(null))
        raise ctx.fail(row, col, "None given, but the field is not nullable (nullable=True)")
    return None


def _to_bytes(col: _Column, value: object, ctx: _Context, row: int) -> bytes:
    binary = col.spec.binary or col.spec.type == "Q"
    if isinstance(value, str):
        if col.spec.type == "Q":
            raise ctx.fail(row, col, "varbinary takes bytes, not str")
        try:
            return value.encode(ctx.codepage)
        except UnicodeEncodeError as exc:
            bad = value[exc.start : exc.end]
            raise ctx.fail(row, col, f"{bad!r} cannot be encoded in {ctx.codepage}") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not binary and col.spec.type != "M":
            # Bytes for a text field are taken as already encoded in the table's code page.
            return bytes(value)
        return bytes(value)
    raise ctx.fail(row, col, f"expected str or bytes, got {type(value).__name__}")


def _dictionary(col: _Column, values: Any, n: int, ctx: _Context) -> tuple[list[bytes], I64]:
    """Distinct encoded values and, per row, an index into them (-1 for None)."""
    if _is_arrow(values):
        arr = _arrow_array(values)
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


def _encode_text(col: _Column, values: Any, n: int, ctx: _Context) -> _Encoded:
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
    null = _check_nulls(col, idx < 0, ctx, blank_ok=t == "C")
    short = short_u[idx] if t in VAR_TYPES else None
    if short is not None and null is not None:
        short = short & ~null
    return _Encoded(data, null, short)


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
    col: _Column, values: Sequence[object], n: int, ctx: _Context, decimals: int
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


def _arrow_scaled(col: _Column, arr: pa.Array, ctx: _Context, decimals: int) -> I64:
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


def _scaled(col: _Column, values: Any, n: int, ctx: _Context, decimals: int) -> tuple[I64, Mask]:
    """Numbers as int64 of value * 10**decimals, plus the None mask (Y fields)."""
    if _is_arrow(values):
        arr = _arrow_array(values)
        null = _arrow_nulls(arr)
        scaled = _arrow_scaled(col, arr, ctx, decimals)
    else:
        ints, null = _scaled_python(col, values, n, ctx, decimals)
        for row, v in enumerate(ints):
            if not -(2**63) <= v < 2**63:
                raise ctx.fail(row, col, "value too large for a currency field")
        scaled = np.array(ints, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
    checked = _check_nulls(col, null, ctx, blank_ok=False)
    return scaled, null if checked is not None else np.zeros(n, dtype=bool)


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


def _encode_numeric(col: _Column, values: Any, n: int, ctx: _Context) -> _Encoded:
    width, decimals = col.length, col.decimals
    if _is_arrow(values) and width > 18 and pa.types.is_decimal(values.type):
        values = _arrow_array(values).to_pylist()  # may not fit int64: the exact Python path
    if _is_arrow(values):
        arr = _arrow_array(values)
        null = _arrow_nulls(arr)
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
    return _Encoded(data, _check_nulls(col, null, ctx, blank_ok=True))


def _encode_numeric_python(col: _Column, ints: list[int], null: Mask, ctx: _Context) -> _Encoded:
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
    return _Encoded(data, _check_nulls(col, null, ctx, blank_ok=True))


def _digits(out: U8, col0: int, values: I64, width: int) -> None:
    for k in range(width):
        out[:, col0 + width - 1 - k] = 48 + (values // np.int64(10**k)) % 10


def _dates(col: _Column, values: Any, n: int, ctx: _Context) -> tuple[I64, Mask]:
    if _is_arrow(values):
        arr = _arrow_array(values)
        if pa.types.is_timestamp(arr.type) or pa.types.is_date64(arr.type):
            raise ctx.fail(0, col, f"a date field takes dates, not {arr.type}")
        if not pa.types.is_date32(arr.type):
            raise ctx.fail(0, col, f"expected dates, got an Arrow column of {arr.type}")
        null = _arrow_nulls(arr)
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


def _encode_date(col: _Column, days: I64, null: Mask) -> _Encoded:
    n = len(days)
    d64 = days.astype("datetime64[D]")
    years = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    months = d64.astype("datetime64[M]").astype(np.int64) % 12 + 1
    mday = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    out = np.empty((n, 8), dtype=np.uint8)
    _digits(out, 0, years, 4)
    _digits(out, 4, months, 2)
    _digits(out, 6, mday, 2)
    out[null] = 0x20
    return _Encoded(out, null if col.spec.nullable else None)


def _datetimes(col: _Column, values: Any, n: int, ctx: _Context) -> tuple[I64, Mask]:
    if _is_arrow(values):
        arr = _arrow_array(values)
        if pa.types.is_date32(arr.type):
            arr = arr.cast(pa.timestamp("ms"))
        if not pa.types.is_timestamp(arr.type):
            raise ctx.fail(0, col, f"expected datetimes, got an Arrow column of {arr.type}")
        if arr.type.tz is not None:
            raise ctx.fail(0, col, "datetimes must be naive (a DBF stores local time)")
        null = _arrow_nulls(arr)
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


def _encode_datetime(col: _Column, ms: I64, null: Mask) -> _Encoded:
    n = len(ms)
    days = ms // _MS_PER_DAY
    julian = (days + _JULIAN_EPOCH).astype("<i4")
    msday = (ms - days * _MS_PER_DAY).astype("<i4")
    out = np.empty((n, 8), dtype=np.uint8)
    out[:, 0:4] = julian.view(np.uint8).reshape(n, 4)
    out[:, 4:8] = msday.view(np.uint8).reshape(n, 4)
    out[null] = 0
    return _Encoded(out, null if col.spec.nullable else None)


def _encode_logical(col: _Column, values: Any, n: int, ctx: _Context) -> _Encoded:
    if _is_arrow(values):
        arr = _arrow_array(values)
        if not pa.types.is_boolean(arr.type):
            raise ctx.fail(0, col, f"expected booleans, got an Arrow column of {arr.type}")
        null = _arrow_nulls(arr)
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
    return _Encoded(out.reshape(n, 1), null if col.spec.nullable else None)


def _integers(col: _Column, values: Any, n: int, ctx: _Context) -> tuple[I64, Mask | None]:
    lo, hi = -(2**31), 2**31 - 1
    if _is_arrow(values):
        arr = _arrow_array(values)
        if not pa.types.is_integer(arr.type):
            raise ctx.fail(0, col, f"expected integers, got an Arrow column of {arr.type}")
        null = _arrow_nulls(arr)
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
    return ints, _check_nulls(col, null, ctx, blank_ok=False)


def _floats(col: _Column, values: Any, n: int, ctx: _Context) -> tuple[npt.NDArray[Any], Mask]:
    if _is_arrow(values):
        arr = _arrow_array(values)
        if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
            raise ctx.fail(0, col, f"expected numbers, got an Arrow column of {arr.type}")
        null = _arrow_nulls(arr)
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
    checked = _check_nulls(col, null, ctx, blank_ok=False)
    return floats, checked if checked is not None else np.zeros(n, dtype=bool)


def _memo_values(col: _Column, values: Any, n: int, ctx: _Context) -> list[bytes | None]:
    if _is_arrow(values) and pa.types.is_dictionary(values.type):
        # Encode each distinct value once (a column of repeated texts, such as sigs).
        uniques, idx = _dictionary(col, values, n, ctx)
        table: list[bytes | None] = [*uniques, None]
        return [table[k] for k in idx.tolist()]
    raw = _arrow_array(values).to_pylist() if _is_arrow(values) else list(values)
    out: list[bytes | None] = []
    for row, value in enumerate(raw):
        if value is None:
            out.append(None)
            continue
        if col.spec.type in "GW" and isinstance(value, str):
            raise ctx.fail(row, col, f"a {col.spec.type} field takes bytes, not str")
        out.append(_to_bytes(col, value, ctx, row))
    return out


# --------------------------------------------------------------------------------------------
# Memo files
# --------------------------------------------------------------------------------------------


class _MemoSink:
    """Appends memo blocks to an FPT (or DBT) being written, returning block numbers."""

    def __init__(self, fh: BinaryIO, block_size: int, next_free: int, dbase: bool) -> None:
        self.fh = fh
        self.block_size = block_size
        self.next_free = next_free
        self.dbase = dbase
        self._pending: list[bytes] = []
        self._pending_size = 0

    def add(self, data: bytes, memo_type: int) -> int:
        if self.dbase:
            if b"\x1a" in data:
                raise ValueError("a dBase III memo cannot contain the byte 0x1A")
            payload = data + b"\x1a\x1a"
        else:
            payload = struct.pack(">II", memo_type, len(data)) + data
        blocks = -(-len(payload) // self.block_size)
        block = self.next_free
        if block + blocks >= 2**32:
            raise ValueError("the memo file is full (2**32 blocks)")
        self.next_free += blocks
        self._pending.append(payload)
        pad = blocks * self.block_size - len(payload)
        if pad:
            self._pending.append(b"\0" * pad)
        self._pending_size += blocks * self.block_size
        if self._pending_size > 1 << 22:
            self.flush()
        return block

    def flush(self) -> None:
        if self._pending:
            self.fh.write(b"".join(self._pending))
            self._pending.clear()
            self._pending_size = 0


def _memo_header(block_size: int, next_free: int, dbase: bool) -> bytes:
    head = bytearray(FPT_HEADER_SIZE)
    if dbase:
        struct.pack_into("<I", head, 0, next_free)
        head[16] = 0x03
    else:
        struct.pack_into(">I", head, 0, next_free)
        struct.pack_into(">H", head, 6, block_size)
    first = _first_block(block_size)
    return bytes(head.ljust(first * block_size, b"\0"))


def _first_block(block_size: int) -> int:
    return -(-FPT_HEADER_SIZE // block_size)


def _memo_path(path: Path, version: int, *, dbc: bool = False) -> Path:
    if dbc:
        ext = ".dct"
    elif version in DBASE3_VERSIONS:
        ext = ".dbt"
    else:
        ext = ".fpt"
    if path.suffix.isupper():
        ext = ext.upper()
    return path.with_suffix(ext)


def _memo_type(col: _Column) -> int:
    return 0 if col.spec.type == "G" else 1


def _memo_pointer_bytes(blocks: list[int], vfp: bool) -> U8:
    n = len(blocks)
    if vfp:
        return np.array(blocks, dtype="<u4").view(np.uint8).reshape(n, 4)
    text = b"".join(b" " * 10 if b == 0 else f"{b:>10d}".encode("ascii") for b in blocks)
    return np.frombuffer(text, dtype=np.uint8).reshape(n, 10).copy()


# --------------------------------------------------------------------------------------------
# write_table
# --------------------------------------------------------------------------------------------


def _rows_to_columns(
    layout: _Layout, rows: Iterable[Mapping[str, object]] | pa.Table, where: str
) -> tuple[dict[str, Any], int]:
    if isinstance(rows, pa.Table):
        columns: dict[str, Any] = {}
        known = {c.spec.name: c for c in layout.columns}
        for name in rows.column_names:
            if name not in known:
                raise DbfWriteError(f"{where}: column {name!r} is not a field of the table")
            columns[name] = rows.column(name)
        return columns, rows.num_rows
    lists: dict[str, list[object]] = {c.spec.name: [] for c in layout.columns}
    n = 0
    for row_no, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise DbfWriteError(f"{where}: row {row_no} is not a mapping of field name to value")
        for key in row:
            if key not in lists:
                raise DbfWriteError(f"{where}: row {row_no}: {key!r} is not a field of the table")
        for name, values in lists.items():
            values.append(row.get(name))
        n += 1
    return dict(lists), n


def _encode_records(
    layout: _Layout,
    columns: Mapping[str, Any],
    n: int,
    ctx: _Context,
    deleted: Sequence[bool] | npt.NDArray[np.bool_] | None,
) -> tuple[U8, list[tuple[_Column, _Encoded]]]:
    records = np.empty((n, layout.record_length), dtype=np.uint8)
    if deleted is None:
        records[:, 0] = 0x20
    else:
        flags = np.asarray(deleted, dtype=bool)
        if flags.shape != (n,):
            raise DbfWriteError(f"{ctx.where}: deleted= has {flags.size} flags for {n} rows")
        records[:, 0] = np.where(flags, ord("*"), 0x20)
    nullflags = np.zeros((n, layout.nullflags_length), dtype=np.uint8)
    memo_columns: list[tuple[_Column, _Encoded]] = []
    for col in layout.columns:
        values = columns.get(col.spec.name)
        if values is None:
            values = [None] * n
        enc = _encode_column(col, values, n, ctx, layout.vfp)
        records[:, col.offset : col.offset + col.length] = enc.data
        if enc.null is not None and col.null_bit is not None:
            nullflags[:, col.null_bit // 8] |= enc.null.astype(np.uint8) << (col.null_bit % 8)
        if enc.short is not None and col.varlen_bit is not None:
            bit = col.varlen_bit
            nullflags[:, bit // 8] |= enc.short.astype(np.uint8) << (bit % 8)
        if enc.memos is not None:
            memo_columns.append((col, enc))
    if layout.nullflags_length:
        end = layout.nullflags_offset + layout.nullflags_length
        records[:, layout.nullflags_offset : end] = nullflags
    return records, memo_columns


def _fill_autoincrement(
    layout: _Layout, columns: dict[str, Any], n: int, ctx: _Context
) -> dict[str, Any]:
    """Give autoincrement fields without a value the next numbers; record the next value."""
    out = dict(columns)
    for i, col in enumerate(layout.columns):
        if not col.spec.autoincrement:
            continue
        values = columns.get(col.spec.name)
        if values is None:
            values = [None] * n
        nxt = col.autoinc_next
        if (
            isinstance(values, (pa.Array, pa.ChunkedArray))
            and values.null_count == 0
            and pa.types.is_integer(values.type)
        ):
            # Every value given (a whole table written at once): only the counter moves.
            if n:
                nxt = max(nxt, int(pc.max(values).as_py()) + col.autoinc_step)
            if nxt > 2**31 - 1:
                raise ctx.fail(n - 1, col, "the autoincrement counter passed 2**31 - 1")
            layout.columns[i] = _replace_autoinc(col, nxt)
            continue
        raw = _arrow_array(values).to_pylist() if _is_arrow(values) else list(values)
        filled: list[object] = []
        for row, given in enumerate(raw):
            value = nxt if given is None else given
            if not isinstance(value, int) or isinstance(value, bool):
                raise ctx.fail(row, col, f"expected an integer, got {value!r}")
            filled.append(value)
            nxt = max(nxt, value + col.autoinc_step)
        if nxt > 2**31 - 1:
            raise ctx.fail(n - 1, col, "the autoincrement counter passed 2**31 - 1")
        out[col.spec.name] = filled
        layout.columns[i] = _replace_autoinc(col, nxt)
    return out


def _replace_autoinc(col: _Column, nxt: int) -> _Column:
    return _Column(
        col.spec,
        col.dbf_name,
        col.offset,
        col.length,
        col.decimals,
        col.flags,
        col.null_bit,
        col.varlen_bit,
        nxt,
        col.autoinc_step,
    )


def _backlink(path: Path, dbc: str | os.PathLike[str] | None) -> str:
    if dbc is None:
        return ""
    dbc_path = Path(dbc)
    if dbc_path.is_absolute() or path.is_absolute():
        rel = os.path.relpath(dbc_path.resolve(), path.resolve().parent)
    else:
        rel = os.path.relpath(dbc_path, path.parent)
    return rel.replace("/", "\\")


def write_table(
    path: str | os.PathLike[str],
    fields: Sequence[FieldSpec],
    rows: Iterable[Mapping[str, object]] | pa.Table,
    *,
    version: int | None = None,
    codepage: str = "cp1252",
    memo_block_size: int = 64,
    dbc: str | os.PathLike[str] | None = None,
    deleted: Sequence[bool] | npt.NDArray[np.bool_] | None = None,
    last_update: dt.date | None = None,
    autoincrement_next: Mapping[str, int] | None = None,
) -> None:
    """Write a table (and its memo file when it has memo fields).

    ``rows`` are mappings of field name to value, or a ``pyarrow.Table`` whose column names
    are field names (fast path: columns are encoded with numpy). ``version`` is chosen from
    the field types when not given (0x32 with V/Q/W, 0x31 with autoincrement, else 0x30).
    ``dbc`` is the path of the database container the table belongs to (stored in the
    header's backlink, relative to the table); write the container with :func:`write_dbc`.
    ``deleted`` flags rows as deleted. Values that do not fit raise :class:`DbfWriteError`
    naming the table, row and field.
    """
    path = Path(path)
    where = path.name
    fields = list(fields)
    ver = _choose_version(fields) if version is None else version
    if ver == 0x03 and any(f.type.upper() == "M" for f in fields):
        ver = 0x83
    layout = _build_layout(fields, ver, dbc is not None, where)
    cp_name, ldid = _language_driver(codepage, where)
    dbase = not layout.vfp
    if dbase:
        block_size = DBT_BLOCK_SIZE
    else:
        if not 1 <= memo_block_size <= 32768:
            raise DbfWriteError(f"{where}: memo block size must be 1..32768, not {memo_block_size}")
        block_size = memo_block_size
    for i, col in enumerate(layout.columns):
        if col.spec.autoincrement and autoincrement_next and col.spec.name in autoincrement_next:
            layout.columns[i] = _replace_autoinc(col, autoincrement_next[col.spec.name])
    ctx = _Context(where, cp_name)
    columns, n = _rows_to_columns(layout, rows, where)
    columns = _fill_autoincrement(layout, columns, n, ctx)
    records, memo_columns = _encode_records(layout, columns, n, ctx, deleted)
    backlink = _backlink(path, dbc)
    today = last_update or dt.date.today()
    memo_file = _memo_path(path, ver)
    if layout.has_memo:
        _write_memos(
            memo_file,
            records,
            memo_columns,
            block_size=block_size,
            dbase=dbase,
            vfp=layout.vfp,
            ctx=ctx,
        )
    header = _header_bytes(layout, n, today, ldid, backlink)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(records.data)
        fh.write(bytes((EOF_MARKER,)))


def _write_memos(
    memo_file: Path,
    records: U8,
    memo_columns: list[tuple[_Column, _Encoded]],
    *,
    block_size: int,
    dbase: bool,
    vfp: bool,
    ctx: _Context,
) -> None:
    n = records.shape[0]
    first = 1 if dbase else _first_block(block_size)
    with open(memo_file, "wb") as fh:
        fh.write(_memo_header(block_size, first, dbase))
        sink = _MemoSink(fh, block_size, first, dbase)
        pointers = [[0] * n for _ in memo_columns]
        # Row by row, as Visual FoxPro appends: each row's memos follow the previous row's.
        for row in range(n):
            for k, (col, enc) in enumerate(memo_columns):
                assert enc.memos is not None
                data = enc.memos[row]
                if data:
                    try:
                        pointers[k][row] = sink.add(data, _memo_type(col))
                    except ValueError as exc:
                        raise ctx.fail(row, col, str(exc)) from None
        sink.flush()
        fh.seek(0)
        fh.write(_memo_header(block_size, sink.next_free, dbase)[:FPT_HEADER_SIZE])
    for k, (col, _enc) in enumerate(memo_columns):
        records[:, col.offset : col.offset + col.length] = _memo_pointer_bytes(pointers[k], vfp)


# --------------------------------------------------------------------------------------------
# write_dbc
# --------------------------------------------------------------------------------------------

_DBC_FIELDS = [
    FieldSpec("OBJECTID", "I"),
    FieldSpec("PARENTID", "I"),
    FieldSpec("OBJECTTYPE", "C", 10),
    FieldSpec("OBJECTNAME", "C", 128),
    FieldSpec("PROPERTY", "M", binary=True),
    FieldSpec("CODE", "M", binary=True),
    FieldSpec("RIINFO", "C", 6),
    FieldSpec("USER", "M"),
]


def _property(prop_id: int, value: bytes) -> bytes:
    return struct.pack("<IHB", 7 + len(value), 1, prop_id) + value


def _database_properties() -> bytes:
    # What Visual FoxPro stores for a new database: its version and default settings.
    return (
        _property(0x18, struct.pack("<I", 11))
        + _property(0x07, b"\0")
        + _property(0x56, b"\x01")
        + _property(0x57, b"\0")
    )


def write_dbc(
    path: str | os.PathLike[str],
    tables: Mapping[str, tuple[str | os.PathLike[str], Sequence[str]]],
    *,
    last_update: dt.date | None = None,
) -> None:
    """Write a Visual FoxPro database container (``.dbc`` + ``.dct``).

    ``tables`` maps each table's name to its DBF path and its long field names, in the
    table's field order (as given to :func:`write_table`). The container is itself a VFP table
    with one record per object (Database, Table, Field), linked by parent ids.
    """
    path = Path(path)
    rows: list[dict[str, object]] = []

    def add(parent: int, kind: str, name: str, prop: bytes | None) -> int:
        oid = len(rows) + 1
        rows.append(
            {
                "OBJECTID": oid,
                "PARENTID": parent,
                "OBJECTTYPE": kind,
                "OBJECTNAME": name,
                "PROPERTY": prop,
                "CODE": None,
                "RIINFO": None,
                "USER": None,
            }
        )
        return oid

    add(1, "Database", "Database", _database_properties())
    for name in (
        "TransactionLog",
        "StoredProceduresSource",
        "StoredProceduresObject",
        "StoredProceduresDependencies",
    ):
        add(1, "Database", name, None)
    for table_name, (dbf_path, long_names) in tables.items():
        if len(table_name) > 128:
            raise DbfWriteError(f"{path.name}: table name {table_name!r} is too long")
        rel = os.path.relpath(Path(dbf_path), path.parent).replace("/", "\\")
        prop = _property(0x02, b"\x01") + _property(0x01, rel.encode("ascii") + b"\0")
        tid = add(1, "Table", table_name, prop)
        for long_name in long_names:
            if len(long_name) > 128:
                raise DbfWriteError(f"{path.name}: field name {long_name!r} is too long")
            add(tid, "Field", long_name.lower(), None)
    layout = _build_layout(_DBC_FIELDS, 0x30, False, path.name)
    ctx = _Context(path.name, "cp1252")
    columns, n = _rows_to_columns(layout, rows, path.name)
    records, memo_columns = _encode_records(layout, columns, n, ctx, None)
    _write_memos(
        _memo_path(path, 0x30, dbc=True),
        records,
        memo_columns,
        block_size=64,
        dbase=False,
        vfp=True,
        ctx=ctx,
    )
    header = _header_bytes(
        layout, n, last_update or dt.date.today(), LANGUAGE_DRIVERS["cp1252"], "", table_flags=0x04
    )
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(records.data)
        fh.write(bytes((EOF_MARKER,)))


# --------------------------------------------------------------------------------------------
# TableEditor: in-place changes, the way Visual FoxPro makes them
# --------------------------------------------------------------------------------------------


@dataclass
class _MemoFile:
    path: Path
    fh: BinaryIO
    block_size: int
    next_free: int
    dbase: bool


@dataclass
class _EditorState:
    layout: _Layout
    count: int
    language_driver: int
    codepage: str
    head: bytes
    descriptor_index: list[int]
    memo: _MemoFile | None = None


_CODEPAGE_BY_DRIVER = {v: k for k, v in LANGUAGE_DRIVERS.items()}


class TableEditor:
    """Change a table in place, as Visual FoxPro does.

    - :meth:`append` writes new records after the last one (and the EOF marker after them),
      then updates the header's record count: a reader never sees a count larger than the
      records on disk.
    - :meth:`update` replaces field values in one record; a memo is rewritten in its own
      blocks when the new text fits them, else in new blocks at the end of the memo file
      (the old blocks become unused space until a :meth:`pack`).
    - :meth:`delete` / :meth:`recall` set or clear the ``*`` flag.
    - :meth:`pack` removes deleted records and compacts the memo file.

    Field names are the names given to :func:`write_table` (long names) or the DBF names.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        codepage: str | None = None,
        long_names: Sequence[str] | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.path = Path(path)
        self._today = today
        self._fh: BinaryIO = open(self.path, "r+b")  # noqa: SIM115 (closed by close())
        try:
            self._state = self._read_header(codepage, long_names)
        except BaseException:
            self._fh.close()
            raise

    # -- opening ------------------------------------------------------------------------------

    def _read_header(self, codepage: str | None, long_names: Sequence[str] | None) -> _EditorState:
        where = self.path.name
        head = self._fh.read(32)
        if len(head) < 32:
            raise DbfWriteError(f"{where}: not a DBF table (file too short)")
        version = head[0]
        count, header_length, record_length = struct.unpack_from("<IHH", head, 4)
        vfp = version in VFP_VERSIONS
        if not vfp and version not in DBASE3_VERSIONS:
            raise DbfWriteError(f"{where}: cannot edit a table of version 0x{version:02X}")
        raw = self._fh.read(header_length - 32)
        specs: list[FieldSpec] = []
        autoinc: list[tuple[int, int]] = []
        offsets: list[int] = []
        descriptor_index: list[int] = []
        pos = 0
        while pos < len(raw) and raw[pos] != 0x0D:
            desc = raw[pos : pos + 32]
            if len(desc) < 32:
                raise DbfWriteError(f"{where}: field descriptors are cut short")
            name = desc[:11].split(b"\0", 1)[0].decode("ascii", "replace")
            ftype = chr(desc[11])
            flags = desc[18] if vfp else 0
            if ftype == "0" and flags & FLAG_SYSTEM:
                pos += 32
                continue
            length, decimals = desc[16], desc[17]
            implied = ftype in _IMPLIED_LENGTH
            specs.append(
                FieldSpec(
                    name,
                    ftype,
                    0 if implied else length,
                    decimals if ftype in "NFB" else 0,
                    nullable=bool(flags & FLAG_NULLABLE),
                    binary=bool(flags & FLAG_BINARY) and ftype in "CMV",
                    autoincrement=(flags & FLAG_AUTOINC) == FLAG_AUTOINC and ftype == "I",
                )
            )
            autoinc.append(struct.unpack_from("<IB", desc, 19))
            descriptor_index.append(pos // 32)
            offsets.append(struct.unpack_from("<I", desc, 12)[0])
            pos += 32
        if long_names is not None:
            if len(long_names) != len(specs):
                raise DbfWriteError(
                    f"{where}: {len(long_names)} long names for {len(specs)} fields"
                )
            layout = _build_layout(
                [
                    FieldSpec(
                        ln, s.type, s.length, s.decimals, s.nullable, s.binary, s.autoincrement
                    )
                    for ln, s in zip(long_names, specs, strict=True)
                ],
                version,
                True,
                where,
            )
            layout.columns = [
                _Column(
                    c.spec,
                    s.name,
                    c.offset,
                    c.length,
                    c.decimals,
                    c.flags,
                    c.null_bit,
                    c.varlen_bit,
                )
                for c, s in zip(layout.columns, specs, strict=True)
            ]
        else:
            layout = _build_layout(specs, version, False, where)
        if layout.record_length != record_length or layout.header_length != header_length:
            raise DbfWriteError(f"{where}: unexpected record layout; refusing to edit in place")
        for i, col in enumerate(layout.columns):
            if vfp and offsets[i] != col.offset:
                raise DbfWriteError(f"{where}: field {col.dbf_name} is not where expected")
            if col.spec.autoincrement:
                layout.columns[i] = _Column(
                    col.spec,
                    col.dbf_name,
                    col.offset,
                    col.length,
                    col.decimals,
                    col.flags,
                    col.null_bit,
                    col.varlen_bit,
                    autoinc[i][0],
                    autoinc[i][1] or 1,
                )
        ldid = head[29]
        if codepage is None:
            codepage = _CODEPAGE_BY_DRIVER.get(ldid, "cp1252")
        state = _EditorState(layout, count, ldid, codepage, bytes(head), descriptor_index)
        expected = header_length + count * record_length
        size = os.fstat(self._fh.fileno()).st_size
        if size < expected:
            raise DbfWriteError(f"{where}: file holds fewer records than its header says")
        if layout.has_memo:
            memo_path = _memo_path(self.path, version)
            if not memo_path.exists():
                alt = memo_path.with_suffix(memo_path.suffix.swapcase())
                memo_path = alt if alt.exists() else memo_path
            mfh: BinaryIO = open(memo_path, "r+b")  # noqa: SIM115 (closed by close())
            mhead = mfh.read(FPT_HEADER_SIZE)
            dbase = not vfp
            if dbase:
                next_free = struct.unpack_from("<I", mhead, 0)[0]
                block_size = DBT_BLOCK_SIZE
            else:
                next_free = struct.unpack_from(">I", mhead, 0)[0]
                block_size = struct.unpack_from(">H", mhead, 6)[0] or 512
            state.memo = _MemoFile(memo_path, mfh, block_size, next_free, dbase)
        return state

    def __enter__(self) -> TableEditor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the table and its memo file."""
        if self._state.memo is not None:
            self._state.memo.fh.close()
        self._fh.close()

    # -- inspection ---------------------------------------------------------------------------

    @property
    def record_count(self) -> int:
        """The number of records (live and deleted) in the header."""
        return self._state.count

    @property
    def field_names(self) -> list[str]:
        """Field names in table order (long names when given)."""
        return [c.spec.name for c in self._state.layout.columns]

    def read_raw(self, recno: int) -> bytes:
        """The stored bytes of record ``recno`` (1-based), flag byte included."""
        layout = self._state.layout
        self._check_recno(recno)
        self._fh.seek(layout.header_length + (recno - 1) * layout.record_length)
        return self._fh.read(layout.record_length)

    def memo_pointer(self, recno: int, name: str) -> int:
        """The first block of a memo field's value in record ``recno`` (0: none)."""
        col = self._column(name)
        raw = self.read_raw(recno)[col.offset : col.offset + col.length]
        if self._state.layout.vfp:
            return int(struct.unpack("<I", raw)[0])
        text = raw.strip()
        return int(text) if text.isdigit() else 0

    def _check_recno(self, recno: int) -> None:
        if not 1 <= recno <= self._state.count:
            raise DbfWriteError(
                f"{self.path.name}: record {recno} does not exist "
                f"(the table has {self._state.count})"
            )

    def _column(self, name: str) -> _Column:
        try:
            return self._state.layout.column(name)
        except KeyError:
            raise DbfWriteError(f"{self.path.name}: no field named {name!r}") from None

    def _ctx(self, first_row: int) -> _Context:
        return _Context(self.path.name, self._state.codepage, first_row)

    # -- changes ------------------------------------------------------------------------------

    def append(self, rows: Iterable[Mapping[str, object]] | pa.Table) -> list[int]:
        """Append records; returns their record numbers."""
        st = self._state
        layout = st.layout
        where = self.path.name
        named_rows: Iterable[Mapping[str, object]] | pa.Table
        if isinstance(rows, pa.Table):
            named_rows = rows.rename_columns([self._column(c).spec.name for c in rows.column_names])
        else:
            named_rows = [{self._column(k).spec.name: v for k, v in r.items()} for r in rows]
        ctx = self._ctx(st.count + 1)
        columns, n = _rows_to_columns(layout, named_rows, where)
        if n == 0:
            return []
        columns = _fill_autoincrement(layout, columns, n, ctx)
        records, memo_columns = _encode_records(layout, columns, n, ctx, None)
        if memo_columns:
            memo = st.memo
            assert memo is not None
            for col, enc in memo_columns:
                assert enc.memos is not None
                blocks = [
                    self._memo_write(data, _memo_type(col), None) if data else 0
                    for data in enc.memos
                ]
                records[:, col.offset : col.offset + col.length] = _memo_pointer_bytes(
                    blocks, layout.vfp
                )
            self._memo_sync_header()
        self._fh.seek(layout.header_length + st.count * layout.record_length)
        self._fh.write(records.data)
        self._fh.write(bytes((EOF_MARKER,)))
        self._fh.truncate()
        self._fh.flush()
        first = st.count + 1
        st.count += n
        self._write_header()
        return list(range(first, first + n))

    def update(self, recno: int, values: Mapping[str, object]) -> None:
        """Replace some field values of record ``recno`` (memos in place when they fit)."""
        st = self._state
        layout = st.layout
        raw = bytearray(self.read_raw(recno))
        ctx = self._ctx(recno)
        nullflags_end = layout.nullflags_offset + layout.nullflags_length
        nullflags = bytearray(raw[layout.nullflags_offset : nullflags_end])
        for name, value in values.items():
            col = self._column(name)
            if col.spec.autoincrement:
                raise DbfWriteError(f"{self.path.name}: field {col.spec.name} is autoincrement")
            enc = _encode_column(col, [value], 1, ctx, layout.vfp)
            if enc.memos is not None:
                data = enc.memos[0]
                old = self._pointer_from(bytes(raw[col.offset : col.offset + col.length]))
                block = self._memo_write(data, _memo_type(col), old) if data else 0
                enc.data = _memo_pointer_bytes([block], layout.vfp)
            raw[col.offset : col.offset + col.length] = enc.data[0].tobytes()
            for bit, flag in ((col.null_bit, enc.null), (col.varlen_bit, enc.short)):
                if bit is None:
                    continue
                on = bool(flag[0]) if flag is not None else False
                if on:
                    nullflags[bit // 8] |= 1 << (bit % 8)
                else:
                    nullflags[bit // 8] &= ~(1 << (bit % 8)) & 0xFF
        raw[layout.nullflags_offset : nullflags_end] = nullflags
        self._memo_sync_header()
        self._fh.seek(layout.header_length + (recno - 1) * layout.record_length)
        self._fh.write(raw)
        self._write_header()

    def delete(self, recno: int) -> None:
        """Mark record ``recno`` deleted (flag byte ``*``)."""
        self._set_flag(recno, b"*")

    def recall(self, recno: int) -> None:
        """Clear the deleted flag of record ``recno``."""
        self._set_flag(recno, b" ")

    def _set_flag(self, recno: int, flag: bytes) -> None:
        self._check_recno(recno)
        layout = self._state.layout
        self._fh.seek(layout.header_length + (recno - 1) * layout.record_length)
        self._fh.write(flag)
        self._write_header()

    def pack(self) -> int:
        """Remove deleted records and compact the memo file; returns how many were removed."""
        st = self._state
        layout = st.layout
        self._fh.seek(layout.header_length)
        body = self._fh.read(st.count * layout.record_length)
        records = np.frombuffer(body, dtype=np.uint8).reshape(st.count, layout.record_length)
        keep = records[:, 0] != ord("*")
        live = records[keep].copy()
        removed = int(st.count - live.shape[0])
        memo_cols = [c for c in layout.columns if c.spec.type in MEMO_TYPES]
        if memo_cols and st.memo is not None:
            self._pack_memo(live, memo_cols)
        tmp = self.path.with_name(self.path.name + ".pack")
        with open(tmp, "wb") as out:
            self._fh.seek(0)
            out.write(self._fh.read(layout.header_length))
            out.write(live.data)
            out.write(bytes((EOF_MARKER,)))
        self._fh.close()
        os.replace(tmp, self.path)
        self._fh = open(self.path, "r+b")  # noqa: SIM115 (closed by close())
        st.count = live.shape[0]
        self._write_header()
        return removed

    def _pack_memo(self, live: U8, memo_cols: list[_Column]) -> None:
        memo = self._state.memo
        assert memo is not None
        vfp = self._state.layout.vfp
        tmp = memo.path.with_name(memo.path.name + ".pack")
        first = 1 if memo.dbase else _first_block(memo.block_size)
        with open(tmp, "wb") as out:
            out.write(_memo_header(memo.block_size, first, memo.dbase))
            sink = _MemoSink(out, memo.block_size, first, memo.dbase)
            for row in range(live.shape[0]):
                for col in memo_cols:
                    ptr = self._pointer_from(live[row, col.offset : col.offset + col.length])
                    if ptr == 0:
                        continue
                    memo_type, data = self._memo_read(ptr)
                    new = sink.add(data, memo_type)
                    live[row, col.offset : col.offset + col.length] = _memo_pointer_bytes(
                        [new], vfp
                    )[0]
            sink.flush()
            out.seek(0)
            out.write(_memo_header(memo.block_size, sink.next_free, memo.dbase)[:FPT_HEADER_SIZE])
            next_free = sink.next_free
        memo.fh.close()
        os.replace(tmp, memo.path)
        memo.fh = open(memo.path, "r+b")  # noqa: SIM115 (closed by close())
        memo.next_free = next_free

    # -- memo blocks --------------------------------------------------------------------------

    def _pointer_from(self, raw: bytes | U8) -> int:
        data = bytes(raw)
        if self._state.layout.vfp:
            return int(struct.unpack("<I", data)[0])
        text = data.strip()
        return int(text) if text.isdigit() else 0

    def _memo_read(self, block: int) -> tuple[int, bytes]:
        memo = self._state.memo
        assert memo is not None
        memo.fh.seek(block * memo.block_size)
        if memo.dbase:
            chunks = []
            while True:
                chunk = memo.fh.read(DBT_BLOCK_SIZE)
                if not chunk:
                    break
                end = chunk.find(b"\x1a")
                if end >= 0:
                    chunks.append(chunk[:end])
                    break
                chunks.append(chunk)
            return 1, b"".join(chunks)
        memo_type, length = struct.unpack(">II", memo.fh.read(8))
        return memo_type, memo.fh.read(length)

    def _memo_blocks_used(self, block: int) -> int:
        memo = self._state.memo
        assert memo is not None
        if memo.dbase:
            _t, data = self._memo_read(block)
            return -(-(len(data) + 2) // DBT_BLOCK_SIZE)
        memo.fh.seek(block * memo.block_size)
        length = int(struct.unpack(">II", memo.fh.read(8))[1])
        return -(-(length + 8) // memo.block_size)

    def _memo_write(self, data: bytes | None, memo_type: int, old_block: int | None) -> int:
        memo = self._state.memo
        assert memo is not None
        if not data:
            return 0
        if memo.dbase:
            if b"\x1a" in data:
                raise DbfWriteError(f"{memo.path.name}: a dBase III memo cannot contain 0x1A")
            payload = data + b"\x1a\x1a"
        else:
            payload = struct.pack(">II", memo_type, len(data)) + data
        need = -(-len(payload) // memo.block_size)
        if old_block and self._memo_blocks_used(old_block) >= need:
            block = old_block  # fits: rewrite in place, as Visual FoxPro does
        else:
            block = memo.next_free
            memo.next_free += need
        memo.fh.seek(block * memo.block_size)
        pad = need * memo.block_size - len(payload)
        memo.fh.write(payload + b"\0" * pad)
        return block

    def _memo_sync_header(self) -> None:
        memo = self._state.memo
        if memo is None:
            return
        memo.fh.seek(0)
        if memo.dbase:
            memo.fh.write(struct.pack("<I", memo.next_free))
        else:
            memo.fh.write(struct.pack(">I", memo.next_free))
        memo.fh.flush()

    def _write_header(self) -> None:
        """Rewrite the record count, the last-update date and the autoincrement counters."""
        st = self._state
        today = self._today or dt.date.today()
        head = bytearray(st.head)
        year = today.year - 1900
        head[1:4] = bytes((max(0, min(255, year)), today.month, today.day))
        struct.pack_into("<I", head, 4, st.count)
        self._fh.seek(0)
        self._fh.write(head)
        for i, col in enumerate(st.layout.columns):
            if col.spec.autoincrement:
                self._fh.seek(32 + 32 * st.descriptor_index[i] + 19)
                self._fh.write(struct.pack("<I", col.autoinc_next))
        self._fh.flush()
