"""Memo files: FoxPro ``.fpt`` (and ``.dct``) and dBase ``.dbt``, located vectorially."""

from __future__ import annotations

import contextlib
import mmap
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rxvault.dbf._errors import DbfError, HeaderError, MemoLengthError, MemoPointerError

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

FPT = "fpt"
DBT3 = "dbt3"
DBT4 = "dbt4"


class MemoBudget:
    """Guards one pass over a table against memos that share blocks.

    In a sound memo file no two memos share a block: VFP and dBase give every memo its own
    blocks. So within a batch, a memo that overlaps another is an error; and all the memos
    of one pass (every record, live or deleted, every memo field) add up to at most the size
    of the memo file. Without this, a damaged table whose records all point at one large memo
    makes a few kilobytes of DBF read as gigabytes.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._lock = threading.Lock()  # fields decode on worker threads

    def claim(self, starts: I64, lengths: I64) -> npt.NDArray[np.bool_]:
        """Take the memos ``(starts, lengths)`` of one field of one batch; returns the mask
        of those refused (overlapping an earlier one, or past the pass's budget)."""
        refused = np.zeros(len(lengths), dtype=bool)
        nz = np.flatnonzero(lengths > 0)
        if len(nz) > 1:
            first, ends = starts[nz], starts[nz] + lengths[nz]
            if not bool((first[1:] >= ends[:-1]).all()):  # not simply in file order
                order = nz[np.argsort(starts[nz], kind="stable")]
                reach = np.maximum.accumulate(starts[order] + lengths[order])
                overlap = np.zeros(len(order), dtype=bool)
                overlap[1:] = starts[order][1:] < reach[:-1]
                refused[order[overlap]] = True
        kept = np.where(refused, 0, lengths)
        with self._lock:
            total = int(kept.sum())
            if self.used + total > self.size:
                running = self.used + np.cumsum(kept)
                refused |= (running > self.size) & (kept > 0)
                kept = np.where(refused, 0, lengths)
                total = int(kept.sum())
            self.used += total
        return refused


@dataclass
class Located:
    """Where each requested memo's bytes are; rows with a problem have length 0."""

    starts: I64
    lengths: I64
    problems: list[tuple[int, DbfError]] = field(default_factory=list)
    #: every row with a problem (``problems`` lists at most the first thousand of each kind)
    failed: npt.NDArray[np.bool_] | None = None


class MemoFile:
    """An open memo file (memory-mapped)."""

    def __init__(self, path: Path, kind: str, table_path: Path | None = None) -> None:
        self.path = path
        self.kind = kind
        #: errors name the table (and say "memo file" in the message)
        self.table_path = table_path or path
        with path.open("rb") as fh:
            self.size = path.stat().st_size
            self._mm: mmap.mmap | None = (
                mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
            )
        self._array: U8 = (
            np.frombuffer(self._mm, dtype=np.uint8)
            if self._mm is not None
            else np.zeros(0, dtype=np.uint8)
        )
        head = bytes(self._array[:512])
        if len(head) < 24 and kind != DBT3:
            raise HeaderError(path, f"memo file is {self.size} bytes, shorter than its header")
        if kind == FPT:
            self.next_free = struct.unpack_from(">I", head, 0)[0]
            self.block_size = struct.unpack_from(">H", head, 6)[0]
            if self.block_size == 0:
                raise HeaderError(path, "memo file block size is 0")
        else:
            self.next_free = struct.unpack_from("<I", head, 0)[0] if len(head) >= 4 else 0
            self.block_size = 512
            if kind == DBT4:
                size = struct.unpack_from("<H", head, 20)[0]
                if size:
                    self.block_size = size
        self.first_block = -(-512 // self.block_size) if kind == FPT else 1
        self._terminators: I64 | None = None

    def close(self) -> None:
        self._array = np.zeros(0, dtype=np.uint8)
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a view is still held; the GC closes it
                self._mm.close()
            self._mm = None

    def locate(
        self,
        pointers: I64,
        rows: I64,
        field_name: str,
        *,
        binary: bool = False,
        budget: MemoBudget | None = None,
    ) -> Located:
        """Find the bytes of each memo; ``rows`` are record numbers for error messages."""
        n = len(pointers)
        starts = np.zeros(n, dtype=np.int64)
        lengths = np.zeros(n, dtype=np.int64)
        problems: list[tuple[int, DbfError]] = []
        failed = np.zeros(n, dtype=bool)
        if n == 0:
            return Located(starts, lengths, problems, failed)
        bs = self.block_size
        offs = pointers * bs
        path = self.path

        def bad(mask: npt.NDArray[np.bool_], make: type[DbfError], message: str) -> None:
            failed[mask] = True
            for i in np.flatnonzero(mask)[:1000]:
                problems.append(
                    (
                        int(i),
                        make(
                            self.table_path,
                            message.format(ptr=int(pointers[i]), off=int(offs[i])),
                            record=int(rows[i]),
                            field=field_name,
                        ),
                    )
                )

        ok = np.ones(n, dtype=bool)
        inside_header = pointers < self.first_block
        bad(
            inside_header,
            MemoPointerError,
            f"memo pointer {{ptr}} points into the header of {path.name}",
        )
        ok &= ~inside_header
        if self.next_free:
            past_free = ok & (pointers >= self.next_free)
            bad(
                past_free,
                MemoPointerError,
                f"memo pointer {{ptr}} is at or beyond the next free block {self.next_free} "
                f"of {path.name}",
            )
            ok &= ~past_free
        header_len = 8 if self.kind == FPT else 0
        past_end = ok & (offs + header_len > self.size)
        bad(
            past_end,
            MemoPointerError,
            f"memo pointer {{ptr}} (byte {{off}}) is beyond the end of {path.name} "
            f"({self.size} bytes)",
        )
        ok &= ~past_end
        idx = np.flatnonzero(ok)
        arr = self._array
        if self.kind == FPT:
            if self.size >= 8:
                # the length word of every memo block, as a strided big-endian view
                words = np.ndarray(
                    shape=((self.size - 8) // bs + 1,),
                    dtype=">u4",
                    buffer=arr,
                    offset=4,
                    strides=(bs,),
                )
                lens = words[pointers[idx]].astype(np.int64)
            else:
                lens = np.zeros(0, dtype=np.int64)
            st = offs[idx] + 8
        else:
            st = np.empty(len(idx), dtype=np.int64)
            lens = np.empty(len(idx), dtype=np.int64)
            for j, i in enumerate(idx):
                st[j], lens[j] = self._dbt_memo(int(offs[i]), binary)
        too_long = st + lens > self.size
        if too_long.any():
            failed[idx[too_long]] = True
            for j in np.flatnonzero(too_long)[:1000]:
                row = int(idx[j])
                problems.append(
                    (
                        row,
                        MemoLengthError(
                            self.table_path,
                            f"memo at block {int(pointers[row])} claims {int(lens[j])} bytes, past "
                            f"the end of {self.path.name} ({self.size} bytes)",
                            record=int(rows[row]),
                            field=field_name,
                        ),
                    )
                )
            lens = np.where(too_long, 0, lens)
        if budget is not None and len(idx):
            refused = budget.claim(st, lens)
            failed[idx[refused]] = True
            for j in np.flatnonzero(refused)[:1000]:
                row = int(idx[j])
                problems.append(
                    (
                        row,
                        MemoPointerError(
                            self.table_path,
                            f"memo at block {int(pointers[row])} ({int(lens[j])} bytes) shares "
                            f"blocks with another memo of {self.path.name}",
                            record=int(rows[row]),
                            field=field_name,
                        ),
                    )
                )
            lens = np.where(refused, 0, lens)
        starts[idx] = st
        lengths[idx] = lens
        return Located(starts, lengths, problems, failed)

    def _dbt_memo(self, offset: int, binary: bool) -> tuple[int, int]:
        """(start, length) of a dBase memo (a missing terminator gives a length past the end)."""
        assert self._mm is not None
        if self.kind == DBT4 and self._mm[offset : offset + 4] == b"\xff\xff\x08\x00":
            (total,) = struct.unpack_from("<I", self._mm, offset + 4)
            start, length = offset + 8, max(total - 8, 0)
            if binary and length >= 8 and start + 8 <= self.size:
                # dBase 7 binary memos carry their own 8-byte header (type, length)
                (inner,) = struct.unpack_from("<I", self._mm, start + 4)
                if inner == length - 8:
                    return start + 8, inner
            return start, length
        end = self._next_terminator(offset)
        if end < 0:
            return offset, self.size + 1 - offset  # reported as running past the end
        return offset, end - offset

    def _next_terminator(self, offset: int) -> int:
        """Position of the first 0x1A at or after ``offset`` (-1: none).

        The positions are found once, so many records pointing into one long unterminated
        memo cost a binary search each rather than a scan to the end of the file each.
        """
        if self._terminators is None:
            chunk = 1 << 24  # bounded temporaries on a large memo file
            self._terminators = np.concatenate(
                [
                    np.flatnonzero(self._array[i : i + chunk] == 0x1A).astype(np.int64) + i
                    for i in range(0, max(len(self._array), 1), chunk)
                ]
            )
        at = int(np.searchsorted(self._terminators, offset))
        return int(self._terminators[at]) if at < len(self._terminators) else -1

    def gather(self, starts: I64, lengths: I64) -> tuple[U8, I64]:
        """Concatenate the located memos: (bytes, offsets of length n + 1)."""
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        if total == 0:
            return np.zeros(0, dtype=np.uint8), offsets
        nz = lengths > 0
        first, ends = starts[nz], starts[nz] + lengths[nz]
        if (
            len(first)
            and int(ends[-1]) - int(first[0]) <= 4 * total
            and bool((first[1:] >= ends[:-1]).all())
        ):
            # memos in file order without overlap (as VFP writes them), most of the span taken
            # (a whole table, not a few scattered records): one pass over the span with a
            # keep-mask of alternating runs (gap, memo, gap, memo …)
            lo, hi = int(first[0]), int(ends[-1])
            runs = np.empty(2 * len(first), dtype=np.int64)
            runs[0::2] = first - np.concatenate(([lo], ends[:-1]))
            runs[1::2] = ends - first
            pattern = np.zeros(len(runs), dtype=bool)
            pattern[1::2] = True
            keep = np.repeat(pattern, runs)
            return self._array[lo:hi][keep], offsets
        base = np.repeat(starts[nz] - offsets[:-1][nz], lengths[nz])
        base += np.arange(total, dtype=np.int64)
        return self._array[base], offsets
