"""The state of a table opened for in-place edits, read back from its header.

The field descriptors are turned back into :class:`FieldSpec` values and laid out again with
:func:`build_layout`; a table whose stored layout differs from that (offsets, record or header
length) is refused rather than edited. Autoincrement counters and the memo file come along.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rxvault.dbf._field_spec import (
    DBASE3_VERSIONS,
    FLAG_AUTOINC,
    FLAG_BINARY,
    FLAG_NULLABLE,
    FLAG_SYSTEM,
    IMPLIED_LENGTH,
    LANGUAGE_DRIVERS,
    VFP_VERSIONS,
    DbfWriteError,
    FieldSpec,
    Layout,
    build_layout,
)
from rxvault.dbf._memo_blocks import MemoFile

__all__ = ["EditorState", "read_state"]

_CODEPAGE_BY_DRIVER = {v: k for k, v in LANGUAGE_DRIVERS.items()}


@dataclass
class EditorState:
    """What an editor knows of its table: layout, record count, code page, memo file."""

    layout: Layout
    count: int
    language_driver: int
    codepage: str
    head: bytes
    descriptor_index: list[int]
    memo: MemoFile | None = None


def read_state(
    fh: BinaryIO, path: Path, codepage: str | None, long_names: Sequence[str] | None
) -> EditorState:
    """Read the header of the table open in ``fh`` (at offset 0) and open its memo file."""
    where = path.name
    head = fh.read(32)
    if len(head) < 32:
        raise DbfWriteError(f"{where}: not a DBF table (file too short)")
    version = head[0]
    count, header_length, record_length = struct.unpack_from("<IHH", head, 4)
    vfp = version in VFP_VERSIONS
    if not vfp and version not in DBASE3_VERSIONS:
        raise DbfWriteError(f"{where}: cannot edit a table of version 0x{version:02X}")
    raw = fh.read(header_length - 32)
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
        implied = ftype in IMPLIED_LENGTH
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
            raise DbfWriteError(f"{where}: {len(long_names)} long names for {len(specs)} fields")
        named = [dataclasses.replace(s, name=ln) for ln, s in zip(long_names, specs, strict=True)]
        layout = build_layout(named, version, True, where)
        layout.columns = [
            dataclasses.replace(c, dbf_name=s.name)
            for c, s in zip(layout.columns, specs, strict=True)
        ]
    else:
        layout = build_layout(specs, version, False, where)
    if layout.record_length != record_length or layout.header_length != header_length:
        raise DbfWriteError(f"{where}: unexpected record layout; refusing to edit in place")
    for i, col in enumerate(layout.columns):
        if vfp and offsets[i] != col.offset:
            raise DbfWriteError(f"{where}: field {col.dbf_name} is not where expected")
        if col.spec.autoincrement:
            layout.set_autoinc(i, autoinc[i][0], autoinc[i][1] or 1)
    ldid = head[29]
    if codepage is None:
        codepage = _CODEPAGE_BY_DRIVER.get(ldid, "cp1252")
    state = EditorState(layout, count, ldid, codepage, bytes(head), descriptor_index)
    expected = header_length + count * record_length
    size = os.fstat(fh.fileno()).st_size
    if size < expected:
        raise DbfWriteError(f"{where}: file holds fewer records than its header says")
    if layout.has_memo:
        state.memo = MemoFile.open(path, version)
    return state
