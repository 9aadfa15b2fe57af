"""A writer of Visual FoxPro database containers (``.dbc`` + ``.dct``).

The container is itself a VFP table with one record per object (the database, its tables and
their fields), linked by parent ids; a table's record holds its path and the field records
hold the long field names that the DBF cuts to 10 characters.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from rxvault.dbf._field_spec import LANGUAGE_DRIVERS, DbfWriteError, FieldSpec, build_layout
from rxvault.dbf._memo_blocks import memo_path, write_memos
from rxvault.dbf._records import encode_records, rows_to_columns
from rxvault.dbf._values import Context
from rxvault.dbf._writer import header_bytes, write_dbf_file

__all__ = ["write_dbc"]

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
    layout = build_layout(_DBC_FIELDS, 0x30, False, path.name)
    ctx = Context(path.name, "cp1252")
    columns, n = rows_to_columns(layout, rows, path.name)
    records, memo_columns = encode_records(layout, columns, n, ctx, None)
    write_memos(
        memo_path(path, 0x30, dbc=True),
        records,
        memo_columns,
        block_size=64,
        dbase=False,
        vfp=True,
        ctx=ctx,
    )
    header = header_bytes(
        layout, n, last_update or dt.date.today(), LANGUAGE_DRIVERS["cp1252"], "", table_flags=0x04
    )
    write_dbf_file(path, header, records)
