"""What the per-type value encoders share: their input helpers, context and result.

An encoder turns one column of values (a Python sequence or an Arrow array) into an
:class:`Encoded`: an ``(n, length)`` matrix of record bytes plus which rows are NULL or shorter
than a V/Q field. Errors come from :meth:`Context.fail`, naming the table, row and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from rxvault.dbf._field_spec import Column, DbfWriteError

__all__ = [
    "I64",
    "U8",
    "Context",
    "Encoded",
    "Mask",
    "arrow_array",
    "arrow_nulls",
    "as_list",
    "check_nulls",
    "is_arrow",
]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


@dataclass
class Encoded:
    """One column encoded: its bytes in the record, and which rows are NULL / short."""

    data: U8  # (n, length)
    null: Mask | None = None
    short: Mask | None = None
    memos: list[bytes | None] | None = None


@dataclass
class Context:
    """Where values are being encoded, for error messages, and the table's code page."""

    where: str
    codepage: str
    first_row: int = 1  # row number of index 0, for messages

    def fail(self, row: int, col: Column, message: str) -> DbfWriteError:
        return DbfWriteError(
            f"{self.where}: row {row + self.first_row}, field {col.spec.name}: {message}"
        )


def is_arrow(values: object) -> bool:
    return isinstance(values, (pa.Array, pa.ChunkedArray))


def arrow_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def as_list(values: Any) -> list[Any]:
    """The values as a Python list, from an Arrow column or any iterable."""
    return arrow_array(values).to_pylist() if is_arrow(values) else list(values)


def arrow_nulls(arr: pa.Array) -> Mask:
    if arr.null_count == 0:
        return np.zeros(len(arr), dtype=bool)
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def check_nulls(col: Column, null: Mask, ctx: Context, *, blank_ok: bool) -> Mask | None:
    """The NULL mask for a nullable field; else None, after refusing None where not ``blank_ok``."""
    if col.spec.nullable:
        return null
    if null.any() and not blank_ok:
        row = int(np.argmax(null))
        raise ctx.fail(row, col, "None given, but the field is not nullable (nullable=True)")
    return None
