"""The table header: version, counts, code page, field descriptors, backlink."""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from rxvault.dbf._codepages import codepage_for
from rxvault.dbf._errors import (
    HeaderError,
    RecordLengthError,
    Reporter,
    TerminatorError,
    UnsupportedTable,
)

VERSION_NAMES: dict[int, str] = {
    0x02: "dBase II",
    0x03: "dBase III / FoxBASE+ (no memo)",
    0x04: "dBase IV/7 (no memo)",
    0x05: "dBase V (no memo)",
    0x07: "Visual Objects (no memo)",
    0x30: "Visual FoxPro",
    0x31: "Visual FoxPro (autoincrement)",
    0x32: "Visual FoxPro (varchar/varbinary)",
    0x43: "dBase IV SQL table",
    0x63: "dBase IV SQL system table",
    0x83: "dBase III+ with memo",
    0x87: "Visual Objects with memo",
    0x8B: "dBase IV with memo",
    0x8C: "dBase 7 with memo",
    0xCB: "dBase IV SQL table with memo",
    0xE5: "Clipper SIX with memo",
    0xF5: "FoxPro 2.x with memo",
    0xFB: "FoxBASE",
}

VFP_VERSIONS = frozenset({0x30, 0x31, 0x32})

#: Field types we decode, by the table family that defines them.
KNOWN_TYPES = frozenset("CNFDLMIBYTVQWGP@+O0")
MEMO_TYPES = frozenset("MGPW")

FLAG_SYSTEM = 0x01
FLAG_NULLABLE = 0x02
FLAG_BINARY = 0x04
FLAG_AUTOINCREMENT = 0x08


@dataclass(frozen=True)
class Field:
    """One field descriptor, as stored, plus what the reader derived from it."""

    name: str
    type: str
    length: int
    decimals: int
    offset: int
    flags: int = 0
    long_name: str | None = None
    #: dBase 7 layout (big-endian I/+/O/@ encodings)
    dbase7: bool = False
    #: memo pointer stored as a 4-byte integer (VFP) rather than 10 ASCII digits
    binary_pointer: bool = False
    #: bit numbers in ``_NullFlags`` (None when the field has none)
    null_bit: int | None = field(default=None, repr=False)
    varlength_bit: int | None = field(default=None, repr=False)

    @property
    def system(self) -> bool:
        return bool(self.flags & FLAG_SYSTEM)

    @property
    def nullable(self) -> bool:
        return bool(self.flags & FLAG_NULLABLE)

    @property
    def autoincrement(self) -> bool:
        return self.type == "+" or (self.type == "I" and bool(self.flags & FLAG_AUTOINCREMENT))

    @property
    def binary(self) -> bool:
        """NOCPTRANS (C, V, M) or inherently binary (Q, G, W, P, dBase binary memo)."""
        if self.type in "QGWP" or self.is_binary_memo:
            return True
        return self.type in "CVM" and bool(self.flags & FLAG_BINARY)

    @property
    def is_memo(self) -> bool:
        return self.type in MEMO_TYPES or self.is_binary_memo

    @property
    def is_binary_memo(self) -> bool:
        """dBase 5/7 ``B``: a binary memo (10-byte pointer), not VFP's 8-byte double."""
        return self.type == "B" and self.length != 8

    @property
    def column_name(self) -> str:
        return self.long_name or self.name

    @property
    def arrow_type(self) -> pa.DataType:
        t = self.type
        if t in "NF":
            if self.decimals == 0 and self.length <= 18:
                return pa.int64()
            precision = min(38, max(self.length, self.decimals + 1, 1))
            return pa.decimal128(precision, min(self.decimals, precision))
        if t == "C":
            return pa.binary() if self.binary else pa.string()
        if t == "V":
            return pa.binary() if self.binary else pa.string()
        if t == "M":
            return pa.binary() if self.binary else pa.string()
        if t in "QGWP" or self.is_binary_memo:
            return pa.binary()
        if t == "D":
            return pa.date32()
        if t in "T@":
            return pa.timestamp("ms")
        if t == "L":
            return pa.bool_()
        if t in "I+":
            return pa.int32()
        if t in "BO":
            return pa.float64()
        if t == "Y":
            return pa.decimal128(19, 4)
        return pa.binary()


@dataclass
class Header:
    """The parsed header of a table file."""

    version: int
    last_update: dt.date | None
    record_count: int
    header_length: int
    record_length: int
    table_flags: int
    language_driver: int
    fields: list[Field]  # including _NullFlags
    backlink: str | None
    dbase7: bool

    @property
    def version_name(self) -> str:
        return VERSION_NAMES.get(self.version, f"unknown (0x{self.version:02X})")

    @property
    def is_vfp(self) -> bool:
        return self.version in VFP_VERSIONS

    @property
    def nullflags(self) -> Field | None:
        for f in self.fields:
            if f.type == "0":
                return f
        return None


def _last_update(raw: bytes) -> dt.date | None:
    yy, mm, dd = raw
    year = 1900 + yy
    if year < 1980:  # some writers store the year modulo 100; no DBF predates 1980
        year += 100
    try:
        return dt.date(year, mm, dd)
    except ValueError:
        return None


def _decode_name(raw: bytes, codec: str | None) -> str:
    raw = raw.split(b"\0", 1)[0].rstrip(b" ")
    for candidate in ("ascii", codec, "utf-8"):
        if candidate:
            try:
                return raw.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                continue
    return raw.decode("latin-1")


@dataclass
class _Raw:
    name: bytes
    type: str
    length: int
    decimals: int
    flags: int


