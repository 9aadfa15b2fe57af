"""A consistent, strict read of the tables the mapping names.

The pharmacy application may be writing while the agent reads. Each table is read, then its
files and header are looked at again: sizes, modification times, the header's record count and
last-update stamp, the memo file's next free block. If anything moved, the read was torn: wait and
read again, a few times, then fail clearly. Strict reading: any anomaly the reader reports is an
error naming the file, record and field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from rxvault._cli_errors import UserError
from rxvault.agent._mapping import Mapping
from rxvault.dbf import DbfError, Field, open_table

__all__ = [
    "SourceError",
    "SourceRead",
    "TableRead",
    "read_source",
    "source_digest",
    "table_stamp",
]


class SourceError(UserError):
    """The source tables cannot be read (missing, corrupt, torn, or not the expected ones)."""


@dataclass(frozen=True)
class TableRead:
    name: str
    path: Path
    data: pa.Table  # live records only, the mapped columns
    fields: list[Field]  # every field of the table (for the structural fingerprint)
    record_count: int
    deleted_count: int
    last_update: dt.date | None
    modified_ns: int


@dataclass(frozen=True)
class SourceRead:
    directory: Path
    tables: dict[str, TableRead]
    fingerprint: str
    attempts: int

    @property
    def last_updates(self) -> dict[str, str]:
        return {
            name: t.last_update.isoformat() if t.last_update else ""
            for name, t in self.tables.items()
        }


def _files(path: Path) -> list[Path]:
    out = [path]
    for suffix in (".fpt", ".FPT", ".dbt", ".DBT"):
        memo = path.with_suffix(suffix)
        if memo.exists():
            out.append(memo)
            break
    return out


def _stat(paths: list[Path]) -> tuple[tuple[int, int], ...]:
    out = []
    for p in paths:
        st = p.stat()
        out.append((st.st_size, st.st_mtime_ns))
    return tuple(out)


_HEADER_BYTES = 32  # version, last update, record count, header and record length
_MEMO_HEADER_BYTES = 8  # next free block, block size


def table_stamp(path: Path, codepage: str | None = None) -> tuple[object, ...]:
    """What must not move while a table is read: file sizes and times, and the raw bytes of the
    table's header (record count, last-update date, lengths) and of its memo file's header
    (next free block). Only those bytes are read: the records are left alone (a stamp is taken
    twice per table and run, and a table of a million records would be mapped and scanned).
    ``codepage`` is accepted for the callers' symmetry with the reader; it changes nothing.
    """
    files = _files(path)
    heads = []
    for p, size in zip(files, (_HEADER_BYTES, _MEMO_HEADER_BYTES), strict=False):
        with p.open("rb") as f:
            heads.append(f.read(size))
    if len(heads[0]) < _HEADER_BYTES:
        raise DbfError(path, f"the file is shorter ({len(heads[0])} bytes) than a table header")
    return (_stat(files), tuple(heads))


def _structure(fields: list[Field]) -> list[list[object]]:
    return [[f.name, f.type, f.length, f.decimals] for f in fields]


def _stamp(path: Path, codepage: str | None) -> tuple[object, ...] | DbfError:
    """The table's stamp, or the error when its header cannot be read (being written?)."""
    try:
        return table_stamp(path, codepage)
    except DbfError as exc:
        return exc


def _damaged(exc: DbfError) -> SourceError:
    return SourceError(
        f"{exc}",
        hint="the table is damaged or being rewritten; nothing was uploaded or deleted. "
        "Run again later; if it persists, check the table in the pharmacy software",
    )


