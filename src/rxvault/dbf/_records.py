"""Records: rows (mappings or an Arrow table) to the bytes of whole records, column by column.

:func:`encode_records` sends each field's column to its type's encoder, places the bytes in an
``(n, record_length)`` matrix, sets the delete flags and the ``_NullFlags`` bits, and hands
back the memo values for the caller to store. :func:`fill_autoincrement` numbers the rows that
give no value for an autoincrement field and moves the field's counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from rxvault.dbf._decimal_values import encode_currency, encode_numeric
from rxvault.dbf._field_spec import MEMO_TYPES, Column, DbfWriteError, Layout
from rxvault.dbf._scalar_values import (
    encode_date,
    encode_datetime,
    encode_double,
    encode_integer,
    encode_logical,
)
from rxvault.dbf._text_values import encode_text, memo_values
from rxvault.dbf._values import U8, Context, Encoded, as_list

__all__ = ["encode_column", "encode_records", "fill_autoincrement", "rows_to_columns"]


_ENCODERS: dict[str, Callable[[Column, Any, int, Context], Encoded]] = {
    "C": encode_text,
    "V": encode_text,
    "Q": encode_text,
    "N": encode_numeric,
    "F": encode_numeric,
    "D": encode_date,
    "T": encode_datetime,
    "L": encode_logical,
    "I": encode_integer,
    "B": encode_double,
    "Y": encode_currency,
}


def encode_column(col: Column, values: Any, n: int, ctx: Context, vfp: bool) -> Encoded:
    """One field's values (Python sequence or Arrow column of ``n`` rows) as record bytes."""
    t = col.spec.type
    if t in MEMO_TYPES:
        memos = memo_values(col, values, n, ctx)
        memo_null = np.array([m is None for m in memos], dtype=bool) if col.spec.nullable else None
        blank = np.full((n, col.length), 0x20 if not vfp else 0, dtype=np.uint8)
        return Encoded(blank, memo_null, memos=memos)
    encoder = _ENCODERS.get(t)
    if encoder is None:
        raise AssertionError(t)
    return encoder(col, values, n, ctx)


def rows_to_columns(
    layout: Layout, rows: Iterable[Mapping[str, object]] | pa.Table, where: str
) -> tuple[dict[str, Any], int]:
    """The rows as one list (or Arrow column) per field name, and the number of rows."""
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


def encode_records(
    layout: Layout,
    columns: Mapping[str, Any],
    n: int,
    ctx: Context,
    deleted: Sequence[bool] | npt.NDArray[np.bool_] | None,
) -> tuple[U8, list[tuple[Column, Encoded]]]:
    """The records' bytes, and the memo fields with their values (pointers still blank)."""
    records = np.empty((n, layout.record_length), dtype=np.uint8)
    if deleted is None:
        records[:, 0] = 0x20
    else:
        flags = np.asarray(deleted, dtype=bool)
        if flags.shape != (n,):
            raise DbfWriteError(f"{ctx.where}: deleted= has {flags.size} flags for {n} rows")
        records[:, 0] = np.where(flags, ord("*"), 0x20)
    nullflags = np.zeros((n, layout.nullflags_length), dtype=np.uint8)
    memo_columns: list[tuple[Column, Encoded]] = []
    for col in layout.columns:
        values = columns.get(col.spec.name)
        if values is None:
            values = [None] * n
        enc = encode_column(col, values, n, ctx, layout.vfp)
        records[:, col.span] = enc.data
        for bit, mask in ((col.null_bit, enc.null), (col.varlen_bit, enc.short)):
            if bit is not None and mask is not None:
                nullflags[:, bit // 8] |= mask.astype(np.uint8) << (bit % 8)
        if enc.memos is not None:
            memo_columns.append((col, enc))
    if layout.nullflags_length:
        records[:, layout.nullflags_span] = nullflags
    return records, memo_columns


def fill_autoincrement(
    layout: Layout, columns: dict[str, Any], n: int, ctx: Context
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
        else:
            filled: list[object] = []
            for row, given in enumerate(as_list(values)):
                value = nxt if given is None else given
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ctx.fail(row, col, f"expected an integer, got {value!r}")
                filled.append(value)
                nxt = max(nxt, value + col.autoinc_step)
            out[col.spec.name] = filled
        if nxt > 2**31 - 1:
            raise ctx.fail(n - 1, col, "the autoincrement counter passed 2**31 - 1")
        layout.set_autoinc(i, nxt)
    return out
