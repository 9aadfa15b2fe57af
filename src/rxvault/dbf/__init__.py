"""A pure, strict, columnar reader of Visual FoxPro and dBase tables.

>>> from rxvault.dbf import open_table
>>> with open_table("patients.dbf") as t:          # doctest: +SKIP
...     arrow_table = t.read()

See :class:`Table` for the attributes and :mod:`rxvault.dbf._errors` for the error tree.
"""

from rxvault.dbf._dbc_writer import write_dbc
from rxvault.dbf._editor import TableEditor
from rxvault.dbf._errors import (
    Anomaly,
    BadValueError,
    DbfError,
    DecodeError,
    FlagByteError,
    HeaderError,
    MemoError,
    MemoLengthError,
    MemoPointerError,
    MissingMemoError,
    RecordCountError,
    RecordLengthError,
    TerminatorError,
    TruncatedError,
    UnsupportedTable,
)
from rxvault.dbf._field_spec import DbfWriteError, FieldSpec
from rxvault.dbf._header import Field
from rxvault.dbf._table import MemoInfo, Table, open_table, read_table
from rxvault.dbf._writer import write_table

__all__ = [
    "Anomaly",
    "BadValueError",
    "DbfError",
    "DbfWriteError",
    "DecodeError",
    "Field",
    "FieldSpec",
    "FlagByteError",
    "HeaderError",
    "MemoError",
    "MemoInfo",
    "MemoLengthError",
    "MemoPointerError",
    "MissingMemoError",
    "RecordCountError",
    "RecordLengthError",
    "Table",
    "TableEditor",
    "TerminatorError",
    "TruncatedError",
    "UnsupportedTable",
    "open_table",
    "read_table",
    "write_dbc",
    "write_table",
]