def _read_once(
    mapping: Mapping, directory: Path, settle: float, last: bool
) -> dict[str, TableRead]:
    """Read every table once. The stamps of *all* tables are taken before the first is read
    and compared after the last: tables read at different moments are not mixed (the pharmacy
    may change one table, then another, while the agent reads).

    A table that looks damaged may be one caught between two writes of the pharmacy software
    (a record written, its count not yet): if it moves within ``settle`` seconds, or if this is
    not the ``last`` attempt, the read counts as torn and is tried again; on the last attempt a
    table that did not move is damaged."""
    paths: dict[str, Path] = {}
    for name, source in mapping.tables.items():
        path = directory / source.file
        if not path.is_file():
            raise SourceError(
                f"{path}: table {name!r} not found in the source directory",
                hint=f"check [source] directory in the agent configuration and "
                f"[tables.{name}] file in {mapping.path}",
            )
        paths[name] = path
    before = {n: _stamp(p, mapping.tables[n].codepage) for n, p in paths.items()}
    for name, stamp in before.items():
        if isinstance(stamp, DbfError):
            time.sleep(settle)
            if last and isinstance(_stamp(paths[name], mapping.tables[name].codepage), DbfError):
                raise _damaged(stamp)
            raise _Torn(paths[name])
    tables: dict[str, TableRead] = {}
    for name, path in paths.items():
        source = mapping.tables[name]
        try:
            with open_table(path, codepage=source.codepage, strict=True) as t:
                fields = list(t.fields)
                # Field names are case-insensitive in Visual FoxPro (free tables store them in
                # upper case); the mapping's spelling is kept for the columns read.
                available: dict[str, str] = {}
                for f in fields:
                    for spelled in (f.name, f.long_name):
                        if spelled:
                            available.setdefault(spelled.lower(), f.long_name or f.name)
                columns = mapping.columns(name)
                missing = [c for c in columns if c.lower() not in available]
                if missing:
                    raise mapping.error(
                        mapping.line_of_column(name, missing[0]),
                        f"table {name!r} ({path.name}) has no field {missing[0]!r}",
                        hint="fields: " + ", ".join(f.long_name or f.name for f in fields),
                    )
                actual = [available[c.lower()] for c in columns]
                data = t.read(columns=actual).rename_columns(columns)
                record_count = t.record_count
                deleted = t.deleted_count
                last_update = t.last_update
        except DbfError as exc:
            # The pharmacy software writes a record before the header's count, a memo block
            # before the pointer to it: caught in between, a healthy table looks damaged. If it
            # moves after a moment, it was being written (torn: read again); if not, it is.
            time.sleep(settle)
            now = _stamp(path, source.codepage)
            if not last or isinstance(now, DbfError) or now != before[name]:
                raise _Torn(path) from None
            raise _damaged(exc) from None
        tables[name] = TableRead(
            name=name,
            path=path,
            data=data,
            fields=fields,
            record_count=record_count,
            deleted_count=deleted,
            last_update=last_update,
            modified_ns=max(mtime for _, mtime in _stat(_files(path))),
        )
    for name, path in paths.items():
        now = _stamp(path, mapping.tables[name].codepage)
        if isinstance(now, DbfError) or now != before[name]:
            raise _Torn(path)
    return tables


class _Torn(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def read_source(
    mapping: Mapping, directory: Path, *, attempts: int = 4, wait: float = 2.0
) -> SourceRead:
    """Read every mapped table consistently; retry a torn read ``attempts`` times."""
    if not directory.is_dir():
        raise SourceError(
            f"{directory}: the source directory does not exist",
            hint="set [source] directory in the agent configuration",
        )
    last: _Torn | None = None
    for attempt in range(1, attempts + 1):
        try:
            tables = _read_once(
                mapping, directory, settle=max(wait, 0.05), last=attempt == attempts
            )
        except _Torn as torn:
            last = torn
            if attempt < attempts:
                time.sleep(wait * attempt)
            continue
        except OSError as exc:
            raise SourceError(
                f"{exc.filename or directory}: cannot read ({exc.strerror})",
                hint="is the pharmacy software holding the file exclusively? run again later",
            ) from None
        structure = {
            name: [mapping.tables[name].file.lower(), _structure(t.fields)]
            for name, t in sorted(tables.items())
        }
        fingerprint = hashlib.sha256(
            json.dumps(structure, sort_keys=True).encode("utf-8")
        ).hexdigest()
        return SourceRead(directory, tables, fingerprint, attempt)
    assert last is not None
    raise SourceError(
        f"{last.path}: the table changed while it was read ({attempts} attempts)",
        hint="the pharmacy software is writing to it; nothing was uploaded or deleted. Run the "
        "sync again when the pharmacy is quieter (the scheduled task retries tomorrow)",
    )


_CHUNK = 4 * 1024 * 1024


def source_digest(mapping: Mapping, directory: Path) -> str | None:
    """SHA-256 over every byte of the mapped tables' files (each DBF and its memo file, with
    their names and lengths), or None when a file is missing or cannot be read (the full read
    then reports it).

    Equal digests mean byte-identical tables, whatever the files' times say: unlike a size and
    modification-time check, this cannot miss a write that left the size unchanged within one
    tick of the file system's clock. A write during the hashing gives either the digest of no
    state the tables ever had (it matches nothing, and the run reads everything) or, if it
    touched only bytes already hashed, the digest of the state just before it: as if the run
    had started a moment earlier, and the next run sees the write.
    """
    h = hashlib.sha256(b"rxvault/source-digest/1")
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    try:
        for name, source in sorted(mapping.tables.items()):
            for path in _files(directory / source.file):
                content = hashlib.sha256()
                length = 0
                with path.open("rb") as f:
                    while n := f.readinto(buffer):
                        content.update(view[:n])
                        length += n
                label = f"{name}/{path.name}".encode()
                h.update(len(label).to_bytes(4, "big") + label)
                h.update(length.to_bytes(8, "big") + content.digest())
    except OSError:
        return None
    return h.hexdigest()


def env_attempts() -> int:
    """Attempts for a torn read (``RXVAULT_AGENT_READ_ATTEMPTS``, default 4)."""
    try:
        return max(1, int(os.environ.get("RXVAULT_AGENT_READ_ATTEMPTS", "4")))
    except ValueError:
        return 4
