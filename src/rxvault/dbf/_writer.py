"""A writer of Visual FoxPro and dBase III tables, for tests and the demo pharmacy.

It writes what Visual FoxPro writes: a DBF (versions 0x30/0x31/0x32, or dBase III 0x03/0x83)
with its field descriptors and flags (system, nullable, binary, autoincrement with next value
and step), the ``_NullFlags`` system field (for each field in order: one bit for a V/Q field's
"shorter than the field" marker, then one bit if the field is nullable), an FPT memo file with
any block size (a DBT for dBase III), the code page's language-driver byte, the DBC backlink and
the 0x1A end-of-file marker.

Rows are encoded column by column with numpy, so a million rows take seconds, not minutes.
The parts: :mod:`._field_spec` (fields and layout), :mod:`._records` with the per-type
encoders (:mod:`._text_values`, :mod:`._decimal_values`, :mod:`._scalar_values`),
:mod:`._memo_blocks` (FPT/DBT), :mod:`._dbc_writer` (``write_dbc``) and :mod:`._editor`
(``TableEditor``, in-place changes).
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from rxvault.dbf._field_spec import (
    BACKLINK_SIZE,
    EOF_MARKER,
    FLAG_BINARY,
    FLAG_SYSTEM,
    DbfWriteError,
    FieldSpec,
    Layout,
    build_layout,
    choose_version,
    date_bytes,
    language_driver,
)
from rxvault.dbf._memo_blocks import DBT_BLOCK_SIZE, memo_path, write_memos
from rxvault.dbf._records import encode_records, fill_autoincrement, rows_to_columns
from rxvault.dbf._values import U8, Context

__all__ = ["header_bytes", "write_dbf_file", "write_table"]


def header_bytes(
    layout: Layout,
    count: int,
    last_update: dt.date,
    language_driver: int,
    backlink: str,
    *,
    table_flags: int = 0,
) -> bytes:
    """The DBF header: table header, field descriptors, terminator and (VFP) DBC backlink."""
    head = bytearray(32)
    head[0] = layout.version
    head[1:4] = date_bytes(last_update)
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


def write_dbf_file(path: Path, header: bytes, records: U8) -> None:
    """Write a whole DBF: header, records and the end-of-file marker."""
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(records.data)
        fh.write(bytes((EOF_MARKER,)))


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
    ver = choose_version(fields) if version is None else version
    if ver == 0x03 and any(f.type.upper() == "M" for f in fields):
        ver = 0x83
    layout = build_layout(fields, ver, dbc is not None, where)
    cp_name, ldid = language_driver(codepage, where)
    dbase = not layout.vfp
    if dbase:
        block_size = DBT_BLOCK_SIZE
    else:
        if not 1 <= memo_block_size <= 32768:
            raise DbfWriteError(f"{where}: memo block size must be 1..32768, not {memo_block_size}")
        block_size = memo_block_size
    for i, col in enumerate(layout.columns):
        if col.spec.autoincrement and autoincrement_next and col.spec.name in autoincrement_next:
            layout.set_autoinc(i, autoincrement_next[col.spec.name])
    ctx = Context(where, cp_name)
    columns, n = rows_to_columns(layout, rows, where)
    columns = fill_autoincrement(layout, columns, n, ctx)
    records, memo_columns = encode_records(layout, columns, n, ctx, deleted)
    backlink = _backlink(path, dbc)
    today = last_update or dt.date.today()
    if layout.has_memo:
        write_memos(
            memo_path(path, ver),
            records,
            memo_columns,
            block_size=block_size,
            dbase=dbase,
            vfp=layout.vfp,
            ctx=ctx,
        )
    write_dbf_file(path, header_bytes(layout, n, today, ldid, backlink), records)
