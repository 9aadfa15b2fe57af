"""Strict mode: each problem is its own error naming file, record and field; lenient mode lists
every problem and still returns every record it can read."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from _build import F, c, dbf_bytes, fpt_bytes, n, ptr, write_dbf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rxvault.dbf as dbf
from rxvault.dbf import open_table, read_table

FIELDS = [F("NAME", "C", 4), F("QTY", "N", 3)]
RECS = [c("ab", 4) + n("1", 3), c("cd", 4) + n("2", 3), c("ef", 4) + n("3", 3)]


def expect(
    path: Path, error: type[dbf.DbfError], record: int | None = None, field: str | None = None
) -> list[dbf.Anomaly]:
    """Strict raises ``error`` naming path/record/field; lenient lists it. Returns anomalies."""
    with pytest.raises(error) as info, open_table(path) as t:
        t.read()
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert info.value.record == record
    assert info.value.field == field
    if record is not None:
        assert f"record {record}" in str(info.value)
    if field is not None:
        assert f"field {field}" in str(info.value)
    with open_table(path, strict=False) as t:
        t.read(include_deleted=True)
        anomalies = t.anomalies
    assert error.__name__ in {a.kind for a in anomalies}
    return anomalies


def test_header_count_smaller_than_the_file(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", FIELDS, RECS, count=1)
    expect(path, dbf.RecordCountError, record=2)
    with open_table(path, strict=False) as t:
        assert t.read().num_rows == 3  # lenient: every record that is there


def test_truncated_file(tmp_path: Path) -> None:
    data = dbf_bytes(FIELDS, RECS, eof=b"")
    path = tmp_path / "t.dbf"
    path.write_bytes(data[:-5])
    expect(path, dbf.TruncatedError, record=3)
    with open_table(path, strict=False) as t:
        assert t.read().column("NAME").to_pylist() == ["ab", "cd"]


def test_eof_mark_where_a_record_should_be(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", FIELDS, RECS, flags=[0x20, 0x1A, 0x20])
    expect(path, dbf.TruncatedError, record=2)


def test_flag_byte_neither_space_nor_star(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", FIELDS, RECS, flags=[0x20, 0x00, 0x20])
    expect(path, dbf.FlagByteError, record=2)
    with open_table(path, strict=False) as t:
        assert t.read().num_rows == 3  # never a silently shorter table


def test_record_length_disagrees_with_fields(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", FIELDS, [r + b"x" for r in RECS], record_length=9)
    expect(path, dbf.RecordLengthError)


def test_missing_header_terminator(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", FIELDS, RECS, terminator=b"\x00", version=0x03)
    expect(path, dbf.TerminatorError)


def test_memo_pointer_beyond_the_memo_file(tmp_path: Path) -> None:
    fpt, (p,) = fpt_bytes([(1, b"hello")])
    (tmp_path / "t.fpt").write_bytes(fpt)
    path = write_dbf(tmp_path / "t.dbf", [F("M", "M", 4)], [ptr(p), ptr(p + 1000)])
    anomalies = expect(path, dbf.MemoPointerError, record=2, field="M")
    assert any("beyond" in a.message or "next free" in a.message for a in anomalies)
    with open_table(path, strict=False) as t:
        assert t.read().column("M").to_pylist() == ["hello", None]


def test_memo_pointer_beyond_next_free_block(tmp_path: Path) -> None:
    fpt, (p,) = fpt_bytes([(1, b"hello")])
    fpt = fpt + b"\0" * 640  # room in the file, but past the next free block
    (tmp_path / "t.fpt").write_bytes(fpt)
    path = write_dbf(tmp_path / "t.dbf", [F("M", "M", 4)], [ptr(p), ptr(p + 2)])
    anomalies = expect(path, dbf.MemoPointerError, record=2, field="M")
    assert any("next free block" in a.message for a in anomalies)


def test_memo_length_past_the_end(tmp_path: Path) -> None:
    fpt, (p,) = fpt_bytes([(1, b"hello")])
    fpt = bytearray(fpt)
    struct.pack_into(">I", fpt, p * 64 + 4, 10_000)
    (tmp_path / "t.fpt").write_bytes(bytes(fpt))
    path = write_dbf(tmp_path / "t.dbf", [F("M", "M", 4)], [ptr(p)])
    expect(path, dbf.MemoLengthError, record=1, field="M")


def test_missing_memo_file(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", [F("A", "C", 2), F("M", "M", 4)], [c("x", 2) + ptr(8)])
    expect(path, dbf.MissingMemoError)
    with open_table(path, strict=False) as t:
        assert t.read().to_pylist() == [{"A": "x", "M": None}]


def test_memo_file_found_case_insensitively(tmp_path: Path) -> None:
    fpt, (p,) = fpt_bytes([(1, b"hi")])
    (tmp_path / "T.FPT").write_bytes(fpt)
    path = write_dbf(tmp_path / "t.dbf", [F("M", "M", 4)], [ptr(p)])
    assert read_table(path).column("M").to_pylist() == ["hi"]


def test_undecodable_text(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", FIELDS, [RECS[0], b"a\x90  " + n("1", 3)])
    expect(path, dbf.DecodeError, record=2, field="NAME")
    with open_table(path, strict=False) as t:
        assert t.read().column("NAME").to_pylist() == ["ab", None]


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        (F("QTY", "N", 3), b"1x2"),
        (F("QTY", "N", 4, 2), b"1..2"),
        (F("D", "D", 8), b"20241340"),
        (F("D", "D", 8), b"NotAYear"),
        (F("L", "L", 1), b"2"),
        (F("T", "T", 8), struct.pack("<ii", 2460000, 90_000_000)),
    ],
)
def test_bad_values(tmp_path: Path, field: F, raw: bytes) -> None:
    path = write_dbf(tmp_path / "t.dbf", [field], [raw])
    expect(path, dbf.BadValueError, record=1, field=field.name)


def test_more_decimals_than_declared(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", [F("P", "N", 6, 1)], [n("1.25", 6), n("2.50", 6)])
    expect(path, dbf.BadValueError, record=1, field="P")


def test_short_and_empty_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dbf"
    empty.write_bytes(b"")
    with pytest.raises(dbf.HeaderError, match="empty"):
        open_table(empty)
    short = tmp_path / "short.dbf"
    short.write_bytes(b"\x30" * 20)
    with pytest.raises(dbf.HeaderError, match="shorter than a 32-byte"):
        open_table(short)
    with pytest.raises(dbf.DbfError, match="no such file"):
        open_table(tmp_path / "absent.dbf")


def test_unsupported_tables(tmp_path: Path) -> None:
    dbase2 = tmp_path / "d2.dbf"
    dbase2.write_bytes(b"\x02" + b"\0" * 600)
    with pytest.raises(dbf.UnsupportedTable, match="dBase II"):
        open_table(dbase2)
    odd = write_dbf(tmp_path / "odd.dbf", [F("X", "7", 2)], [b"ab"])
    expect(odd, dbf.UnsupportedTable, field="X")
    with open_table(odd, strict=False) as t:
        assert t.read().column("X").to_pylist() == [b"ab"]


def test_every_error_is_a_dbf_error() -> None:
    for name in dbf.__all__:
        obj = getattr(dbf, name)
        if isinstance(obj, type) and name.endswith("Error") and name != "DbfWriteError":
            assert issubclass(obj, dbf.DbfError)


GOOD = dbf_bytes(
    [F("NAME", "C", 5), F("N", "N", 6, 2), F("D", "D", 8), F("M", "M", 4), F("T", "T", 8)],
    [c("abc", 5) + n("1.50", 6) + b"20240101" + ptr(8) + struct.pack("<ii", 2460000, 1000)] * 3,
)
GOOD_FPT = fpt_bytes([(1, b"memo text")])[0]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(min_value=0, max_value=len(GOOD)),
    flips=st.lists(
        st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=0, max_size=6
    ),
    fpt_cut=st.integers(min_value=0, max_value=len(GOOD_FPT)),
    strict=st.booleans(),
)
def test_corrupt_files_raise_only_dbf_errors(
    tmp_path: Path, cut: int, flips: list[tuple[int, int]], fpt_cut: int, strict: bool
) -> None:
    data = bytearray(GOOD)
    for pos, value in flips:
        data[pos] = value
    path = tmp_path / "t.dbf"
    path.write_bytes(bytes(data[:cut]))
    (tmp_path / "t.fpt").write_bytes(GOOD_FPT[:fpt_cut])
    try:
        with open_table(path, strict=strict) as t:
            table = t.read(include_deleted=True)
            assert table.num_rows <= 3 or not strict
    except dbf.DbfError:
        pass


def test_lenient_record_shorter_than_its_fields(tmp_path: Path) -> None:
    fields = [F("A", "C", 2), F("B", "I", 4)]
    path = write_dbf(tmp_path / "t.dbf", fields, [b"ab\x01\x00", b"cd\x02\x00"], record_length=5)
    expect(path, dbf.RecordLengthError)
    with open_table(path, strict=False) as t:
        assert t.read().to_pylist() == [{"A": "ab", "B": None}, {"A": "cd", "B": None}]


def test_a_batch_of_deleted_records_only(tmp_path: Path) -> None:
    fields = [F("I", "I", 4), F("T", "T", 8), F("D", "D", 8)]
    rec = struct.pack("<i", 5) + struct.pack("<ii", 2460000, 0) + b"20240101"
    path = write_dbf(tmp_path / "t.dbf", fields, [rec] * 5, flags=[0x2A] * 4 + [0x20])
    with open_table(path) as t:
        assert [b.num_rows for b in t.iter_batches(batch_size=2)] == [0, 0, 1]
        assert t.read().column("I").to_pylist() == [5]


@pytest.mark.parametrize("day", [2**31 - 1, 5373485, 1721425, -5])
def test_datetime_out_of_the_representable_range(tmp_path: Path, day: int) -> None:
    path = write_dbf(tmp_path / "t.dbf", [F("T", "T", 8)], [struct.pack("<ii", day, 0)])
    expect(path, dbf.BadValueError, record=1, field="T")
    with open_table(path, strict=False) as t:
        assert list(t.rows()) == [{"T": None}]


def test_lenient_nullflags_beyond_a_short_record(tmp_path: Path) -> None:
    fields = [F("A", "I", 4, flags=0x02), F("C", "C", 2), F("_NullFlags", "0", 1, 0, 5)]
    path = write_dbf(tmp_path / "t.dbf", fields, [b"\x01\x00\x00\x00ab"], record_length=7)
    with open_table(path, strict=False) as t:
        assert t.read().to_pylist() == [{"A": 1, "C": "ab"}]
        assert "RecordLengthError" in {a.kind for a in t.anomalies}
