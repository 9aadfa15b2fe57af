"""Tiny byte-level builders of DBF/FPT/DBT files for the reader's unit tests.

Written with ``struct`` straight from the file format, independent of the reader and of the
project's writer, so the tests can also build broken files.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class F:
    """A field descriptor."""

    name: str
    type: str
    length: int
    decimals: int = 0
    flags: int = 0


def dbf_bytes(
    fields: Sequence[F],
    records: Sequence[bytes],
    *,
    version: int = 0x30,
    language_driver: int = 0x03,
    flags: Sequence[int] | None = None,
    count: int | None = None,
    record_length: int | None = None,
    header_length: int | None = None,
    terminator: bytes = b"\r",
    backlink: bytes | None = None,
    table_flags: int = 0,
    eof: bytes = b"\x1a",
    dbase7: bool = False,
) -> bytes:
    """A whole table. ``records`` are the record bodies (without the flag byte)."""
    vfp = version in (0x30, 0x31, 0x32)
    rl = record_length if record_length is not None else 1 + sum(f.length for f in fields)
    descriptors = b""
    offset = 1
    for f in fields:
        if dbase7:
            descriptors += struct.pack(
                "<32scBB2xB2xI4x", f.name.encode(), f.type.encode(), f.length, f.decimals, 0, 0
            )
        else:
            descriptors += struct.pack(
                "<11scIBBB13x",
                f.name.encode("latin-1"),
                f.type.encode(),
                offset,
                f.length,
                f.decimals,
                f.flags,
            )
        offset += f.length
    prefix_len = 68 if dbase7 else 32
    tail = terminator + ((backlink or b"").ljust(263, b"\0") if vfp else b"")
    hl = header_length if header_length is not None else prefix_len + len(descriptors) + len(tail)
    n = count if count is not None else len(records)
    header = struct.pack(
        "<B3BIHH16xBB2x", version, 124, 12, 4, n, hl, rl, table_flags, language_driver
    )
    if dbase7:
        header += b"\0" * 36
    body = bytearray()
    for i, rec in enumerate(records):
        flag = flags[i] if flags is not None else 0x20
        body += bytes([flag]) + rec
    head = header + descriptors + tail
    head = head[:hl].ljust(hl, b"\0")
    return head + bytes(body) + eof


def write_dbf(path: Path, fields: Sequence[F], records: Sequence[bytes], **kw: object) -> Path:
    path.write_bytes(dbf_bytes(fields, records, **kw))  # type: ignore[arg-type]
    return path


def fpt_bytes(
    memos: Sequence[tuple[int, bytes]], *, block_size: int = 64
) -> tuple[bytes, list[int]]:
    """An FPT with the given (type, data) memos; returns it and each memo's block number."""
    first = -(-512 // block_size)
    blocks = bytearray()
    pointers = []
    block = first
    for kind, data in memos:
        pointers.append(block)
        chunk = struct.pack(">II", kind, len(data)) + data
        padded = -(-len(chunk) // block_size) * block_size
        blocks += chunk.ljust(padded, b"\0")
        block += padded // block_size
    header = struct.pack(">I2xH", block, block_size).ljust(first * block_size, b"\0")
    return header + bytes(blocks), pointers


def dbt3_bytes(memos: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """A dBase III DBT (512-byte blocks, memos ended by 0x1A 0x1A)."""
    blocks = bytearray()
    pointers = []
    block = 1
    for data in memos:
        pointers.append(block)
        chunk = data + b"\x1a\x1a"
        padded = -(-len(chunk) // 512) * 512
        blocks += chunk.ljust(padded, b"\0")
        block += padded // 512
    header = struct.pack("<I", block).ljust(512, b"\0")
    return header + bytes(blocks), pointers


def dbt4_bytes(memos: Sequence[bytes], *, block_size: int = 512) -> tuple[bytes, list[int]]:
    """A dBase IV DBT (block size at offset 20; blocks start FF FF 08 00 + length)."""
    blocks = bytearray()
    pointers = []
    first = -(-512 // block_size)
    block = first
    for data in memos:
        pointers.append(block)
        chunk = b"\xff\xff\x08\x00" + struct.pack("<I", len(data) + 8) + data
        padded = -(-len(chunk) // block_size) * block_size
        blocks += chunk.ljust(padded, b"\0")
        block += padded // block_size
    header = struct.pack("<I16xH", block, block_size).ljust(first * block_size, b"\0")
    return header + bytes(blocks), pointers


def c(text: str | bytes, width: int, codec: str = "cp1252") -> bytes:
    raw = text.encode(codec) if isinstance(text, str) else text
    return raw.ljust(width, b" ")


def n(text: str, width: int) -> bytes:
    return text.encode("ascii").rjust(width, b" ")


def i4(value: int) -> bytes:
    return struct.pack("<i", value)


def ptr(block: int) -> bytes:
    return struct.pack("<I", block)
