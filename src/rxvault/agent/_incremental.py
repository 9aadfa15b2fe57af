"""The daily read from what changed: decode only the records of the patients whose data moved.

A day changes about 1% of a pharmacy's patients, but a full read decodes every record of every
table and hashes every value (about 1.2 s of a daily run on the demo pharmacy's 216 MB). This
module keeps, beside the state, a cache of what the last run found, derived from the source
alone:

- per table file and memo file, the SHA-256 of every 16 KiB page;
- per record, a 64-bit hash of its bytes (flag byte included), the hash of each key it carries
  (the patient key; a join's key; the key a join looks up) and the bytes of the memo file its
  memo fields occupy;
- every patient's id, record number and digest.

A run hashes the pages again (the files are read once, as the source digest already read them),
and only records in pages that differ, or appended, have their bytes hashed again; a record
whose memo pages differ counts as changed too (Visual FoxPro rewrites a memo in place, leaving
the record's bytes alone). The changed records' old and new keys name the patients whose
documents may have changed: every record of those patients (found by the cached key hashes) is
decoded, strictly, and :func:`rxvault.agent._documents.prepare` computes their digests exactly as
a full read would (a digest sums its rows' hashes, so it does not matter that the other patients'
rows are absent). A changed record of a joined table (a drug's name) marks every row that joins
to its old or new key. The other patients keep their cached digests.

Key hashes are of the trimmed text of the key, so equal keys always hash alike whatever the
field types; a collision only makes a patient recomputed for nothing. A record or page change
goes unnoticed with probability about 2**-64, as a digest change does.

Anything the cache cannot vouch for reads everything: no cache, another mapping, pharmacy name
or digest version, a table whose structure, record length or memo block size changed, fewer
records than before (a PACK or ZAP), or more than :data:`FULL_SHARE` of a table's records
changed. A full read rebuilds the cache. A table that is both joined to and a patient or
section table is always read whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from rxvault.agent._digest import U64, combine, hash_column, mix, seed_of
from rxvault.agent._documents import (
    DIGEST_VERSION,
    DOCUMENT_FORMAT,
    Documents,
    key_strings,
    prepare,
)
from rxvault.agent._mapping import Mapping
from rxvault.agent._source import (
    PAGE,
    FilePages,
    OpenTable,
    SourceRead,
    read_source,
    table_stamp,
)
from rxvault.dbf import MemoPointerError

__all__ = ["CACHE_NAME", "FULL_SHARE", "PAGE", "RECNO", "IncrementalRead"]

log = logging.getLogger("rxvault.agent")

CACHE_NAME = "source-cache.bin"
CACHE_FORMAT = "rxvault/source-cache/2"
#: a full read at least this often (seconds): it checks what only a whole read can (memos that
#: share blocks across the whole table) and bounds what an undetected change could cost
FULL_EVERY = 7 * 24 * 3600
#: past this share of a table's records changed, a full read is cheaper
FULL_SHARE = 0.25
#: the 1-based record number, a column of every table this module reads (no field is named so)
RECNO = "_recno#"
_KEY_SEED = seed_of("rxvault/source-cache/key")
_RECORD_SEED = seed_of("rxvault/source-cache/record")
_DIGEST = 32

I64 = npt.NDArray[np.int64]


#: records hashed, or located in the memo file, at a time (bounded temporaries on large tables)
_STEP = 65536


def record_hashes(records: npt.NDArray[np.uint8]) -> U64:
    """A 64-bit hash of each record's bytes (rows of ``records``), 8 bytes at a time."""
    n, width = records.shape
    words = -(-width // 8)
    out = np.empty(n, dtype=np.uint64)
    for start in range(0, n, _STEP):
        part = records[start : start + _STEP]
        padded = np.zeros((len(part), words * 8), dtype=np.uint8)
        padded[:, :width] = part
        view = padded.view("<u8")
        h = mix(np.full(len(part), _RECORD_SEED ^ width, dtype=np.uint64))
        for w in range(words):
            h = mix(h ^ view[:, w])
        out[start : start + len(part)] = h
    return out


def _decode(o: OpenTable, rows: I64 | None = None, columns: list[str] | None = None) -> pa.Table:
    """The live records (all, or those at positions ``rows``) of ``columns`` (as the mapping
    spells them; default: every column it reads), with their record numbers (``RECNO``)."""
    columns = o.columns if columns is None else columns
    spelled = dict(zip(o.columns, o.actual, strict=True))
    actual = [spelled[c] for c in columns]
    if rows is None:
        table = o.table.read(columns=actual, with_recno=True)
    else:
        table = o.table.read_records(rows, actual, with_recno=True)
    return table.rename_columns([*columns, RECNO])


def _memo_extents(t: OpenTable, rows: I64, lo: I64, hi: I64) -> None:
    """Fill ``lo[rows]`` and ``hi[rows]`` with the rows' memo extents, a step at a time."""
    for start in range(0, len(rows), _STEP):
        part = rows[start : start + _STEP]
        lo[part], hi[part] = t.table.memo_extents(part, t.actual)


def key_hashes(column: pa.ChunkedArray | pa.Array) -> U64:
    """Hash of each key's trimmed text: keys that ``prepare`` matches always hash alike."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    return hash_column(key_strings(column), _KEY_SEED)


@dataclass
class _Roles:
    """Which key columns of which tables matter, from the mapping."""

    keys: dict[str, list[str]]  # table -> columns whose key hashes are cached
    whole: set[str]  # tables read whole every time (joined to)
    incremental: bool  # False: a table is both joined to and a patient or section table

    @classmethod
    def of(cls, mapping: Mapping) -> _Roles:
        keys: dict[str, list[str]] = {name: [] for name in mapping.tables}

        def add(table: str, column: str) -> None:
            if column not in keys[table]:
                keys[table].append(column)

        add(mapping.patient.table, mapping.patient.key)
        rows = {mapping.patient.table}
        whole: set[str] = set()
        for s in mapping.sections:
            add(s.table, s.patient_key)
            rows.add(s.table)
            for j in s.joins:
                add(s.table, j.key)
                add(j.table, j.on)
                whole.add(j.table)
        return cls(keys, whole, not (whole & rows))


@dataclass
class _TableCache:
    shape: list[Any]  # what the hashes assume of the table (see _shape)
    pages: bytes
    memo_pages: bytes
    records: U64
    keys: dict[str, U64]
    memo_lo: I64  # (records, memo fields read): first byte of each memo in the memo file, or -1
    memo_hi: I64  # … and the byte after its last (block header and terminator included)
    memos: U64  # hash of the record's memo values (0: deleted, or no memo field read)

    @property
    def count(self) -> int:
        return len(self.records)


@dataclass
class _Cache:
    key: str
    tables: dict[str, _TableCache]
    patient_ids: list[str]
    patient_recnos: I64
    digests: U64


def _shape(t: OpenTable) -> list[Any]:
    """What the cached hashes of a table assume: its layout, and which field each column the
    mapping reads is (long names come from the ``.dbc``, which can change on its own)."""
    table = t.table
    memo = table.memo
    header = bytearray(table.header_bytes())
    header[1:8] = bytes(7)  # the last-update date and the record count move every day
    at = 32
    while at + 32 <= len(header) and header[at] != 0x0D:
        header[at + 19 : at + 23] = bytes(4)  # and a field's next autoincrement value
        at += 32
    return [
        hashlib.sha256(header).hexdigest(),
        table.codepage,
        table.header_length,
        table.record_length,
        memo.block_size if memo else 0,
        [[f.name, f.long_name, f.type, f.offset, f.length, f.decimals] for f in table.fields],
        t.actual,
    ]


def member(values: U64, wanted: U64) -> npt.NDArray[np.bool_]:
    """``np.isin(values, wanted)`` for a few wanted values among many: a binary search per
    value instead of sorting them all."""
    keys = np.unique(wanted)
    if not len(keys):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(keys, values)
    at[at == len(keys)] = 0
    found: npt.NDArray[np.bool_] = keys[at] == values
    return found


def _memo_hashes(table: pa.Table, columns: list[str]) -> U64:
    """A hash of each row's memo values (the memo fields among ``columns``)."""
    hashes = [
        hash_column(table.column(c), seed_of("rxvault/source-cache/memo", c)) for c in columns
    ]
    return combine(hashes, _RECORD_SEED, table.num_rows)


def _memo_columns(t: OpenTable) -> list[str]:
    """The memo fields among the columns the mapping reads (as the mapping spells them)."""
    memo = {f.column_name for f in t.table.fields if f.is_memo}
    return [c for c, a in zip(t.columns, t.actual, strict=True) if a in memo]


_MAGIC = b"rxvault-source-cache/2\n"


def _write_arrays(path: Path, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
    """One file: a magic line, the length of a JSON header (meta, and each array's name,
    dtype, length and offset), the header, then the arrays' bytes. Written beside the
    file and moved over it, so a reader sees the old cache or the new one."""
    layout = []
    offset = 0
    for name, array in arrays.items():
        layout.append([name, array.dtype.str, list(array.shape), offset])
        offset += array.nbytes + (-array.nbytes % 8)
    head = json.dumps({"meta": meta, "arrays": layout}).encode("utf-8")
    head += b" " * (-len(head) % 8)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(_MAGIC + len(head).to_bytes(8, "little") + head)
        for a in arrays.values():
            data = np.ascontiguousarray(a)
            if data.nbytes:
                f.write(data.reshape(-1).data.cast("B"))
            f.write(b"\0" * (-data.nbytes % 8))
    os.replace(tmp, path)


def _read_arrays(path: Path) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError("not a source cache")
    at = len(_MAGIC)
    size = int.from_bytes(data[at : at + 8], "little")
    head = json.loads(data[at + 8 : at + 8 + size].decode("utf-8"))
    base = at + 8 + size
    arrays = {}
    for name, dtype, shape, offset in head["arrays"]:
        count = int(np.prod(shape))
        array = np.frombuffer(data, dtype=np.dtype(dtype), count=count, offset=base + offset)
        arrays[name] = array.reshape(shape)
    return head["meta"], arrays


def _check_shared_blocks(
    o: OpenTable, memo_columns: list[str], lo: I64, hi: I64, changed: I64
) -> None:
    """The check a full read's memo budget makes, for the changed records: no memo of theirs
    shares a block with another memo (of any record). In a sound memo file every memo has its
    own blocks; a record pointing into another's would publish that other record's text."""
    memo = o.table.memo
    if memo is None or not len(changed):
        return
    bs = memo.block_size
    present = lo >= 0
    first = lo[present] // bs
    end = -(-hi[present] // bs)
    size = int(end.max()) + 1 if len(end) else 1
    cover = np.cumsum(np.bincount(first, minlength=size) - np.bincount(end, minlength=size))
    crowded = np.concatenate(([0], np.cumsum(cover >= 2)))
    mine_lo, mine_hi = lo[changed], hi[changed]
    mine = mine_lo >= 0
    b0 = np.where(mine, mine_lo // bs, 0)
    b1 = np.where(mine, -(-mine_hi // bs), 0)
    shared = mine & (crowded[b1] - crowded[b0] > 0)
    if shared.any():
        rows, ks = np.nonzero(shared)
        row, k = int(rows[0]), int(ks[0])
        actual = dict(zip(o.columns, o.actual, strict=True))[memo_columns[k]]
        name = next(f.name for f in o.table.fields if f.column_name == actual)
        raise MemoPointerError(
            o.table.path,
            f"memo at block {int(b0[row, k])} shares blocks with another memo of {memo.path.name}",
            record=int(changed[row]) + 1,
            field=name,  # as the reader names fields in its errors
        )


def _joined(parts: list[bytes]) -> bytes:
    return b"".join(parts)


def _changed_pages(old: bytes, new: list[bytes]) -> list[int]:
    """Pages whose digest differs, and pages past the old end."""
    a = np.frombuffer(old, dtype=np.uint8).reshape(-1, _DIGEST)
    b = np.frombuffer(b"".join(new), dtype=np.uint8).reshape(-1, _DIGEST)
    common = min(len(a), len(b))
    changed: list[int] = np.flatnonzero((a[:common] != b[:common]).any(axis=1)).tolist()
    return changed + list(range(common, len(b)))


@dataclass
class _Change:
    """What one table's read found changed, against the cache."""

    changed: I64  # record positions whose bytes or memos changed (or appended)
    old_keys: dict[str, U64]  # the cached key hashes of the changed records that existed


@dataclass
class _Result:
    full: bool
    dirty: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


class IncrementalRead:
    """One run's read of the source through the cache (see the module's docstring)."""

    def __init__(
        self,
        mapping: Mapping,
        pharmacy_name: str,
        path: Path,
        *,
        pages: dict[str, FilePages] | None = None,
        attempts: int = 4,
        wait: float = 2.0,
    ) -> None:
        self.mapping = mapping
        self.hint = pages or {}
        self.attempts = attempts
        self.wait = wait
        self.pharmacy_name = pharmacy_name
        self.path = path
        self.roles = _Roles.of(mapping)
        self.key = json.dumps(
            [
                CACHE_FORMAT,
                mapping.text_digest,
                pharmacy_name,
                DOCUMENT_FORMAT,
                DIGEST_VERSION,
                PAGE,
                sorted((n, t.file.lower()) for n, t in mapping.tables.items()),
            ]
        )
        self.full_at = 0.0
        self.cache = self._load() if self.roles.incremental else None
        self.new: dict[str, _TableCache] = {}
        self.result = _Result(full=True)

    # -- the cache file ---------------------------------------------------------------------

    def _load(self) -> _Cache | None:
        try:
            meta, z = _read_arrays(self.path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            log.warning("source cache %s unreadable (%s): reading everything", self.path, exc)
            return None
        if meta.get("key") != self.key:
            return None
        age = time.time() - float(meta.get("full_at", 0))
        if not 0 <= age < FULL_EVERY:
            return None  # the weekly full read (or a clock set back)
        self.full_at = float(meta["full_at"])
        tables = {}
        for i, (name, shape) in enumerate(meta["tables"]):
            p = f"t{i}_"
            tables[name] = _TableCache(
                shape=shape,
                pages=z[p + "pages"].tobytes(),
                memo_pages=z[p + "memo_pages"].tobytes(),
                records=z[p + "records"],
                keys={c: z[f"{p}key{k}"] for k, c in enumerate(meta["keys"][name])},
                memo_lo=z[p + "memo_lo"],
                memo_hi=z[p + "memo_hi"],
                memos=z[p + "memos"],
            )
        blob = z["ids"].tobytes().decode("utf-8")
        ends = z["id_ends"].tolist()
        ids = [blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        return _Cache(self.key, tables, ids, z["recnos"], z["digests"])

    def save(self, docs: Documents | LazyDocuments) -> None:
        """Write the cache for the source just read (atomically; readable by its owner only)."""
        if not self.roles.incremental or not self.new:
            return
        if isinstance(docs, LazyDocuments):
            ids, recnos, digests = docs.patient_ids, docs.recnos, docs.digests
        else:
            ids = docs.patient_ids
            recnos = np.asarray(docs.patient_column(RECNO), dtype=np.int64)
            digests = docs.digests
        full_at = time.time() if self.result.full else self.full_at
        arrays: dict[str, npt.NDArray[Any]] = {}
        meta: dict[str, Any] = {"key": self.key, "full_at": full_at, "tables": [], "keys": {}}
        for i, (name, t) in enumerate(self.new.items()):
            p = f"t{i}_"
            meta["tables"].append([name, t.shape])
            meta["keys"][name] = list(t.keys)
            arrays[p + "pages"] = np.frombuffer(t.pages, dtype=np.uint8)
            arrays[p + "memo_pages"] = np.frombuffer(t.memo_pages, dtype=np.uint8)
            arrays[p + "records"] = t.records
            for k, column in enumerate(t.keys.values()):
                arrays[f"{p}key{k}"] = column
            arrays[p + "memo_lo"] = t.memo_lo
            arrays[p + "memo_hi"] = t.memo_hi
            arrays[p + "memos"] = t.memos
        arrays["ids"] = np.frombuffer("".join(ids).encode("utf-8"), dtype=np.uint8)
        # ends in characters, for slicing the decoded text
        arrays["id_ends"] = np.cumsum(
            np.fromiter((len(pid) for pid in ids), dtype=np.int64, count=len(ids))
        )
        arrays["recnos"] = np.asarray(recnos, dtype=np.int64)
        arrays["digests"] = np.asarray(digests, dtype=np.uint64)
        _write_arrays(self.path, meta, arrays)

    # -- reading ----------------------------------------------------------------------------

    def read(self, directory: Path) -> SourceRead:
        return read_source(
            self.mapping,
            directory,
            attempts=self.attempts,
            wait=self.wait,
            read_tables=self._read_tables,
        )

    def _pages(self, o: OpenTable) -> tuple[list[bytes], list[bytes]]:
        """The table's page digests: those the source digest took, if the table has not moved
        since (its stamp) and they cover its files; else hashed now."""
        hint = self.hint.get(o.name)
        t = o.table
        memo_size = t.memo.size if t.memo else 0
        if (
            hint is not None
            and len(hint.table) == -(-t.file_size // PAGE)
            and len(hint.memo) == -(-memo_size // PAGE)
            and table_stamp(t.path) == hint.stamp
        ):
            return hint.table, hint.memo
        return t.page_digests(PAGE)

    def _read_tables(self, opened: dict[str, OpenTable]) -> dict[str, pa.Table]:
        self.new = {}
        pages = {name: self._pages(o) for name, o in opened.items()}
        changes = self._changes(opened, pages) if self.cache is not None else None
        if changes is None:
            self.result = _Result(full=True)
            return self._read_whole(opened, pages)
        assert self.cache is not None
        dirty = self._dirty(opened, changes)
        self.result = _Result(full=False, dirty=dirty)
        return self._read_dirty(opened, dirty)

    def _read_whole(
        self, opened: dict[str, OpenTable], pages: dict[str, tuple[list[bytes], list[bytes]]]
    ) -> dict[str, pa.Table]:
        data = {}
        for name, o in opened.items():
            t = o.table
            table = _decode(o)
            data[name] = table
            if not self.roles.incremental:
                continue
            n = t.record_count_read
            live = np.asarray(table.column(RECNO), dtype=np.int64) - 1
            keys = {}
            for column in self.roles.keys[name]:
                values = np.zeros(n, dtype=np.uint64)
                values[live] = key_hashes(table.column(column))
                keys[column] = values
            memo_columns = _memo_columns(o)
            lo = np.full((n, len(memo_columns)), -1, dtype=np.int64)
            hi = np.full((n, len(memo_columns)), -1, dtype=np.int64)
            memos = np.zeros(n, dtype=np.uint64)
            if memo_columns:
                _memo_extents(o, live, lo, hi)
                memos[live] = _memo_hashes(table, memo_columns)
            self.new[name] = _TableCache(
                shape=_shape(o),
                pages=_joined(pages[name][0]),
                memo_pages=_joined(pages[name][1]),
                records=record_hashes(t.raw_records()),
                keys=keys,
                memo_lo=lo,
                memo_hi=hi,
                memos=memos,
            )
        return data

    def _changes(
        self, opened: dict[str, OpenTable], pages: dict[str, tuple[list[bytes], list[bytes]]]
    ) -> dict[str, _Change] | None:
        """The changed records of every table, with the cache brought up to date; None when
        the cache cannot vouch for the source (read everything)."""
        assert self.cache is not None
        out: dict[str, _Change] = {}
        for name, o in opened.items():
            old = self.cache.tables.get(name)
            t = o.table
            n = t.record_count_read
            shape = _shape(o)
            if old is None or json.dumps(old.shape) != json.dumps(shape) or n < old.count:
                return None
            table_pages, memo_pages = pages[name]
            hl, rl = t.header_length, t.record_length
            candidates = [np.arange(old.count, n, dtype=np.int64)]
            for p in _changed_pages(old.pages, table_pages):
                first = max(0, (p * PAGE - hl) // rl)
                last = min(old.count, ((p + 1) * PAGE - 1 - hl) // rl + 1)
                if last > first:
                    candidates.append(np.arange(first, last, dtype=np.int64))
            cand = np.unique(np.concatenate(candidates))
            records = np.zeros(n, dtype=np.uint64)
            records[: old.count] = old.records
            fresh = record_hashes(t.raw_records()[cand]) if len(cand) else records[:0]
            moved = cand[(cand >= old.count) | (fresh != records[np.minimum(cand, n - 1)])]
            records[cand] = fresh
            memos = np.zeros(n, dtype=np.uint64)
            memos[: old.count] = old.memos
            memo_columns = _memo_columns(o)
            memo_changed = _changed_pages(old.memo_pages, memo_pages)
            if memo_changed and memo_columns:
                # records whose memos lie in a changed page: their memo values are compared
                # (a 16 KiB page holds many short memos, most of them unchanged)
                hit = np.zeros(len(old.memo_pages) // _DIGEST + 1, dtype=np.int64)
                hit[[p for p in memo_changed if p < len(hit)]] = 1
                cum = np.concatenate(([0], np.cumsum(hit)))
                has = old.memo_lo >= 0
                lo_page = np.where(has, old.memo_lo // PAGE, 0)
                hi_page = np.minimum(np.where(has, (old.memo_hi - 1) // PAGE + 1, 0), len(hit))
                lo_page = np.minimum(lo_page, hi_page)
                touched = np.flatnonzero((has & (cum[hi_page] - cum[lo_page] > 0)).any(axis=1))
                touched = np.setdiff1d(touched, moved, assume_unique=True)
                if len(touched):
                    values = _decode(o, touched, memo_columns)
                    live = np.asarray(values.column(RECNO), dtype=np.int64) - 1
                    differs = _memo_hashes(values, memo_columns) != old.memos[live]
                    gone = np.setdiff1d(touched, live, assume_unique=True)  # deleted since
                    moved = np.union1d(moved, np.union1d(live[differs], gone))
            if len(moved) > FULL_SHARE * max(n, 1) and n > 1000:
                return None
            existing = moved[moved < old.count]
            keys = {}
            for column, values in old.keys.items():
                grown = np.zeros(n, dtype=np.uint64)
                grown[: old.count] = values
                keys[column] = grown
            lo = np.full((n, len(memo_columns)), -1, dtype=np.int64)
            hi = np.full((n, len(memo_columns)), -1, dtype=np.int64)
            lo[: old.count], hi[: old.count] = old.memo_lo, old.memo_hi
            out[name] = _Change(
                changed=moved, old_keys={c: v[existing] for c, v in old.keys.items()}
            )
            decoded = _decode(o, moved)
            live = np.asarray(decoded.column(RECNO), dtype=np.int64) - 1
            for column, values in keys.items():
                values[moved] = 0
                values[live] = key_hashes(decoded.column(column))
            lo[moved], hi[moved] = -1, -1
            memos[moved] = 0
            if memo_columns:
                _memo_extents(o, live, lo, hi)
                memos[live] = _memo_hashes(decoded, memo_columns)
                _check_shared_blocks(o, memo_columns, lo, hi, live)
            self.new[name] = _TableCache(
                shape=shape,
                pages=_joined(table_pages),
                memo_pages=_joined(memo_pages),
                records=records,
                keys=keys,
                memo_lo=lo,
                memo_hi=hi,
                memos=memos,
            )
        return out

    def _dirty(self, opened: dict[str, OpenTable], changes: dict[str, _Change]) -> U64:
        """The key hashes of every patient whose rows may have changed."""
        m = self.mapping
        found: list[U64] = []

        def both(table: str, column: str) -> None:
            c = changes[table]
            found.append(c.old_keys[column])
            found.append(self.new[table].keys[column][c.changed])

        both(m.patient.table, m.patient.key)
        for s in m.sections:
            both(s.table, s.patient_key)
            for j in s.joins:
                c = changes[j.table]
                if not len(c.changed):
                    continue
                looked_up = np.concatenate(
                    (c.old_keys[j.on], self.new[j.table].keys[j.on][c.changed])
                )
                rows = self.new[s.table]
                hit = member(rows.keys[j.key], looked_up[looked_up != 0])
                found.append(rows.keys[s.patient_key][hit])
        dirty: U64 = np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)
        nonzero: U64 = dirty[dirty != 0]
        return nonzero

    def _read_dirty(self, opened: dict[str, OpenTable], dirty: U64) -> dict[str, pa.Table]:
        """Every record of the patients in ``dirty`` (key hashes); joined tables whole."""
        m = self.mapping
        data: dict[str, pa.Table] = {}
        by_table: dict[str, list[str]] = {}
        by_table.setdefault(m.patient.table, []).append(m.patient.key)
        for s in m.sections:
            by_table.setdefault(s.table, []).append(s.patient_key)
        for name, o in opened.items():
            if name in self.roles.whole:
                data[name] = _decode(o)
                continue
            columns = by_table.get(name, [])
            if columns and len(dirty):
                keys = self.new[name].keys
                hit = np.zeros(len(next(iter(keys.values()))), dtype=bool)
                for column in columns:
                    hit |= member(keys[column], dirty)
                rows = np.flatnonzero(hit)
            else:
                rows = np.zeros(0, dtype=np.int64)
            data[name] = _decode(o, rows)
        return data

    # -- documents --------------------------------------------------------------------------

    def prepare(self, source: SourceRead) -> Documents | LazyDocuments:
        """Every patient's digest: all computed (a full read) or the dirty ones computed and
        the others from the cache."""
        if self.result.full or self.cache is None:
            return prepare(self.mapping, source, self.pharmacy_name)
        cache = self.cache
        dirty = self.result.dirty
        sub = self._sub(source, dirty)
        keep = ~member(key_hashes(pa.array(cache.patient_ids, type=pa.string())), dirty)
        kept = np.flatnonzero(keep)
        if sub is not None:
            accepted = np.flatnonzero(member(sub.key_hashes, dirty))
            recnos = np.concatenate((cache.patient_recnos[kept], sub.recnos[accepted]))
            digests = np.concatenate((cache.digests[kept], sub.docs.digests[accepted]))
            ids = [cache.patient_ids[i] for i in kept.tolist()]
            ids += [sub.docs.patient_ids[i] for i in accepted.tolist()]
        else:
            recnos = cache.patient_recnos[kept]
            digests = cache.digests[kept]
            ids = [cache.patient_ids[i] for i in kept.tolist()]
        order = np.argsort(recnos, kind="stable")
        return LazyDocuments(
            self,
            source.directory,
            patient_ids=[ids[i] for i in order.tolist()],
            recnos=recnos[order],
            digests=digests[order],
            sub=sub,
        )

    def _sub(self, source: SourceRead, dirty: U64) -> _Sub | None:
        if not len(dirty):
            return None
        docs = prepare(self.mapping, source, self.pharmacy_name, subset=True)
        return _Sub(docs)

    def load(self, directory: Path, keys: U64) -> _Sub | None:
        """The documents of the patients with these key hashes, read afresh."""

        def read_tables(opened: dict[str, OpenTable]) -> dict[str, pa.Table]:
            return self._read_dirty(opened, keys)

        source = read_source(
            self.mapping, directory, attempts=self.attempts, wait=self.wait, read_tables=read_tables
        )
        return self._sub(source, keys)


class _Sub:
    """The documents of a subset of the patients (their rows only)."""

    def __init__(self, docs: Documents) -> None:
        self.docs = docs
        self.recnos = np.asarray(docs.patient_column(RECNO), dtype=np.int64)
        self.key_hashes = key_hashes(pa.array(docs.patient_ids, type=pa.string()))


class LazyDocuments:
    """Every patient's id and digest; documents built from the rows decoded for the changed
    patients, others read when asked for (a patient whose key was registered today)."""

    def __init__(
        self,
        reader: IncrementalRead,
        directory: Path,
        *,
        patient_ids: list[str],
        recnos: I64,
        digests: U64,
        sub: _Sub | None,
    ) -> None:
        self.reader = reader
        self.directory = directory
        self.mapping = reader.mapping
        self.pharmacy_name = reader.pharmacy_name
        self.patient_ids = patient_ids
        self.recnos = recnos
        self.digests = digests
        self._sub = sub
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.patient_ids)

    def index_of(self, patient_id: str) -> int | None:
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self.patient_ids)}
        return self._index.get(patient_id)

    def build(self, indices: Sequence[int] | I64) -> Iterator[tuple[int, bytes]]:
        for chunk in self.build_chunks(indices, len(indices) or 1):
            yield from chunk

    def build_chunks(
        self, indices: Sequence[int] | I64, chunk: int
    ) -> Iterator[list[tuple[int, bytes]]]:
        wanted = np.unique(np.asarray(indices, dtype=np.int64))
        ids = [self.patient_ids[i] for i in wanted.tolist()]
        sub = self._sub
        have = sub.docs if sub is not None else None
        missing = [pid for pid in ids if have is None or have.index_of(pid) is None]
        if missing:
            keys = key_hashes(pa.array(missing, type=pa.string()))
            if sub is not None:
                keys = np.union1d(keys, sub.key_hashes)
            sub = self.reader.load(self.directory, keys)
            self._sub = sub
        if not len(wanted):
            return
        assert sub is not None
        local: list[int] = []
        for pid in ids:
            i = sub.docs.index_of(pid)
            if i is None:
                raise RuntimeError(f"patient {pid!r} left the source during the run")
            local.append(i)
        back = {i: int(full) for i, full in zip(local, wanted.tolist(), strict=True)}
        for part in sub.docs.build_chunks(local, chunk):
            yield [(back[i], data) for i, data in part]
