"""Hostile DBF input (issue 8, harness 5): a catalogue of damaged tables and memo files.

A *case* is a function of a sound table (its bytes, its memo file's bytes, and its layout as
the reader sees it) that returns damaged bytes: truncations at every record boundary and
memo block and at seeded random offsets, headers whose counts and lengths lie, 0x1A in the
middle, zeroed records, memo pointers into the header / past the next free block / past the
end, memo lengths past the end or huge, a memo block size of 0, records sharing one memo, a
missing or empty memo file, a wrong code page, garbage flag bytes and values …

Each case says which errors the strict reader may give (``DbfError`` subclasses by name) and
whether reading exactly the sound table is also acceptable (only where the damage touches
nothing the table needs, such as the padding after the last memo).

``python -m reliability._dbf_hostile OUT.json`` runs every case over the sound table of
:func:`write_sound` (strict and lenient), with tracemalloc and the Arrow bytes allocated at the
high points of each read, and writes the outcomes. The test runs it in a child process under
CPU-time and address-space limits (setrlimit), so a hang or a memory blow-up fails the child,
never the machine.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import resource
import struct
import tempfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from rxvault.dbf import DbfError, FieldSpec, open_table, write_table

from ._peak import peak_rss_kib

RECORDS = 12
BLOCK = 64
ANY = ("*",)  # any DbfError (cases where the first symptom depends on where the cut falls)
FIELDS = [
    FieldSpec("NAME", "C", 20, nullable=True),
    FieldSpec("QTY", "N", 8, 2),
    FieldSpec("BORN", "D"),
    FieldSpec("OK", "L"),
    FieldSpec("NOTES", "M", nullable=True),
    FieldSpec("AT", "T"),
    FieldSpec("ID", "I"),
    FieldSpec("BLOB", "W"),
]


def sound_rows() -> list[dict[str, Any]]:
    names = ["Zoë Müller", "José Núñez", "Ann", None, "Françoise", "Ödön", "Bo", "Ça", "Eve"]
    return [
        {
            "NAME": names[i % len(names)],
            "QTY": Decimal(i * 125) / 100,
            "BORN": dt.date(1940 + i, 1 + i % 12, 1 + i),
            "OK": i % 2 == 0,
            "NOTES": None if i == 3 else f"note {i}: " + "penicillin; " * (i * 3),
            "AT": dt.datetime(2024, 1, 1 + i, 8, i, 0),
            "ID": 1000 + i,
            "BLOB": bytes(range(i * 7 % 256)) * 2,
        }
        for i in range(RECORDS)
    ]


def write_sound(directory: Path) -> Path:
    """The sound table: VFP, cp1252 names with accents, two memo fields, two deleted rows."""
    path = directory / "t.dbf"
    write_table(
        path,
        FIELDS,
        sound_rows(),
        codepage="cp1252",
        memo_block_size=BLOCK,
        deleted=[i in (2, 7) for i in range(RECORDS)],
        last_update=dt.date(2024, 2, 29),
    )
    return path


@dataclass(frozen=True)
class Layout:
    """What the cases need to know of a sound table (read with the reader, which reads it)."""

    header_length: int
    record_length: int
    records: int
    offsets: dict[str, tuple[int, int]]  # field -> (offset in the record, length)
    memo_fields: list[str]
    pointers: dict[str, list[int]]  # memo field -> block number per record (0: none)
    block_size: int
    memo_size: int

    @classmethod
    def of(cls, path: Path) -> Layout:
        with open_table(path, long_names=False) as t:
            offsets = {f.name: (f.offset, f.length) for f in t.header.fields}
            memo_fields = [f.name for f in t.fields if f.is_memo and f.length == 4]
            memo = t.memo
        data = path.read_bytes()
        hl = int.from_bytes(data[8:10], "little")
        rl = int.from_bytes(data[10:12], "little")
        n = int.from_bytes(data[4:8], "little")
        pointers = {
            name: [
                int.from_bytes(
                    data[hl + i * rl + offsets[name][0] : hl + i * rl + offsets[name][0] + 4],
                    "little",
                )
                for i in range(n)
            ]
            for name in memo_fields
        }
        return cls(
            hl,
            rl,
            n,
            offsets,
            memo_fields,
            pointers,
            memo.block_size if memo else 0,
            memo.size if memo else 0,
        )


@dataclass
class Files:
    dbf: bytearray
    memo: bytearray | None  # None: the memo file is removed


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Files, Layout], None]
    strict: tuple[str, ...]  # error class names allowed in strict mode (ANY: any DbfError)
    record: int | None = None  # the record the strict error must name, when it is certain
    same_ok: bool = False  # reading exactly the sound table is acceptable too
    # a changed value that no reader can tell from a real one (a memo pointer set to 0 is an
    # empty memo, as VFP writes it): acceptable, but never a record fewer
    value_change_ok: bool = False


def _u32(data: bytearray, at: int, value: int, *, big: bool = False) -> None:
    data[at : at + 4] = struct.pack(">I" if big else "<I", value & 0xFFFFFFFF)


def _u16(data: bytearray, at: int, value: int, *, big: bool = False) -> None:
    data[at : at + 2] = struct.pack(">H" if big else "<H", value & 0xFFFF)


def _rec(lay: Layout, i: int) -> int:
    """Byte offset of record ``i`` (0-based)."""
    return lay.header_length + i * lay.record_length


def _memo_record(lay: Layout) -> int:
    """A record (0-based) with a NOTES memo in the middle of the table."""
    return next(i for i in range(lay.records // 2, lay.records) if lay.pointers["NOTES"][i])


def _set_pointer(files: Files, lay: Layout, i: int, block: int, field: str = "NOTES") -> None:
    _u32(files.dbf, _rec(lay, i) + lay.offsets[field][0], block)


def _truncate_dbf(at: Callable[[Layout], int]) -> Callable[[Files, Layout], None]:
    def damage(files: Files, lay: Layout) -> None:
        del files.dbf[at(lay) :]

    return damage


def _truncate_memo(at: Callable[[Layout], int]) -> Callable[[Files, Layout], None]:
    def damage(files: Files, lay: Layout) -> None:
        assert files.memo is not None
        del files.memo[at(lay) :]

    return damage


def _cases_for(
    kinds: list[tuple[str, Callable[[Files, Layout], None], tuple[str, ...]]],
) -> list[Case]:
    return [Case(name, damage, strict) for name, damage, strict in kinds]


def catalogue(seed: int = 5, random_cuts: int = 24) -> list[Case]:
    """Every hostile case over the sound table (:func:`write_sound`)."""
    cases: list[Case] = []
    rng = random.Random(seed)

    # -- truncation of the table ------------------------------------------------------------
    for k in range(RECORDS):
        cases.append(
            Case(
                f"dbf-cut-at-record-{k + 1}",
                _truncate_dbf(lambda lay, k=k: _rec(lay, k)),
                ("TruncatedError",),
                record=k + 1,
            )
        )
        cases.append(
            Case(
                f"dbf-cut-inside-record-{k + 1}",
                _truncate_dbf(lambda lay, k=k: _rec(lay, k) + lay.record_length // 2),
                ("TruncatedError",),
                record=k + 1,
            )
        )
    cases.append(
        Case(
            "dbf-cut-eof-mark-only",  # the 0x1A after the last record is optional
            _truncate_dbf(lambda lay: _rec(lay, lay.records)),
            (),
            same_ok=True,
        )
    )
    for at in (0, 1, 8, 31, 32, 33, 64):
        cases.append(
            Case(
                f"dbf-cut-in-header-at-{at}",
                _truncate_dbf(lambda lay, at=at: at),
                ("HeaderError", "TerminatorError", "TruncatedError", "RecordLengthError"),
            )
        )
    cases.append(
        Case(
            "dbf-cut-before-terminator",
            _truncate_dbf(lambda lay: lay.header_length - 264),
            ("HeaderError", "TerminatorError", "TruncatedError"),
        )
    )
    for j in range(random_cuts):
        frac = rng.random()
        cases.append(
            Case(
                f"dbf-cut-random-{j}-at-{frac:.4f}",
                _truncate_dbf(lambda lay, frac=frac: int(frac * (_rec(lay, lay.records) + 1))),
                ANY,
                same_ok=True,  # past the last record: only the end-of-file mark is cut
            )
        )

    # -- truncation of the memo file -------------------------------------------------------
    def memo_starts(lay: Layout) -> list[int]:
        return sorted(
            {p for p in lay.pointers["NOTES"] if p} | {p for p in lay.pointers["BLOB"] if p}
        )

    for j in range(12):
        cases.append(
            Case(
                f"memo-cut-at-memo-{j}",
                _truncate_memo(lambda lay, j=j: memo_starts(lay)[j] * lay.block_size),
                ("MemoPointerError", "MemoLengthError"),
            )
        )
        cases.append(
            Case(
                f"memo-cut-inside-memo-{j}",
                _truncate_memo(lambda lay, j=j: memo_starts(lay)[j] * lay.block_size + 9),
                ("MemoPointerError", "MemoLengthError"),
            )
        )
    for at in (0, 4, 8, 23, 511):
        cases.append(
            Case(
                f"memo-cut-in-header-at-{at}",
                _truncate_memo(lambda lay, at=at: at),
                ("HeaderError", "MemoPointerError", "MemoLengthError"),
            )
        )
    for j in range(random_cuts):
        frac = rng.random()
        cases.append(
            Case(
                f"memo-cut-random-{j}-at-{frac:.4f}",
                _truncate_memo(lambda lay, frac=frac: int(frac * lay.memo_size)),
                ("HeaderError", "MemoPointerError", "MemoLengthError"),
                same_ok=True,  # inside the padding of the last block
            )
        )

    # -- header fields that lie ---------------------------------------------------------------
    def set_count(delta: Callable[[int], int]) -> Callable[[Files, Layout], None]:
        return lambda files, lay: _u32(files.dbf, 4, delta(lay.records))

    cases += [
        Case("count-plus-1", set_count(lambda n: n + 1), ("TruncatedError",), record=RECORDS + 1),
        Case("count-plus-1000", set_count(lambda n: n + 1000), ("TruncatedError",)),
        Case("count-max", set_count(lambda n: 0xFFFFFFFF), ("TruncatedError",)),
        Case("count-minus-1", set_count(lambda n: n - 1), ("RecordCountError",), record=RECORDS),
        Case("count-zero", set_count(lambda n: 0), ("RecordCountError",), record=1),
    ]

    def set_hl(value: Callable[[int], int]) -> Callable[[Files, Layout], None]:
        return lambda files, lay: _u16(files.dbf, 8, value(lay.header_length))

    for name, fn in [
        ("plus-1", lambda h: h + 1),
        ("minus-1", lambda h: h - 1),
        ("plus-record", lambda h: h + 0),  # replaced below
        ("zero", lambda h: 0),
        ("31", lambda h: 31),
        ("32", lambda h: 32),
        ("max", lambda h: 0xFFFF),
        ("minus-264", lambda h: h - 264),
    ]:
        if name == "plus-record":
            continue
        cases.append(Case(f"header-length-{name}", set_hl(fn), ANY))

    def set_rl(value: Callable[[int], int]) -> Callable[[Files, Layout], None]:
        return lambda files, lay: _u16(files.dbf, 10, value(lay.record_length))

    for name, fn in [
        ("plus-1", lambda r: r + 1),
        ("minus-1", lambda r: r - 1),
        ("zero", lambda r: 0),  # HeaderError: "record length 0 is invalid"
        ("one", lambda r: 1),
        ("max", lambda r: 0xFFFF),
        ("double", lambda r: 2 * r),
    ]:
        cases.append(
            Case(f"record-length-{name}", set_rl(fn), ("RecordLengthError", "HeaderError"))
        )

    def field_length(name: str, value: int) -> Callable[[Files, Layout], None]:
        def damage(files: Files, lay: Layout) -> None:
            index = list(lay.offsets).index(name)
            files.dbf[32 + 32 * index + 16] = value

        return damage

    cases += [
        Case("field-length-overruns-record", field_length("BLOB", 200), ("RecordLengthError",)),
        Case("field-length-zero", field_length("NAME", 0), ("RecordLengthError",)),
    ]

    def field_byte(index: int, at: int, value: int) -> Callable[[Files, Layout], None]:
        def damage(files: Files, lay: Layout) -> None:
            files.dbf[32 + 32 * index + at] = value

        return damage

    cases += [
        Case("field-type-unknown", field_byte(1, 11, ord("Z")), ("UnsupportedTable",)),
        Case("field-type-zero-byte", field_byte(1, 11, 0), ANY),
        Case("field-offset-wrong", _field_offset_wrong, ANY, same_ok=True),
        Case("terminator-missing", _terminator_missing, ("TerminatorError", "HeaderError")),
        Case("version-dbase2", lambda f, lay: f.dbf.__setitem__(0, 0x02), ("UnsupportedTable",)),
        Case("version-unknown", lambda f, lay: f.dbf.__setitem__(0, 0x77), ("UnsupportedTable",)),
        Case("header-zeroed", _zero(0, 32), ("UnsupportedTable", "HeaderError")),
        Case("whole-file-zeroed", _zero(0, None), ("UnsupportedTable", "HeaderError")),
    ]

    # -- records --------------------------------------------------------------------------
    for k in (0, RECORDS // 2, RECORDS - 1):
        cases.append(
            Case(
                f"eof-mark-at-record-{k + 1}",
                lambda f, lay, k=k: f.dbf.__setitem__(_rec(lay, k), 0x1A),
                ("TruncatedError",),
                record=k + 1,
            )
        )
        cases.append(
            Case(
                f"eof-mark-then-cut-after-record-{k}",
                lambda f, lay, k=k: f.dbf.__setitem__(slice(_rec(lay, k), None), b"\x1a"),
                ("TruncatedError",),
                record=k + 1,
            )
        )
        cases.append(
            Case(
                f"zeroed-record-{k + 1}",
                lambda f, lay, k=k: f.dbf.__setitem__(
                    slice(_rec(lay, k), _rec(lay, k + 1)), bytes(lay.record_length)
                ),
                ("FlagByteError",),
                record=k + 1,
            )
        )
        cases.append(
            Case(
                f"flag-byte-garbage-record-{k + 1}",
                lambda f, lay, k=k: f.dbf.__setitem__(_rec(lay, k), ord("#")),
                ("FlagByteError",),
                record=k + 1,
            )
        )
    cases.append(
        Case(
            "all-records-zeroed",
            lambda f, lay: f.dbf.__setitem__(
                slice(lay.header_length, _rec(lay, lay.records)),
                bytes(_rec(lay, lay.records) - lay.header_length),
            ),
            ("FlagByteError",),
            record=1,
        )
    )

    def value(field: str, raw: bytes, k: int = 4) -> Callable[[Files, Layout], None]:
        def damage(files: Files, lay: Layout) -> None:
            at = _rec(lay, k) + lay.offsets[field][0]
            files.dbf[at : at + len(raw)] = raw

        return damage

    cases += [
        Case("bad-date", value("BORN", b"20241345"), ("BadValueError",), record=5),
        Case("bad-number", value("QTY", b"  12a.00"), ("BadValueError",), record=5),
        Case("number-too-wide", value("QTY", b"99999999"), ("BadValueError",), record=5),
        Case("bad-logical", value("OK", b"X"), ("BadValueError",), record=5),
        Case(
            "bad-datetime",
            value("AT", b"\xff\xff\xff\x7f\xff\xff\xff\x7f"),
            ("BadValueError",),
            record=5,
        ),
        Case(
            "text-undecodable", value("NAME", b"\x81\x8d\x8f\x90\x9d"), ("DecodeError",), record=5
        ),
    ]

    # -- memo pointers and memo headers ------------------------------------------------------
    def pointer(block: Callable[[Layout], int]) -> Callable[[Files, Layout], None]:
        return lambda f, lay: _set_pointer(f, lay, _memo_record(lay), block(lay))

    cases += [
        Case("memo-pointer-into-header", pointer(lambda lay: 1), ("MemoPointerError",)),
        Case(
            "memo-pointer-at-next-free",
            pointer(lambda lay: lay.memo_size // lay.block_size),
            ("MemoPointerError",),
        ),
        Case("memo-pointer-past-end", pointer(lambda lay: 10**6), ("MemoPointerError",)),
        Case("memo-pointer-max", pointer(lambda lay: 0xFFFFFFFF), ("MemoPointerError",)),
        Case("memo-pointers-all-past-end", _all_pointers(10**6), ("MemoPointerError",)),
        Case("memo-records-share-one-block", _shared_block, ("MemoPointerError",)),
        Case("memo-two-records-share-a-block", _two_share, ("MemoPointerError",)),
        Case("memo-pointer-zero", pointer(lambda lay: 0), (), value_change_ok=True),
        Case(
            "memo-next-free-zero",
            _memo_header(lambda m, lay: _u32(m, 0, 0, big=True)),
            (),
            same_ok=True,
        ),
        Case(
            "memo-next-free-small",
            _memo_header(lambda m, lay: _u32(m, 0, 9, big=True)),
            ("MemoPointerError",),
        ),
        Case(
            "memo-block-size-zero",
            _memo_header(lambda m, lay: _u16(m, 6, 0, big=True)),
            ("HeaderError",),
        ),
        Case(
            "memo-block-size-halved",
            _memo_header(lambda m, lay: _u16(m, 6, lay.block_size // 2, big=True)),
            ANY,
        ),
        Case("memo-block-size-one", _memo_header(lambda m, lay: _u16(m, 6, 1, big=True)), ANY),
        Case("memo-length-past-end", _memo_length(lambda lay: lay.memo_size), ("MemoLengthError",)),
        Case("memo-length-huge", _memo_length(lambda lay: 0xFFFFFFFF), ("MemoLengthError",)),
        Case("memo-length-zero", _memo_length(lambda lay: 0), (), value_change_ok=True),
        Case("memo-file-missing", _memo_missing, ("MissingMemoError",)),
        Case("memo-file-empty", _memo_empty, ("HeaderError",)),
        Case("memo-file-zeroed", _memo_zeroed, ("HeaderError",)),
        Case("codepage-cp936", lambda f, lay: f.dbf.__setitem__(29, 0x7A), ("DecodeError",)),
        Case("codepage-unknown", lambda f, lay: f.dbf.__setitem__(29, 0xEE), ("DecodeError",)),
        # a wrong code page in which every byte of the table is defined cannot be told from the
        # right one (the names read as Greek letters): the mapping's `codepage` overrides it
        Case(
            "codepage-greek",
            lambda f, lay: f.dbf.__setitem__(29, 0xCB),
            ("DecodeError",),
            value_change_ok=True,
        ),
    ]
    return cases


def _zero(start: int, stop: int | None) -> Callable[[Files, Layout], None]:
    def damage(files: Files, lay: Layout) -> None:
        end = len(files.dbf) if stop is None else stop
        files.dbf[start:end] = bytes(end - start)

    return damage


def _field_offset_wrong(files: Files, lay: Layout) -> None:
    # VFP stores each field's offset in its descriptor; readers use the lengths (as we do)
    _u32(files.dbf, 32 + 32 * 2 + 12, 3)


def _terminator_missing(files: Files, lay: Layout) -> None:
    at = 32 + 32 * len(lay.offsets)
    files.dbf[at] = 0x41


def _all_pointers(block: int) -> Callable[[Files, Layout], None]:
    def damage(files: Files, lay: Layout) -> None:
        for i in range(lay.records):
            if lay.pointers["NOTES"][i]:
                _set_pointer(files, lay, i, block)

    return damage


def _shared_block(files: Files, lay: Layout) -> None:
    """Every record points at the largest memo (a few KB of DBF could read as gigabytes)."""
    target = max(range(lay.records), key=lambda i: lay.pointers["NOTES"][i])
    for i in range(lay.records):
        _set_pointer(files, lay, i, lay.pointers["NOTES"][target])
        _set_pointer(files, lay, i, lay.pointers["NOTES"][target], "BLOB")


def _two_share(files: Files, lay: Layout) -> None:
    """One record points at its neighbour's memo (in the same batch)."""
    i = _memo_record(lay)
    j = next(j for j in range(lay.records) if j != i and lay.pointers["NOTES"][j])
    _set_pointer(files, lay, j, lay.pointers["NOTES"][i])


