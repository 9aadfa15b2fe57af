"""``open_table`` / ``Table``: a memory-mapped DBF table read in columnar batches."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import mmap
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from rxvault.dbf._codepages import codepage_for, normalize
from rxvault.dbf._columns import Batch, decode, memo_pointers
from rxvault.dbf._dbc import find_case_insensitive, long_field_names, resolve_backlink
from rxvault.dbf._errors import (
    Anomaly,
    DbfError,
    FlagByteError,
    HeaderError,
    MissingMemoError,
    RecordCountError,
    Reporter,
    TruncatedError,
    UnsupportedTable,
)
from rxvault.dbf._header import KNOWN_TYPES, Field, Header, parse_header
from rxvault.dbf._memo import DBT3, DBT4, FPT, MemoBudget, MemoFile

DEFAULT_BATCH_SIZE = 65536
_DECODE_ERRORS = ("strict", "replace")


@dataclass(frozen=True)
class MemoInfo:
    """The table's memo file."""

    path: Path
    kind: str  # "fpt", "dbt3" (dBase III) or "dbt4" (dBase IV/7)
    block_size: int
    next_free: int
    size: int


class Table:
    """An open DBF table. Use :func:`open_table`; close it (or use ``with``) when done."""

    def __init__(
        self,
        path: str | Path,
        *,
        codepage: str | None = None,
        memo_path: str | Path | None = None,
        strict: bool = True,
        long_names: bool = True,
        decode_errors: str = "strict",
        threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        if decode_errors not in _DECODE_ERRORS:
            raise ValueError(f"decode_errors must be one of {_DECODE_ERRORS}")
        self._reporter = Reporter(strict)
        self._replace = decode_errors == "replace"
        self._memo: MemoFile | None = None
        self._workers = min(4, os.cpu_count() or 1) if threads is None else threads
        self._pool: ThreadPoolExecutor | None = None
        self._memo_missing = False
        self._mm: mmap.mmap | None = None
        if not self.path.is_file():
            raise DbfError(self.path, "no such file")
        size = self.path.stat().st_size
        self.file_size = size
        if size == 0:
            raise HeaderError(self.path, "file is empty (0 bytes), not a DBF table")
        with self.path.open("rb") as fh:
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._array = np.frombuffer(self._mm, dtype=np.uint8)
        try:
            self._open(codepage, memo_path, long_names)
        except BaseException:
            self.close()
            raise

    # -- opening ----------------------------------------------------------------------------

    def _open(self, codepage: str | None, memo_path: str | Path | None, long_names: bool) -> None:
        rep = self._reporter
        path = self.path
        if codepage is not None:
            try:
                self.codepage: str | None = normalize(codepage)
            except LookupError:
                raise DbfError(path, f"unknown code page {codepage!r}") from None
        else:
            self.codepage = None
        head = bytes(self._array[: 65536 + 68])
        self.header: Header = parse_header(
            path,
            head,
            self.file_size,
            rep,
            self.codepage or codepage_for(head[29])[0] if len(head) > 29 else None,
        )
        h = self.header
        if self.codepage is None:
            self.codepage = codepage_for(h.language_driver)[0]
        for f in h.fields:
            if f.type not in KNOWN_TYPES:
                rep.error(
                    UnsupportedTable(
                        path, f"unknown field type {f.type!r}; read as raw bytes", field=f.name
                    )
                )
        hl, rl = h.header_length, h.record_length
        avail = (self.file_size - hl) // rl
        count = h.record_count
        if avail < count:
            rep.error(
                TruncatedError(
                    path,
                    f"header says {count} records but the file holds only {avail} whole "
                    f"records of {rl} bytes (file size {self.file_size})",
                    record=avail + 1,
                )
            )
            count = avail
        else:
            tail_start = hl + count * rl
            trailing = self.file_size - tail_start
            if trailing >= rl and self._array[tail_start] in (0x20, 0x2A):
                rep.error(
                    RecordCountError(
                        path,
                        f"header says {count} records but the file holds {avail} whole records "
                        f"of {rl} bytes (file size {self.file_size})",
                        record=count + 1,
                    )
                )
                count = avail
            elif trailing > 1 or (trailing == 1 and self._array[tail_start] != 0x1A):
                rep.note(path, f"{trailing} bytes after the last record")
        self.record_count_read = count
        self._records = self._array[hl : hl + count * rl].reshape(count, rl)
        flags = self._records[:, 0] if count else np.zeros(0, dtype=np.uint8)
        odd = np.flatnonzero((flags != 0x20) & (flags != 0x2A))
        for i in odd:
            byte = int(flags[i])
            if byte == 0x1A:
                rep.error(
                    TruncatedError(
                        path,
                        f"end-of-file mark 0x1A where record {i + 1} of {count} should be",
                        record=int(i) + 1,
                    )
                )
            else:
                rep.error(
                    FlagByteError(
                        path,
                        f"flag byte 0x{byte:02X} is neither space (live) nor '*' (deleted)",
                        record=int(i) + 1,
                    )
                )
        self._deleted: npt.NDArray[np.bool_] = flags == 0x2A
        self.deleted_count = int(self._deleted.sum())
        self.live_count = count - self.deleted_count

        data_fields = [f for f in h.fields if f.type != "0" and not f.system]
        if any(f.is_memo for f in h.fields):
            self._open_memo(memo_path)
        if long_names and h.backlink:
            dbc = resolve_backlink(path, h.backlink)
            if dbc is None:
                rep.note(path, f"database container {h.backlink!r} not found; short field names")
            else:
                try:
                    names = long_field_names(dbc, path)
                except DbfError as exc:
                    rep.note(path, f"database container unreadable ({exc}); short field names")
                    names = None
                if names is None or len(names) != len(data_fields):
                    rep.note(path, f"no matching field list for this table in {dbc.name}")
                else:
                    by_name = {id(f): n for f, n in zip(data_fields, names, strict=True)}
                    h.fields = [
                        replace(f, long_name=by_name[id(f)]) if id(f) in by_name else f
                        for f in h.fields
                    ]
                    data_fields = [f for f in h.fields if f.type != "0" and not f.system]
        self.fields: list[Field] = _dedupe(data_fields, rep, path)

    def _open_memo(self, memo_path: str | Path | None) -> None:
        h = self.header
        path = self.path
        if memo_path is not None:
            found: Path | None = Path(memo_path) if Path(memo_path).is_file() else None
            candidates = [Path(memo_path)]
        else:
            suffix = path.suffix.lower()
            exts = [".dct"] if suffix == ".dbc" else [".fpt", ".dbt"]
            if suffix != ".dbc" and not h.is_vfp and h.version not in (0xF5, 0xFB, 0x30):
                exts = [".dbt", ".fpt"]
            candidates = [path.with_suffix(e) for e in exts]
            found = None
            for c in candidates:
                found = find_case_insensitive(c)
                if found:
                    break
        if found is None:
            self._memo_missing = True
            self._reporter.error(
                MissingMemoError(
                    path,
                    f"the table has memo fields but its memo file ({candidates[0].name}) is "
                    "missing",
                )
            )
            return
        ext = found.suffix.lower()
        kind = FPT if ext in (".fpt", ".dct") else (DBT3 if h.version == 0x83 else DBT4)
        try:
            self._memo = MemoFile(found, kind, table_path=path)
        except DbfError as exc:
            self._memo_missing = True
            self._reporter.error(exc)

    # -- public attributes ------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def version_name(self) -> str:
        return self.header.version_name

    @property
    def last_update(self) -> dt.date | None:
        return self.header.last_update

    @property
    def record_count(self) -> int:
        return self.header.record_count

    @property
    def header_length(self) -> int:
        return self.header.header_length

    @property
    def record_length(self) -> int:
        return self.header.record_length

    @property
    def language_driver(self) -> int:
        return self.header.language_driver

    @property
    def backlink(self) -> str | None:
        return self.header.backlink

    @property
    def memo(self) -> MemoInfo | None:
        m = self._memo
        if m is None:
            return None
        return MemoInfo(m.path, m.kind, m.block_size, m.next_free, m.size)

    @property
    def anomalies(self) -> list[Anomaly]:
        return list(self._reporter.anomalies)

    @property
    def strict(self) -> bool:
        return self._reporter.strict

    def arrow_schema(
        self,
        columns: Sequence[str] | None = None,
        *,
        include_deleted: bool = False,
        with_recno: bool = False,
    ) -> pa.Schema:
        """The schema of what ``read``/``iter_batches`` return with the same options."""
        return self._batch_schema(self._select(columns), include_deleted, with_recno)

    # -- reading ----------------------------------------------------------------------------

    def _select(self, columns: Sequence[str] | None) -> list[Field]:
        if columns is None:
            return list(self.fields)
        by_name: dict[str, Field] = {}
        for f in self.fields:
            by_name.setdefault(f.name, f)
        for f in self.fields:
            by_name[f.column_name] = f
        out = []
        for c in columns:
            if c not in by_name:
                known = ", ".join(f.column_name for f in self.fields)
                raise DbfError(self.path, f"no column {c!r} (columns: {known})")
            out.append(by_name[c])
        return out

    def iter_batches(
        self,
        columns: Sequence[str] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        include_deleted: bool = False,
        with_recno: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        """Yield the table as Arrow record batches of at most ``batch_size`` records."""
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        if self._mm is None:
            raise DbfError(self.path, "table is closed")
        fields = self._select(columns)
        schema = self._batch_schema(fields, include_deleted, with_recno)
        count = self.record_count_read
        budget = MemoBudget(self._memo.size) if self._memo is not None else None
        for start in range(0, count, batch_size):
            stop = min(count, start + batch_size)
            rec = self._records[start:stop]
            recnos = np.arange(start + 1, stop + 1, dtype=np.int64)
            deleted = self._deleted[start:stop]
            if not include_deleted and deleted.any():
                keep = ~deleted
                rec = rec[keep]
                recnos = recnos[keep]
                deleted = deleted[keep]
            else:
                rec = np.array(rec)  # one copy of the batch, contiguous, off the map
            batch = self._batch(rec, recnos, budget)
            arrays = self._decode_fields(batch, fields)
            if include_deleted:
                arrays.append(pa.array(deleted, type=pa.bool_()))
            if with_recno:
                arrays.append(pa.array(recnos, type=pa.int64()))
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _decode_fields(self, batch: Batch, fields: list[Field]) -> list[pa.Array]:
        """Decode the fields of one batch, on worker threads when there is more than one core.

        numpy and Arrow release the GIL in their loops, so fields decode in parallel. In strict
        mode the first error (in field order) is raised, as a serial decode would.
        """
        serial = self._workers <= 1 or not self.strict  # lenient: anomalies in a stable order
        if serial or batch.n < 4096 or len(fields) < 2:
            return [decode(batch, f) for f in fields]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="rxvault-dbf")
        futures = [self._pool.submit(decode, batch, f) for f in fields]
        return [future.result() for future in futures]

    def _batch_schema(
        self, fields: list[Field], include_deleted: bool, with_recno: bool
    ) -> pa.Schema:
        cols = [pa.field(f.column_name, f.arrow_type) for f in fields]
        if include_deleted:
            cols.append(pa.field("_deleted", pa.bool_()))
        if with_recno:
            cols.append(pa.field("_recno", pa.int64()))
        return pa.schema(cols)

    def read(
        self,
        columns: Sequence[str] | None = None,
        *,
        include_deleted: bool = False,
        with_recno: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> pa.Table:
        """The whole table (live records unless ``include_deleted``) as one Arrow table."""
        fields = self._select(columns)
        schema = self._batch_schema(fields, include_deleted, with_recno)
        batches = list(
            self.iter_batches(
                columns,
                batch_size=batch_size,
                include_deleted=include_deleted,
                with_recno=with_recno,
            )
        )
        return pa.Table.from_batches(batches, schema=schema)

    def raw_records(self) -> npt.NDArray[np.uint8]:
        """The records' bytes as read-only ``(record_count, record_length)`` view of the map
        (flag byte first); valid until the table is closed."""
        return self._records

    def page_digests(self, page: int) -> tuple[list[bytes], list[bytes]]:
        """SHA-256 of each ``page`` bytes of the table file and of its memo file (empty when
        there is none), read from the same map as the records, so they describe exactly the
        bytes that :meth:`read` and :meth:`read_records` decode."""
        memo = self._memo._array if self._memo is not None else np.zeros(0, np.uint8)
        return _pages(self._array, page), _pages(memo, page)

    def read_records(
        self,
        indices: Sequence[int] | npt.NDArray[np.int64],
        columns: Sequence[str] | None = None,
        *,
        with_recno: bool = False,
    ) -> pa.Table:
        """The live records among ``indices`` (0-based positions, ascending), decoded as
        :meth:`read` decodes them; deleted records are left out."""
        if self._mm is None:
            raise DbfError(self.path, "table is closed")
        fields = self._select(columns)
        schema = self._batch_schema(fields, False, with_recno)
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.record_count_read):
            raise IndexError("record position out of range")
        idx = idx[~self._deleted[idx]]
        budget = MemoBudget(self._memo.size) if self._memo is not None else None
        batch = self._batch(self._records[idx], idx + 1, budget)
        arrays = self._decode_fields(batch, fields)
        if with_recno:
            arrays.append(pa.array(idx + 1, type=pa.int64()))
        return pa.Table.from_batches([pa.RecordBatch.from_arrays(arrays, schema=schema)])

    def header_bytes(self) -> bytes:
        """The raw header: version, date, counts and lengths, field descriptors, backlink."""
        return bytes(self._array[: self.header.header_length])

    def memo_extents(
        self,
        indices: Sequence[int] | npt.NDArray[np.int64],
        columns: Sequence[str] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """For each record position in ``indices`` (rows) and each memo field among ``columns``
        (columns, in their order): the first and the last-plus-one byte of the memo file that
        the memo occupies (block header and dBase III terminator included), or ``(-1, -1)``
        when there is none. Problems that :meth:`read` reports are not reported here: a memo
        that cannot be located spans from its block to the end of the file."""
        idx = np.asarray(indices, dtype=np.int64)
        fields = [f for f in self._select(columns) if f.is_memo]
        first = np.full((len(idx), len(fields)), -1, dtype=np.int64)
        last = np.full((len(idx), len(fields)), -1, dtype=np.int64)
        memo = self._memo
        if memo is None or not len(idx):
            return first, last
        batch = self._batch(self._records[idx], idx + 1, None)
        for k, f in enumerate(fields):
            if f.offset + f.length > batch.rec.shape[1]:
                continue
            pointers, present = memo_pointers(batch, f)
            want = np.flatnonzero(present & (pointers > 0))
            if not len(want):
                continue
            located = memo.locate(pointers[want], batch.recnos[want], f.name, binary=f.binary)
            lo = pointers[want] * memo.block_size
            hi = located.starts + located.lengths + (1 if memo.kind == DBT3 else 0)
            if located.failed is not None:
                hi = np.where(located.failed, memo.size, hi)
            first[want, k] = lo
            last[want, k] = np.maximum(hi, lo + 1)
        return first, last

    def _batch(
        self, rec: npt.NDArray[np.uint8], recnos: npt.NDArray[np.int64], budget: MemoBudget | None
    ) -> Batch:
        """Records to decode (``budget``: the pass's memo budget, None for no check)."""
        return Batch(
            path=self.path,
            rec=np.ascontiguousarray(rec),
            recnos=recnos,
            reporter=self._reporter,
            codec=self.codepage,
            replace=self._replace,
            memo=self._memo,
            memo_missing=self._memo_missing,
            nullflags=self.header.nullflags,
            memo_budget=budget,
        )

    def rows(
        self,
        columns: Sequence[str] | None = None,
        *,
        include_deleted: bool = False,
        with_recno: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Records as dicts (convenience; the columnar methods are much faster)."""
        for batch in self.iter_batches(
            columns,
            batch_size=batch_size,
            include_deleted=include_deleted,
            with_recno=with_recno,
        ):
            yield from batch.to_pylist()

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release the memory maps (and the worker threads)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._memo is not None:
            self._memo.close()
            self._memo = None
        self._records = np.zeros((0, 1), dtype=np.uint8)
        self._array = np.zeros(0, dtype=np.uint8)
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a view is still held; the GC closes it
                self._mm.close()
            self._mm = None

    def __enter__(self) -> Table:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Table {self.path.name} {self.version_name}, {self.record_count} records, "
            f"{len(self.fields)} fields>"
        )


def _pages(data: npt.NDArray[np.uint8], page: int) -> list[bytes]:
    view = data.data  # a memoryview of the bytes, not a copy
    sha256 = hashlib.sha256
    return [sha256(view[i : i + page]).digest() for i in range(0, len(data), page)]


def _dedupe(fields: list[Field], rep: Reporter, path: Path) -> list[Field]:
    """Give repeated column names a ``~2``, ``~3`` … suffix (as the corpus reference does)."""
    seen: dict[str, int] = {}
    out = []
    for f in fields:
        key = f.column_name.lower()
        if key in seen:
            seen[key] += 1
            new = f"{f.column_name}~{seen[key]}"
            rep.note(path, f"field name {f.column_name!r} repeats; column renamed {new!r}")
            out.append(replace(f, long_name=new))
        else:
            seen[key] = 1
            out.append(f)
    return out


def open_table(
    path: str | Path,
    *,
    codepage: str | None = None,
    memo_path: str | Path | None = None,
    strict: bool = True,
    long_names: bool = True,
    decode_errors: str = "strict",
    threads: int | None = None,
) -> Table:
    """Open a DBF table (VFP, FoxPro, dBase III/IV/7; ``.dbc`` containers too).

    ``threads``: worker threads that decode the fields of a batch (default: the number of CPUs,
    at most 4; 1 decodes in the calling thread).
    """
    return Table(
        path,
        codepage=codepage,
        memo_path=memo_path,
        strict=strict,
        long_names=long_names,
        decode_errors=decode_errors,
        threads=threads,
    )


_OPEN_KEYS = {"codepage", "memo_path", "strict", "long_names", "decode_errors", "threads"}


def read_table(path: str | Path, **kwargs: Any) -> pa.Table:
    """Open, read and close: ``open_table`` options and ``Table.read`` options together."""
    open_kwargs = {k: v for k, v in kwargs.items() if k in _OPEN_KEYS}
    read_kwargs = {k: v for k, v in kwargs.items() if k not in _OPEN_KEYS}
    with open_table(path, **open_kwargs) as table:
        return table.read(**read_kwargs)
