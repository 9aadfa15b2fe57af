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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from rxvault._cli_errors import UserError
from rxvault.agent._mapping import Mapping
from rxvault.dbf import DbfError, Field, Table, open_table

__all__ = [
    "PAGE",
    "FilePages",
    "OpenTable",
    "ReadTables",
    "SourceError",
    "SourceRead",
    "TableRead",
    "read_source",
    "read_whole",
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


@dataclass(frozen=True)
class OpenTable:
    """A mapped table, open for the length of one read: ``columns`` as the mapping spells
    them, ``actual`` as the table does (field names are case-insensitive in Visual FoxPro)."""

    name: str
    table: Table
    columns: list[str]
    actual: list[str]

    def read(self) -> pa.Table:
        return self.table.read(columns=self.actual).rename_columns(self.columns)


#: how the tables of one read are decoded (all of them are open): name -> live records
ReadTables = Callable[[dict[str, OpenTable]], dict[str, pa.Table]]


def read_whole(opened: dict[str, OpenTable]) -> dict[str, pa.Table]:
    return {name: o.read() for name, o in opened.items()}


def _open(mapping: Mapping, name: str, path: Path) -> OpenTable:
    source = mapping.tables[name]
    t = open_table(path, codepage=source.codepage, strict=True)
    try:
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
        return OpenTable(name, t, columns, [available[c.lower()] for c in columns])
    except BaseException:
        t.close()
        raise


def _read_once(
    mapping: Mapping, directory: Path, settle: float, last: bool, read_tables: ReadTables
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

    def failed(exc: DbfError, name: str) -> Exception:
        # The pharmacy software writes a record before the header's count, a memo block
        # before the pointer to it: caught in between, a healthy table looks damaged. If it
        # moves after a moment, it was being written (torn: read again); if not, it is.
        time.sleep(settle)
        now = _stamp(paths[name], mapping.tables[name].codepage)
        if not last or isinstance(now, DbfError) or now != before[name]:
            return _Torn(paths[name])
        return _damaged(exc)

    opened: dict[str, OpenTable] = {}
    try:
        for name, path in paths.items():
            try:
                opened[name] = _open(mapping, name, path)
            except DbfError as exc:
                raise failed(exc, name) from None
        try:
            data = read_tables(opened)
        except DbfError as exc:
            by_path = {str(p): n for n, p in paths.items()}
            memo_of = {str(p): n for n, p in paths.items() for p in _files(p)}
            name = by_path.get(exc.path) or memo_of.get(exc.path) or next(iter(paths))
            raise failed(exc, name) from None
        tables: dict[str, TableRead] = {}
        for name, path in paths.items():
            t = opened[name].table
            tables[name] = TableRead(
                name=name,
                path=path,
                data=data[name],
                fields=list(t.fields),
                record_count=t.record_count,
                deleted_count=t.deleted_count,
                last_update=t.last_update,
                modified_ns=max(mtime for _, mtime in _stat(_files(path))),
            )
    finally:
        for o in opened.values():
            o.table.close()
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
    mapping: Mapping,
    directory: Path,
    *,
    attempts: int = 4,
    wait: float = 2.0,
    read_tables: ReadTables = read_whole,
) -> SourceRead:
    """Read every mapped table consistently; retry a torn read ``attempts`` times.

    ``read_tables`` decodes the open tables (by default every live record of each; the
    incremental read decodes only what changed)."""
    if not directory.is_dir():
        raise SourceError(
            f"{directory}: the source directory does not exist",
            hint="set [source] directory in the agent configuration",
        )
    last: _Torn | None = None
    for attempt in range(1, attempts + 1):
        try:
            tables = _read_once(
                mapping, directory, max(wait, 0.05), attempt == attempts, read_tables
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
#: the source digest hashes each file in pages of this size (the incremental read compares them).
#: Smaller pages point closer at what changed, but hashlib takes the GIL back after each page:
#: at 4 KiB two threads hashed slower than one, at 16 KiB about 1.7x faster.
PAGE = 16384


@dataclass(frozen=True)
class FilePages:
    """The SHA-256 of every page of a table's files, and the table's stamp before and after
    they were hashed (equal: nothing visible moved meanwhile)."""

    stamp: tuple[object, ...]
    table: list[bytes]
    memo: list[bytes]


def _file_pages(path: Path) -> list[bytes]:
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    sha256 = hashlib.sha256
    out: list[bytes] = []
    with path.open("rb") as f:
        while n := f.readinto(buffer):
            out += [sha256(view[i : min(i + PAGE, n)]).digest() for i in range(0, n, PAGE)]
    return out


_pool: ThreadPoolExecutor | None = None


def source_digest(
    mapping: Mapping, directory: Path, pages: dict[str, FilePages] | None = None
) -> str | None:
    """SHA-256 over every byte of the mapped tables' files (each DBF and its memo file, with
    their names, lengths and the SHA-256 of each 16 KiB page), or None when a file is missing
    or cannot be read (the full read then reports it). ``pages``, when given, receives each
    table's page digests (for :mod:`rxvault.agent._incremental`), if its stamp did not move
    while they were taken.

    Equal digests mean byte-identical tables, whatever the files' times say: unlike a size and
    modification-time check, this cannot miss a write that left the size unchanged within one
    tick of the file system's clock. A write during the hashing gives either the digest of no
    state the tables ever had (it matches nothing, and the run reads everything) or, if it
    touched only bytes already hashed, the digest of the state just before it: as if the run
    had started a moment earlier, and the next run sees the write.
    """
    global _pool  # noqa: PLW0603 - one small pool per process, made on first use
    if _pool is None:
        _pool = ThreadPoolExecutor(2, thread_name_prefix="rxvault-source-digest")
    h = hashlib.sha256(b"rxvault/source-digest/2")
    try:
        tables = sorted(mapping.tables.items())
        stamps = {name: _stamp(directory / source.file, None) for name, source in tables}
        files = [
            (name, path) for name, source in tables for path in _files(directory / source.file)
        ]
        # hashlib releases the GIL on each page: two files at a time on two cores
        digests = list(_pool.map(_file_pages, [path for _, path in files]))
        for (name, path), file_pages in zip(files, digests, strict=True):
            length = path.stat().st_size
            label = f"{name}/{path.name}".encode()
            h.update(len(label).to_bytes(4, "big") + label)
            h.update(length.to_bytes(8, "big") + hashlib.sha256(b"".join(file_pages)).digest())
    except OSError:
        return None
    if pages is not None:
        by_table: dict[str, list[list[bytes]]] = {}
        for (name, _), file_pages in zip(files, digests, strict=True):
            by_table.setdefault(name, []).append(file_pages)
        for name, source in tables:
            stamp = stamps[name]
            if isinstance(stamp, DbfError) or _stamp(directory / source.file, None) != stamp:
                continue
            parts = by_table[name]
            pages[name] = FilePages(stamp, parts[0], parts[1] if len(parts) > 1 else [])
    return h.hexdigest()


def env_attempts() -> int:
    """Attempts for a torn read (``RXVAULT_AGENT_READ_ATTEMPTS``, default 4)."""
    try:
        return max(1, int(os.environ.get("RXVAULT_AGENT_READ_ATTEMPTS", "4")))
    except ValueError:
        return 4