def _memo_header(fn: Callable[[bytearray, Layout], None]) -> Callable[[Files, Layout], None]:
    def damage(files: Files, lay: Layout) -> None:
        assert files.memo is not None
        fn(files.memo, lay)

    return damage


def _memo_length(length: Callable[[Layout], int]) -> Callable[[Files, Layout], None]:
    def damage(files: Files, lay: Layout) -> None:
        assert files.memo is not None
        block = lay.pointers["NOTES"][_memo_record(lay)]
        _u32(files.memo, block * lay.block_size + 4, length(lay), big=True)

    return damage


def _memo_missing(files: Files, lay: Layout) -> None:
    files.memo = None


def _memo_empty(files: Files, lay: Layout) -> None:
    files.memo = bytearray()


def _memo_zeroed(files: Files, lay: Layout) -> None:
    assert files.memo is not None
    files.memo[:] = bytes(len(files.memo))


# -- running the cases -----------------------------------------------------------------------


def apply(case: Case, dbf: bytes, memo: bytes | None, lay: Layout, directory: Path) -> Path:
    """Write the damaged pair into ``directory`` (as t.dbf / t.fpt); returns the table path."""
    files = Files(bytearray(dbf), None if memo is None else bytearray(memo))
    case.damage(files, lay)
    directory.mkdir(parents=True, exist_ok=True)
    for p in directory.iterdir():
        p.unlink()
    path = directory / "t.dbf"
    path.write_bytes(bytes(files.dbf))
    if files.memo is not None:
        (directory / "t.fpt").write_bytes(bytes(files.memo))
    return path


