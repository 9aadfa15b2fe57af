"""In-place changes to a table, the way Visual FoxPro makes them: :class:`TableEditor`."""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from rxvault.dbf._edit_state import EditorState, read_state
from rxvault.dbf._field_spec import EOF_MARKER, MEMO_TYPES, Column, DbfWriteError, date_bytes
from rxvault.dbf._memo_blocks import memo_pointer_bytes, memo_type, pointer_value
from rxvault.dbf._records import encode_column, encode_records, fill_autoincrement, rows_to_columns
from rxvault.dbf._values import Context
from rxvault.dbf._writer import write_dbf_file

__all__ = ["TableEditor"]


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
            self._state: EditorState = read_state(self._fh, self.path, codepage, long_names)
        except BaseException:
            self._fh.close()
            raise

    def __enter__(self) -> TableEditor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the table and its memo file."""
        if self._state.memo is not None:
            self._state.memo.close()
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
        self._fh.seek(layout.record_offset(recno - 1))
        return self._fh.read(layout.record_length)

    def memo_pointer(self, recno: int, name: str) -> int:
        """The first block of a memo field's value in record ``recno`` (0: none)."""
        col = self._column(name)
        return pointer_value(self.read_raw(recno)[col.span], self._state.layout.vfp)

    def _check_recno(self, recno: int) -> None:
        if not 1 <= recno <= self._state.count:
            raise DbfWriteError(
                f"{self.path.name}: record {recno} does not exist "
                f"(the table has {self._state.count})"
            )

    def _column(self, name: str) -> Column:
        try:
            return self._state.layout.column(name)
        except KeyError:
            raise DbfWriteError(f"{self.path.name}: no field named {name!r}") from None

    def _ctx(self, first_row: int) -> Context:
        return Context(self.path.name, self._state.codepage, first_row)

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
        columns, n = rows_to_columns(layout, named_rows, where)
        if n == 0:
            return []
        columns = fill_autoincrement(layout, columns, n, ctx)
        records, memo_columns = encode_records(layout, columns, n, ctx, None)
        if memo_columns:
            memo = st.memo
            assert memo is not None
            for col, enc in memo_columns:
                assert enc.memos is not None
                blocks = [
                    memo.write(data, memo_type(col), None) if data else 0 for data in enc.memos
                ]
                records[:, col.span] = memo_pointer_bytes(blocks, layout.vfp)
            memo.sync_header()
        self._fh.seek(layout.record_offset(st.count))
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
        nullflags = bytearray(raw[layout.nullflags_span])
        for name, value in values.items():
            col = self._column(name)
            if col.spec.autoincrement:
                raise DbfWriteError(f"{self.path.name}: field {col.spec.name} is autoincrement")
            enc = encode_column(col, [value], 1, ctx, layout.vfp)
            if enc.memos is not None:
                assert st.memo is not None
                data = enc.memos[0]
                old = pointer_value(bytes(raw[col.span]), layout.vfp)
                block = st.memo.write(data, memo_type(col), old) if data else 0
                enc.data = memo_pointer_bytes([block], layout.vfp)
            raw[col.span] = enc.data[0].tobytes()
            for bit, flag in ((col.null_bit, enc.null), (col.varlen_bit, enc.short)):
                if bit is None:
                    continue
                on = bool(flag[0]) if flag is not None else False
                if on:
                    nullflags[bit // 8] |= 1 << (bit % 8)
                else:
                    nullflags[bit // 8] &= ~(1 << (bit % 8)) & 0xFF
        raw[layout.nullflags_span] = nullflags
        if st.memo is not None:
            st.memo.sync_header()
        self._fh.seek(layout.record_offset(recno - 1))
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
        self._fh.seek(self._state.layout.record_offset(recno - 1))
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
            st.memo.pack(live, memo_cols, layout.vfp)
        tmp = self.path.with_name(self.path.name + ".pack")
        self._fh.seek(0)
        write_dbf_file(tmp, self._fh.read(layout.header_length), live)
        self._fh.close()
        os.replace(tmp, self.path)
        self._fh = open(self.path, "r+b")  # noqa: SIM115 (closed by close())
        st.count = live.shape[0]
        self._write_header()
        return removed

    def _write_header(self) -> None:
        """Rewrite the record count, the last-update date and the autoincrement counters."""
        st = self._state
        head = bytearray(st.head)
        head[1:4] = date_bytes(self._today or dt.date.today())
        struct.pack_into("<I", head, 4, st.count)
        self._fh.seek(0)
        self._fh.write(head)
        for i, col in enumerate(st.layout.columns):
            if col.spec.autoincrement:
                self._fh.seek(32 + 32 * st.descriptor_index[i] + 19)
                self._fh.write(struct.pack("<I", col.autoinc_next))
        self._fh.flush()