def _descriptors(data: bytes, start: int, step: int, limit: int) -> tuple[list[_Raw], int | None]:
    """Read descriptors from ``start``; returns them and the terminator offset (None if absent)."""
    out: list[_Raw] = []
    off = start
    while off < limit:
        if data[off] == 0x0D:
            return out, off
        if off + step > limit:
            break
        d = data[off : off + step]
        if step == 32:
            if d[0] == 0:
                break
            out.append(_Raw(d[:11], chr(d[11]), d[16], d[17], d[18]))
        else:
            if d[0] == 0:
                break
            out.append(_Raw(d[:32], chr(d[32]), d[33], d[34], 0))
        off += step
    return out, None


def _field_lengths(raws: list[_Raw], record_length: int) -> list[int]:
    """Field lengths; C fields may keep a high length byte in the decimals byte (Clipper/Fox)."""
    plain = [r.length for r in raws]
    if 1 + sum(plain) == record_length:
        return plain
    wide = [r.length + 256 * r.decimals if r.type == "C" else r.length for r in raws]
    if 1 + sum(wide) == record_length:
        return wide
    return plain


def parse_header(
    path: Path, data: bytes, file_size: int, reporter: Reporter, codec: str | None
) -> Header:
    """Parse the header bytes (``data`` holds at least the whole header if the file has it)."""
    if file_size < 32 or len(data) < 32:
        raise HeaderError(path, f"file is {file_size} bytes, shorter than a 32-byte DBF header")
    version = data[0]
    if version == 0x02:
        raise UnsupportedTable(
            path, "dBase II table (version 0x02): its header layout is not supported"
        )
    if version not in VERSION_NAMES:
        reporter.error(
            UnsupportedTable(
                path,
                f"unknown table version byte 0x{version:02X} (not a dBase, FoxPro or Visual "
                "FoxPro version); read in lenient mode as the header's lengths describe it",
            )
        )
    count, header_length, record_length = struct.unpack_from("<IHH", data, 4)
    table_flags, language_driver = data[28], data[29]
    if header_length < 33:
        raise HeaderError(path, f"header length {header_length} is too short for a DBF header")
    if header_length > file_size:
        raise HeaderError(
            path, f"header length {header_length} is larger than the file ({file_size} bytes)"
        )
    if record_length < 1:
        raise HeaderError(path, f"record length {record_length} is invalid")

    name_codec = codec or codepage_for(language_driver)[0]
    limit = min(header_length, len(data))
    layouts: list[tuple[bool, list[_Raw], int | None]] = []
    if version & 0x07 == 0x04 and limit >= 68:
        raws, term = _descriptors(data, 68, 48, limit)
        layouts.append((True, raws, term))
    raws, term = _descriptors(data, 32, 32, limit)
    layouts.append((False, raws, term))

    def score(item: tuple[bool, list[_Raw], int | None]) -> tuple[int, int]:
        _, rs, t = item
        consistent = 1 + sum(_field_lengths(rs, record_length)) == record_length
        return (int(consistent) + int(t is not None), 0)

    dbase7, raws, term = max(layouts, key=score)
    if term is None:
        reporter.error(
            TerminatorError(
                path,
                f"no 0x0D terminator after the {len(raws)} field descriptors "
                f"(header length {header_length})",
            )
        )
    lengths = _field_lengths(raws, record_length)
    if 1 + sum(lengths) != record_length:
        reporter.error(
            RecordLengthError(
                path,
                f"record length in header is {record_length} but 1 + the field lengths "
                f"is {1 + sum(lengths)}",
            )
        )

    is_vfp = version in VFP_VERSIONS
    fields: list[Field] = []
    offset = 1
    null_bit = 0
    for raw, length in zip(raws, lengths, strict=True):
        name = _decode_name(raw.name, name_codec)
        ftype = raw.type.upper() if raw.type.isalpha() else raw.type
        decimals = raw.decimals if ftype != "C" or length == raw.length else 0
        binary_pointer = ftype in MEMO_TYPES and length == 4
        if ftype == "B" and length != 8:
            binary_pointer = length == 4
        fields.append(
            Field(
                name=name,
                type=ftype,
                length=length,
                decimals=decimals,
                offset=offset,
                flags=raw.flags,
                dbase7=dbase7,
                binary_pointer=binary_pointer,
            )
        )
        offset += length
    # _NullFlags bits, in field order: a V/Q field's "shorter than full" bit first, then its
    # null bit (Visual FoxPro's layout).
    has_nullflags = any(f.type == "0" for f in fields)
    if has_nullflags:
        numbered: list[Field] = []
        for f in fields:
            var_bit = nul_bit = None
            if f.type in "VQ":
                var_bit, null_bit = null_bit, null_bit + 1
            if f.nullable and f.type != "0":
                nul_bit, null_bit = null_bit, null_bit + 1
            numbered.append(_with_bits(f, nul_bit, var_bit))
        fields = numbered

    backlink: str | None = None
    if is_vfp and term is not None and header_length - (term + 1) >= 263:
        link = data[term + 1 : term + 1 + 263].split(b"\0", 1)[0]
        backlink = link.decode(name_codec or "latin-1", errors="replace") or None
    return Header(
        version=version,
        last_update=_last_update(data[1:4]),
        record_count=count,
        header_length=header_length,
        record_length=record_length,
        table_flags=table_flags,
        language_driver=language_driver,
        fields=fields,
        backlink=backlink,
        dbase7=dbase7,
    )


def _with_bits(f: Field, null_bit: int | None, varlength_bit: int | None) -> Field:
    return replace(f, null_bit=null_bit, varlength_bit=varlength_bit)
