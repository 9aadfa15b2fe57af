"""Memo files as the writer makes them: FPT (Visual FoxPro) and DBT (dBase III).

A memo value takes whole blocks: in an FPT an 8-byte block header (type, length, big-endian)
then the data; in a DBT the data then two 0x1A bytes. The file header holds the next free block
(and an FPT's block size). :class:`MemoSink` appends blocks to a new file; :class:`MemoFile`
is a memo file opened for in-place edits (read, rewrite in the same blocks, compact).
The DBF field holds the first block: 4 bytes little-endian (VFP) or 10 ASCII digits (dBase).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rxvault.dbf._field_spec import DBASE3_VERSIONS, Column, DbfWriteError
from rxvault.dbf._values import U8, Context, Encoded

__all__ = [
    "DBT_BLOCK_SIZE",
    "MemoFile",
    "MemoSink",
    "memo_path",
    "memo_pointer_bytes",
    "memo_type",
    "pointer_value",
    "write_memos",
]

FPT_HEADER_SIZE = 512
DBT_BLOCK_SIZE = 512


def _blocks(size: int, block_size: int) -> int:
    """How many blocks ``size`` bytes take."""
    return -(-size // block_size)


def _first_block(block_size: int) -> int:
    return _blocks(FPT_HEADER_SIZE, block_size)


def _payload(data: bytes, memo_type: int, dbase: bool) -> bytes:
    """What a memo value's blocks hold (before padding)."""
    if dbase:
        if b"\x1a" in data:
            raise ValueError("a dBase III memo cannot contain the byte 0x1A")
        return data + b"\x1a\x1a"
    return struct.pack(">II", memo_type, len(data)) + data


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


class MemoSink:
    """Appends memo blocks to an FPT (or DBT) being written, returning block numbers."""

    def __init__(self, fh: BinaryIO, block_size: int, dbase: bool) -> None:
        """Start a new memo file in ``fh``: its header, then blocks from the first free one."""
        self.fh = fh
        self.block_size = block_size
        self.dbase = dbase
        self.next_free = 1 if dbase else _first_block(block_size)
        self._pending: list[bytes] = []
        self._pending_size = 0
        fh.write(_memo_header(block_size, self.next_free, dbase))

    def add(self, data: bytes, memo_type: int) -> int:
        payload = _payload(data, memo_type, self.dbase)
        blocks = _blocks(len(payload), self.block_size)
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
            self._flush()
        return block

    def finish(self) -> None:
        """Write the pending blocks, then the header's next free block."""
        self._flush()
        self.fh.seek(0)
        head = _memo_header(self.block_size, self.next_free, self.dbase)
        self.fh.write(head[:FPT_HEADER_SIZE])

    def _flush(self) -> None:
        if self._pending:
            self.fh.write(b"".join(self._pending))
            self._pending.clear()
            self._pending_size = 0


def memo_path(path: Path, version: int, *, dbc: bool = False) -> Path:
    """The memo file of the table at ``path`` (.fpt, .dbt or a DBC's .dct, in its case)."""
    if dbc:
        ext = ".dct"
    elif version in DBASE3_VERSIONS:
        ext = ".dbt"
    else:
        ext = ".fpt"
    if path.suffix.isupper():
        ext = ext.upper()
    return path.with_suffix(ext)


def memo_type(col: Column) -> int:
    """The FPT block type of a field's memos: 0 picture (G), 1 text."""
    return 0 if col.spec.type == "G" else 1


def memo_pointer_bytes(blocks: list[int], vfp: bool) -> U8:
    """The pointer fields, one row per block number (0: no memo)."""
    n = len(blocks)
    if vfp:
        return np.array(blocks, dtype="<u4").view(np.uint8).reshape(n, 4)
    text = b"".join(b" " * 10 if b == 0 else f"{b:>10d}".encode("ascii") for b in blocks)
    return np.frombuffer(text, dtype=np.uint8).reshape(n, 10).copy()


def pointer_value(raw: bytes | U8, vfp: bool) -> int:
    """The block number a pointer field holds (0: no memo)."""
    data = bytes(raw)
    if vfp:
        return int(struct.unpack("<I", data)[0])
    text = data.strip()
    return int(text) if text.isdigit() else 0


