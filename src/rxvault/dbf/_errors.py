"""Errors and anomalies of the DBF reader.

Every problem the reader finds is a :class:`DbfError` subclass naming the file, and where it
applies the 1-based record number and the field::

    DbfError
    ├── UnsupportedTable        a format we do not read (dBase II, an unknown field type …)
    ├── HeaderError             a header that contradicts itself (length, terminator …)
    │   ├── RecordLengthError       record length disagrees with the field lengths
    │   └── TerminatorError         no 0x0D after the field descriptors
    ├── RecordCountError        header record count disagrees with the file size
    ├── TruncatedError          the file ends (or shows 0x1A) where a record should be
    ├── FlagByteError           a record's flag byte is neither space nor ``*``
    ├── BadValueError           a value that is not what its field type allows
    ├── DecodeError             text not valid in the table's code page
    └── MemoError               a memo problem
        ├── MissingMemoError        the memo file is absent
        ├── MemoPointerError        pointer beyond the memo file or its next free block
        └── MemoLengthError         memo length past the end of the memo file

In strict mode (the default) the first error is raised. In lenient mode each is recorded as an
:class:`Anomaly` in ``Table.anomalies`` and the reader goes on with what can be read (a bad value
becomes null, a record is never dropped silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DbfError(Exception):
    """A problem with a DBF table or its memo file."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        record: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.record = record
        self.field = field
        self.detail = message
        where = self.path
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field {field}"
        super().__init__(f"{where}: {message}")


class UnsupportedTable(DbfError):
    """A table format or field type this reader does not read."""


class HeaderError(DbfError):
    """The header contradicts itself or the file."""


class RecordLengthError(HeaderError):
    """The header's record length disagrees with the sum of the field lengths."""


class TerminatorError(HeaderError):
    """The 0x0D terminator after the field descriptors is missing."""


class RecordCountError(DbfError):
    """The header's record count disagrees with the file size."""


class TruncatedError(DbfError):
    """The file ends, or shows an end-of-file mark, where a record should be."""


class FlagByteError(DbfError):
    """A record's deletion flag is neither a space nor ``*``."""


class BadValueError(DbfError):
    """A stored value is not valid for its field type."""


class DecodeError(DbfError):
    """Text that is not valid in the table's code page."""


class MemoError(DbfError):
    """A problem with a memo value or the memo file."""


class MissingMemoError(MemoError):
    """The table has memo fields but its memo file is absent."""


class MemoPointerError(MemoError):
    """A memo pointer beyond the memo file or its next free block."""


class MemoLengthError(MemoError):
    """A memo whose length runs past the end of the memo file."""


@dataclass(frozen=True)
class Anomaly:
    """One problem found in lenient mode (or a harmless oddity noted in any mode).

    ``kind`` is the name of the error class that strict mode raises for it (``"Note"`` for an
    oddity that is never an error, such as bytes after the last record).
    """

    kind: str
    message: str
    record: int | None = None
    field: str | None = None

    @classmethod
    def from_error(cls, error: DbfError) -> Anomaly:
        return cls(type(error).__name__, str(error), error.record, error.field)


class Reporter:
    """Raises errors in strict mode; collects them as anomalies in lenient mode."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.anomalies: list[Anomaly] = []
        self._seen: set[Anomaly] = set()

    def _add(self, anomaly: Anomaly) -> None:
        if anomaly not in self._seen:  # reading a table twice does not list a problem twice
            self._seen.add(anomaly)
            self.anomalies.append(anomaly)

    def error(self, error: DbfError) -> None:
        """Raise ``error`` (strict) or record it (lenient)."""
        if self.strict:
            raise error
        self._add(Anomaly.from_error(error))

    def note(self, path: str | Path, message: str) -> None:
        """Record an oddity that is not an error in either mode."""
        self._add(Anomaly("Note", f"{path}: {message}"))