def _read(path: Path, strict: bool, arrow: list[int]) -> tuple[pa.Table, list[Any]]:
    """Read everything; ``arrow`` gets the Arrow bytes allocated at the high points."""
    base = pa.total_allocated_bytes()
    with open_table(path, strict=strict) as t:
        table = t.read(include_deleted=True, with_recno=True)
        arrow.append(pa.total_allocated_bytes() - base)
        table.validate(full=True)
        for _ in t.rows(include_deleted=True):
            pass
        arrow.append(pa.total_allocated_bytes() - base)
        return table, [a for a in t.anomalies if a.kind != "Note"]


def outcome(path: Path, sound: pa.Table) -> dict[str, Any]:
    """Strict and lenient outcome of reading ``path``, with the memory it took."""
    size = sum(p.stat().st_size for p in path.parent.iterdir())
    result: dict[str, Any] = {"input_bytes": size}
    for mode in ("strict", "lenient"):
        arrow: list[int] = [0]
        tracemalloc.start()
        cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        try:
            table, anomalies = _read(path, mode == "strict", arrow)
            got: dict[str, Any] = {
                "outcome": "same" if table.equals(sound) else "different",
                "anomalies": [a.kind for a in anomalies],
                "messages": [a.message for a in anomalies][:5],
            }
        except DbfError as exc:
            got = {
                "outcome": type(exc).__name__,
                "message": str(exc),
                "record": exc.record,
                "field": exc.field,
            }
        except Exception as exc:  # a crash: reported, and the test fails on it
            got = {"outcome": "crash", "message": f"{type(exc).__name__}: {exc}"}
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        got["python_peak"] = peak
        got["arrow_peak"] = max(arrow)
        got["cpu_seconds"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu, 4)
        result[mode] = got
    return result


def all_cases(seeds: int = 1) -> list[Case]:
    """The catalogue, plus the random cuts of ``seeds - 1`` more seeds."""
    cases = catalogue()
    for extra in range(1, seeds):
        for case in catalogue(seed=5 + extra):
            if "-random-" in case.name:
                head, tail = case.name.split("-random-")
                cases.append(
                    Case(
                        f"{head}-random-s{extra}-{tail}",
                        case.damage,
                        case.strict,
                        case.record,
                        case.same_ok,
                        case.value_change_ok,
                    )
                )
    return cases


def run_all(out: Path, seeds: int = 1) -> None:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rxvault-hostile-") as tmp:
        base = Path(tmp) / "sound"
        base.mkdir()
        sound_path = write_sound(base)
        lay = Layout.of(sound_path)
        dbf = sound_path.read_bytes()
        memo = sound_path.with_suffix(".fpt").read_bytes()
        with open_table(sound_path) as t:
            sound = t.read(include_deleted=True, with_recno=True)
        for case in all_cases(seeds):
            path = apply(case, dbf, memo, lay, Path(tmp) / "case")
            results[case.name] = outcome(path, sound)
    results["_max_rss_kib"] = peak_rss_kib()
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
