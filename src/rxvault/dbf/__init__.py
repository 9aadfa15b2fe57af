"""A pure, strict, columnar reader of Visual FoxPro and dBase tables."""

from rxvault.dbf._writer import DbfWriteError, FieldSpec, TableEditor, write_dbc, write_table

__all__ = [
    "DbfWriteError",
    "FieldSpec",
    "TableEditor",
    "write_dbc",
    "write_table",
]