def write_memos(
    memo_file: Path,
    records: U8,
    memo_columns: list[tuple[Column, Encoded]],
    *,
    block_size: int,
    dbase: bool,
    vfp: bool,
    ctx: Context,
) -> None:
    """Write the memo file of new records, and their pointers into ``records``."""
    n = records.shape[0]
    with open(memo_file, "wb") as fh:
        sink = MemoSink(fh, block_size, dbase)
        pointers = [[0] * n for _ in memo_columns]
        # Row by row, as Visual FoxPro appends: each row's memos follow the previous row's.
        for row in range(n):
            for k, (col, enc) in enumerate(memo_columns):
                assert enc.memos is not None
                data = enc.memos[row]
                if data:
                    try:
                        pointers[k][row] = sink.add(data, memo_type(col))
                    except ValueError as exc:
                        raise ctx.fail(row, col, str(exc)) from None
        sink.finish()
    for k, (col, _enc) in enumerate(memo_columns):
        records[:, col.span] = memo_pointer_bytes(pointers[k], vfp)


@dataclass
class MemoFile:
    """A table's memo file opened for in-place changes."""

    path: Path
    fh: BinaryIO
    block_size: int
    next_free: int
    dbase: bool

    @classmethod
    def open(cls, table_path: Path, version: int) -> MemoFile:
        """Open the memo file of a table (either case of its extension)."""
        path = memo_path(table_path, version)
        if not path.exists():
            alt = path.with_suffix(path.suffix.swapcase())
            path = alt if alt.exists() else path
        fh: BinaryIO = open(path, "r+b")  # noqa: SIM115 (closed by close())
        head = fh.read(FPT_HEADER_SIZE)
        dbase = version in DBASE3_VERSIONS
        if dbase:
            next_free = struct.unpack_from("<I", head, 0)[0]
            block_size = DBT_BLOCK_SIZE
        else:
            next_free = struct.unpack_from(">I", head, 0)[0]
            block_size = struct.unpack_from(">H", head, 6)[0] or 512
        return cls(path, fh, block_size, next_free, dbase)

    def close(self) -> None:
        self.fh.close()

    def read(self, block: int) -> tuple[int, bytes]:
        """The block type and data of the memo at ``block``."""
        self.fh.seek(block * self.block_size)
        if self.dbase:
            chunks = []
            while True:
                chunk = self.fh.read(DBT_BLOCK_SIZE)
                if not chunk:
                    break
                end = chunk.find(b"\x1a")
                if end >= 0:
                    chunks.append(chunk[:end])
                    break
                chunks.append(chunk)
            return 1, b"".join(chunks)
        kind, length = struct.unpack(">II", self.fh.read(8))
        return kind, self.fh.read(length)

    def _blocks_used(self, block: int) -> int:
        if self.dbase:
            _t, data = self.read(block)
            return _blocks(len(data) + 2, DBT_BLOCK_SIZE)
        self.fh.seek(block * self.block_size)
        length = int(struct.unpack(">II", self.fh.read(8))[1])
        return _blocks(length + 8, self.block_size)

    def write(self, data: bytes | None, kind: int, old_block: int | None) -> int:
        """Store a memo; in ``old_block``'s blocks when it fits them, else at the end."""
        if not data:
            return 0
        try:
            payload = _payload(data, kind, self.dbase)
        except ValueError:
            raise DbfWriteError(f"{self.path.name}: a dBase III memo cannot contain 0x1A") from None
        need = _blocks(len(payload), self.block_size)
        if old_block and self._blocks_used(old_block) >= need:
            block = old_block  # fits: rewrite in place, as Visual FoxPro does
        else:
            block = self.next_free
            self.next_free += need
        self.fh.seek(block * self.block_size)
        pad = need * self.block_size - len(payload)
        self.fh.write(payload + b"\0" * pad)
        return block

    def sync_header(self) -> None:
        """Store the next free block in the header."""
        self.fh.seek(0)
        if self.dbase:
            self.fh.write(struct.pack("<I", self.next_free))
        else:
            self.fh.write(struct.pack(">I", self.next_free))
        self.fh.flush()

    def pack(self, live: U8, memo_cols: list[Column], vfp: bool) -> None:
        """Rewrite the file with only the memos of ``live`` records, updating their pointers."""
        tmp = self.path.with_name(self.path.name + ".pack")
        with open(tmp, "wb") as out:
            sink = MemoSink(out, self.block_size, self.dbase)
            for row in range(live.shape[0]):
                for col in memo_cols:
                    ptr = pointer_value(live[row, col.span], vfp)
                    if ptr == 0:
                        continue
                    kind, data = self.read(ptr)
                    new = sink.add(data, kind)
                    live[row, col.span] = memo_pointer_bytes([new], vfp)[0]
            sink.finish()
            next_free = sink.next_free
        self.fh.close()
        tmp.replace(self.path)
        self.fh = open(self.path, "r+b")  # noqa: SIM115 (closed by close())
        self.next_free = next_free
