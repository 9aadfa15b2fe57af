"""Field specs for the writer, and the record layout they give.

:class:`FieldSpec` is what a caller asks for; :func:`build_layout` checks it against the table's
version (types, lengths, decimals, flags, names) and places every field: its DBF name (long
names cut to 10 characters when the table belongs to a DBC), its offset, its flags and its bits
in the ``_NullFlags`` system field. :class:`DbfWriteError` is the one error of the writer.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "LANGUAGE_DRIVERS",
    "Column",
    "DbfWriteError",
    "FieldSpec",
    "Layout",
    "build_layout",
    "choose_version",
    "date_bytes",
    "language_driver",
]

VFP_VERSIONS = (0x30, 0x31, 0x32)
DBASE3_VERSIONS = (0x03, 0x83)
VFP_TYPES = frozenset("CNFDLMIBYTVQWG")
DBASE3_TYPES = frozenset("CNFDLM")
MEMO_TYPES = frozenset("MGW")
VAR_TYPES = frozenset("VQ")
BACKLINK_SIZE = 263
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

IMPLIED_LENGTH = {"D": 8, "L": 1, "M": 4, "G": 4, "W": 4, "I": 4, "B": 8, "Y": 8, "T": 8}
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
class Column:
    """One field placed in the record: the checked spec and where its bytes and bits are."""

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

    @property
    def span(self) -> slice:
        """The field's bytes within a record."""
        return slice(self.offset, self.offset + self.length)


@dataclass
class Layout:
    """The record layout of a table: its fields in order and the sizes of header and record."""

    version: int
    columns: list[Column]
    record_length: int
    header_length: int
    nullflags_offset: int
    nullflags_length: int
    has_memo: bool

    @property
    def vfp(self) -> bool:
        return self.version in VFP_VERSIONS

    @property
    def nullflags_span(self) -> slice:
        """The ``_NullFlags`` bytes within a record."""
        return slice(self.nullflags_offset, self.nullflags_offset + self.nullflags_length)

    def record_offset(self, index: int) -> int:
        """Where record ``index`` (0-based) starts in the DBF."""
        return self.header_length + index * self.record_length

    def column(self, name: str) -> Column:
        key = name.upper()
        for col in self.columns:
            if col.spec.name == name or col.dbf_name == key or col.spec.name.upper() == key:
                return col
        raise KeyError(name)

    def set_autoinc(self, i: int, nxt: int, step: int | None = None) -> None:
        """Set the autoincrement counter (next value, and step when given) of field ``i``."""
        col = self.columns[i]
        step = col.autoinc_step if step is None else step
        self.columns[i] = dataclasses.replace(col, autoinc_next=nxt, autoinc_step=step)


def choose_version(fields: Sequence[FieldSpec]) -> int:
    """The Visual FoxPro version the field types need (0x32 with V/Q/W, 0x31 autoincrement)."""
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


def build_layout(fields: Sequence[FieldSpec], version: int, bound: bool, where: str) -> Layout:
    """Check ``fields`` for a table of ``version`` and place them; ``bound``: in a DBC."""
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
    columns: list[Column] = []
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
        checked = dataclasses.replace(spec, type=ftype, length=length, decimals=decimals)
        columns.append(
            Column(checked, dbf_name, offset, length, decimals, flags, null_bit, varlen_bit)
        )
        offset += length
    nullflags_offset = offset
    nullflags_length = (bit + 7) // 8
    record_length = offset + nullflags_length
    if record_length > 65500:
        raise DbfWriteError(f"{where}: records of {record_length} bytes are too long (max 65500)")
    n_desc = len(columns) + (1 if nullflags_length else 0)
    header_length = 32 + 32 * n_desc + 1 + (BACKLINK_SIZE if vfp else 0)
    return Layout(
        version,
        columns,
        record_length,
        header_length,
        nullflags_offset,
        nullflags_length,
        has_memo,
    )


def _field_size(spec: FieldSpec, ftype: str, vfp: bool, label: str) -> tuple[int, int]:
    if ftype in IMPLIED_LENGTH:
        length = IMPLIED_LENGTH[ftype]
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


def language_driver(codepage: str, where: str) -> tuple[str, int]:
    """The codec name and language-driver byte of ``codepage``."""
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


def date_bytes(day: dt.date) -> bytes:
    """The header's last-update date (bytes 1..3): years since 1900, month, day."""
    year = day.year - 1900  # as dBase and Visual FoxPro 6+ store it
    return bytes((max(0, min(255, year)), day.month, day.day))
