"""Every field type decodes to the right value and Arrow type (files built byte by byte)."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from _build import F, c, dbf_bytes, dbt3_bytes, dbt4_bytes, fpt_bytes, i4, n, ptr, write_dbf

from rxvault.dbf import DecodeError, open_table, read_table


def one_column(tmp_path: Path, field: F, values: list[bytes], **kw: object) -> list[object]:
    path = write_dbf(tmp_path / "t.dbf", [field], values, **kw)
    table = read_table(path)
    return table.column(field.name).to_pylist()


def test_character_strips_trailing_blanks_and_nuls(tmp_path: Path) -> None:
    values = one_column(tmp_path, F("NAME", "C", 8), [c("ab", 8), b"cd\0\0\0\0\0\0", c("", 8)])
    assert values == ["ab", "cd", ""]


def test_character_cp1252_through_the_lookup_table(tmp_path: Path) -> None:
    values = one_column(tmp_path, F("NAME", "C", 12), [c("Zoë Müller", 12), c("€ café", 12)])
    assert values == ["Zoë Müller", "€ café"]


def test_character_other_single_byte_code_pages(tmp_path: Path) -> None:
    path = write_dbf(
        tmp_path / "t.dbf", [F("NAME", "C", 8)], [c("Привет", 8, "cp866")], language_driver=0x26
    )
    with open_table(path) as t:
        assert t.codepage == "cp866"
        assert t.read().column("NAME").to_pylist() == ["Привет"]


def test_character_multibyte_code_page(tmp_path: Path) -> None:
    values = one_column(
        tmp_path, F("NAME", "C", 10), [c("中文名字", 10, "gbk")], language_driver=0x7A
    )
    assert values == ["中文名字"]


def test_codepage_override(tmp_path: Path) -> None:
    path = write_dbf(
        tmp_path / "t.dbf", [F("NAME", "C", 6)], [c("čas", 6, "cp1250")], language_driver=0
    )
    assert read_table(path, codepage="cp1250").column("NAME").to_pylist() == ["čas"]


def test_undecodable_text_names_record_and_field(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", [F("NAME", "C", 4)], [c("ok", 4), b"a\x81  "])
    with pytest.raises(DecodeError) as info:
        read_table(path)
    assert info.value.record == 2
    assert info.value.field == "NAME"
    assert str(path) in str(info.value)
    replaced = read_table(path, decode_errors="replace").column("NAME").to_pylist()
    assert replaced == ["ok", "a\ufffd"]


def test_no_code_page_mark_accepts_ascii_only(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", [F("NAME", "C", 4)], [c("abc", 4)], language_driver=0)
    assert read_table(path).column("NAME").to_pylist() == ["abc"]
    bad = write_dbf(tmp_path / "u.dbf", [F("NAME", "C", 4)], [b"\xe9t\xe9 "], language_driver=0)
    with pytest.raises(DecodeError, match="no \\(known\\) code page"):
        read_table(bad)


def test_binary_character_is_bytes(tmp_path: Path) -> None:
    values = one_column(tmp_path, F("RAW", "C", 4, flags=0x04), [b"\x00\x81 a"])
    assert values == [b"\x00\x81 a"]


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        (F("QTY", "N", 5), "  42", 42),
        (F("QTY", "N", 5), "-42", -42),
        (F("QTY", "N", 5), "13.", 13),
        (F("QTY", "N", 5), "     ", None),
        (F("QTY", "N", 5), "*****", None),
        (F("PRICE", "N", 8, 2), "12.30", Decimal("12.30")),
        (F("PRICE", "N", 8, 2), "-0.05", Decimal("-0.05")),
        (F("PRICE", "N", 8, 2), "-.5", Decimal("-0.50")),
        (F("PRICE", "N", 8, 2), "7", Decimal("7.00")),
        (F("PRICE", "F", 10, 3), "105.539", Decimal("105.539")),
        (F("BIG", "N", 20), "12345678901234567890", Decimal("12345678901234567890")),
        (F("BIG", "N", 20, 4), "-1234567890123.4567", Decimal("-1234567890123.4567")),
        (F("E", "F", 10, 2), "1.5E+2", Decimal("150.00")),
    ],
)
def test_numeric(tmp_path: Path, field: F, raw: str, expected: object) -> None:
    values = one_column(tmp_path, field, [n(raw, field.length)])
    assert values == [expected]
    if expected is not None:
        assert type(values[0]) is type(expected)


def test_numeric_arrow_types(tmp_path: Path) -> None:
    path = write_dbf(
        tmp_path / "t.dbf",
        [F("A", "N", 10), F("B", "N", 10, 2), F("C", "N", 19), F("D", "Y", 8, 4)],
        [n("1", 10) + n("1.00", 10) + n("1", 19) + struct.pack("<q", 10000)],
    )
    schema = read_table(path).schema
    assert schema.field("A").type == pa.int64()
    assert schema.field("B").type == pa.decimal128(10, 2)
    assert schema.field("C").type == pa.decimal128(19, 0)
    assert schema.field("D").type == pa.decimal128(19, 4)


def test_dates(tmp_path: Path) -> None:
    values = one_column(
        tmp_path,
        F("D", "D", 8),
        [b"20240229", b"        ", b"00000000", b"19000101", b"99991231"],
    )
    assert values == [dt.date(2024, 2, 29), None, None, dt.date(1900, 1, 1), dt.date(9999, 12, 31)]


def _t(day: int, ms: int) -> bytes:
    return struct.pack("<ii", day, ms)


def test_datetimes_round_to_the_second_as_vfp_shows_them(tmp_path: Path) -> None:
    jd_2024_01_18 = 2460328
    values = one_column(
        tmp_path,
        F("T", "T", 8),
        [
            _t(jd_2024_01_18, 30_599_999),  # 08:29:59.999 -> 08:30:00
            _t(jd_2024_01_18, 30_600_000),
            _t(jd_2024_01_18, 30_600_499),
            _t(0, 0),
            b" " * 8,
            _t(2440588, 0),
        ],
    )
    assert values == [
        dt.datetime(2024, 1, 18, 8, 30),
        dt.datetime(2024, 1, 18, 8, 30),
        dt.datetime(2024, 1, 18, 8, 30),
        None,
        None,
        dt.datetime(1970, 1, 1),
    ]


def test_logicals(tmp_path: Path) -> None:
    values = one_column(tmp_path, F("L", "L", 1), [b"T", b"t", b"Y", b"F", b"n", b"?", b" "])
    assert values == [True, True, True, False, False, None, None]


def test_integer_currency_double(tmp_path: Path) -> None:
    path = write_dbf(
        tmp_path / "t.dbf",
        [F("I", "I", 4), F("Y", "Y", 8, 4), F("B", "B", 8, 2)],
        [i4(-7) + struct.pack("<q", -123456) + struct.pack("<d", 2.5)],
    )
    row = read_table(path).to_pylist()[0]
    assert row == {"I": -7, "Y": Decimal("-12.3456"), "B": 2.5}


def test_nullflags_applied_and_hidden(tmp_path: Path) -> None:
    fields = [F("A", "C", 3, flags=0x02), F("B", "I", 4, flags=0x02), F("_NullFlags", "0", 1, 0, 5)]
    path = write_dbf(
        tmp_path / "t.dbf",
        fields,
        [c("x", 3) + i4(1) + b"\x00", c("", 3) + i4(0) + b"\x03", c("y", 3) + i4(0) + b"\x02"],
    )
    table = read_table(path)
    assert table.column_names == ["A", "B"]
    assert table.to_pylist() == [
        {"A": "x", "B": 1},
        {"A": None, "B": None},
        {"A": "y", "B": None},
    ]


def test_varchar_and_varbinary_true_lengths(tmp_path: Path) -> None:
    # bits: V's length bit 0, V's null bit 1, Q's length bit 2
    fields = [
        F("V", "V", 6, flags=0x02),
        F("Q", "Q", 4),
        F("_NullFlags", "0", 1, 0, 5),
    ]
    path = write_dbf(
        tmp_path / "t.dbf",
        fields,
        [
            b"ab  \x00\x02" + b"\x01\x02\x00\x02" + b"\x05",  # V "ab", Q 2 bytes
            b"abcdef" + b"\x01\x02\x03\x04" + b"\x00",  # both full length
            b"      " + b"\x00\x00\x00\x00" + b"\x06",  # V null, Q empty
        ],
        version=0x32,
    )
    table = read_table(path)
    assert table.column("V").to_pylist() == ["ab", "abcdef", None]
    assert table.column("Q").to_pylist() == [b"\x01\x02", b"\x01\x02\x03\x04", b""]


def test_fpt_memos_text_binary_and_empty(tmp_path: Path) -> None:
    fpt, (p1, p2) = fpt_bytes([(1, "crème brûlée".encode("cp1252")), (0, b"\x00\x01GIF")])
    (tmp_path / "t.fpt").write_bytes(fpt)
    path = write_dbf(
        tmp_path / "t.dbf",
        [F("NOTE", "M", 4), F("PIC", "G", 4), F("RAW", "M", 4, flags=0x04)],
        [ptr(p1) + ptr(p2) + ptr(p2), ptr(0) + ptr(0) + ptr(0)],
        table_flags=0x02,
    )
    with open_table(path) as t:
        assert t.memo is not None
        assert t.memo.block_size == 64
        rows = t.read().to_pylist()
    assert rows == [
        {"NOTE": "crème brûlée", "PIC": b"\x00\x01GIF", "RAW": b"\x00\x01GIF"},
        {"NOTE": "", "PIC": b"", "RAW": b""},
    ]


@pytest.mark.parametrize("block_size", [1, 32, 64, 512, 4096])
def test_fpt_any_block_size(tmp_path: Path, block_size: int) -> None:
    memos = [(1, b"first"), (1, b"x" * 700), (1, b"")]
    fpt, pointers = fpt_bytes(memos, block_size=block_size)
    (tmp_path / "t.fpt").write_bytes(fpt)
    path = write_dbf(tmp_path / "t.dbf", [F("M", "M", 4)], [ptr(p) for p in pointers])
    assert read_table(path).column("M").to_pylist() == ["first", "x" * 700, ""]


def test_dbase3_dbt_memos(tmp_path: Path) -> None:
    dbt, pointers = dbt3_bytes([b"short", b"y" * 1000])
    (tmp_path / "t.dbt").write_bytes(dbt)
    recs = [str(p).encode().rjust(10) for p in pointers] + [b" " * 10]
    path = write_dbf(tmp_path / "t.dbf", [F("M", "M", 10)], recs, version=0x83, language_driver=0)
    assert read_table(path).column("M").to_pylist() == ["short", "y" * 1000, ""]


@pytest.mark.parametrize("block_size", [64, 512, 1024])
def test_dbase4_dbt_block_size_from_header(tmp_path: Path, block_size: int) -> None:
    dbt, pointers = dbt4_bytes([b"one", b"z" * 900], block_size=block_size)
    (tmp_path / "t.dbt").write_bytes(dbt)
    recs = [str(p).encode().rjust(10) for p in pointers]
    path = write_dbf(tmp_path / "t.dbf", [F("M", "M", 10)], recs, version=0x8B, language_driver=0)
    with open_table(path) as t:
        assert t.memo is not None
        assert t.memo.block_size == block_size
        assert t.read().column("M").to_pylist() == ["one", "z" * 900]


def test_dbase7_layout_and_types(tmp_path: Path) -> None:
    def be_flip_int(v: int) -> bytes:
        return struct.pack(">I", (v & 0xFFFFFFFF) ^ 0x80000000)

    def be_double(v: float) -> bytes:
        (u,) = struct.unpack(">Q", struct.pack(">d", v))
        u = u ^ (1 << 63) if v >= 0 else ~u & (2**64 - 1)
        return struct.pack(">Q", u)

    ts = struct.pack(">d", 62_135_683_200_000 + 86_400_000 * 365)  # 1971-01-01
    ts = struct.pack(">Q", struct.unpack(">Q", ts)[0] | (1 << 63))
    fields = [
        F("A long field name", "C", 5),
        F("ID", "+", 4),
        F("QTY", "I", 4),
        F("X", "O", 8),
        F("WHEN", "@", 8),
    ]
    path = write_dbf(
        tmp_path / "t.dbf",
        fields,
        [c("abc", 5) + be_flip_int(1) + be_flip_int(-5) + be_double(-2.5) + ts],
        version=0x04,
        language_driver=0,
        dbase7=True,
    )
    with open_table(path) as t:
        assert next(f.name for f in t.fields) == "A long field name"
        row = t.read().to_pylist()[0]
    assert row == {
        "A long field name": "abc",
        "ID": 1,
        "QTY": -5,
        "X": -2.5,
        "WHEN": dt.datetime(1971, 1, 1),
    }


def test_general_blob_picture_are_binary(tmp_path: Path) -> None:
    fpt, (p,) = fpt_bytes([(2, b"\x01OLE")])
    (tmp_path / "t.fpt").write_bytes(fpt)
    fields = [F("G", "G", 4), F("W", "W", 4), F("P", "P", 4)]
    path = write_dbf(tmp_path / "t.dbf", fields, [ptr(p) * 3], version=0x32)
    table = read_table(path)
    assert table.to_pylist() == [{"G": b"\x01OLE", "W": b"\x01OLE", "P": b"\x01OLE"}]
    assert all(table.schema.field(x).type == pa.binary() for x in "GWP")


def test_deleted_recno_columns_and_batches(tmp_path: Path) -> None:
    recs = [n(str(i), 4) for i in range(10)]
    flags = [0x2A if i % 3 == 0 else 0x20 for i in range(10)]
    path = write_dbf(tmp_path / "t.dbf", [F("K", "N", 4)], recs, flags=flags)
    with open_table(path) as t:
        assert (t.live_count, t.deleted_count) == (6, 4)
        assert t.read().column("K").to_pylist() == [1, 2, 4, 5, 7, 8]
        full = t.read(include_deleted=True, with_recno=True)
        assert full.column("_deleted").to_pylist() == [f == 0x2A for f in flags]
        assert full.column("_recno").to_pylist() == list(range(1, 11))
        batches = list(t.iter_batches(batch_size=4, with_recno=True))
        assert [b.num_rows for b in batches] == [2, 3, 1]  # records 1-4, 5-8, 9-10
        assert [r["_recno"] for r in t.rows(with_recno=True)] == [2, 3, 5, 6, 8, 9]
        assert t.read(columns=["K"]).num_columns == 1


def test_long_names_from_the_dbc(tmp_path: Path) -> None:
    dbc_fields = [
        F("OBJECTID", "I", 4),
        F("PARENTID", "I", 4),
        F("OBJECTTYPE", "C", 10),
        F("OBJECTNAME", "C", 128),
    ]

    def obj(oid: int, parent: int, kind: str, name: str) -> bytes:
        return i4(oid) + i4(parent) + c(kind, 10) + c(name, 128)

    write_dbf(
        tmp_path / "shop.dbc",
        dbc_fields,
        [
            obj(1, 1, "Database", "Database"),
            obj(2, 1, "Table", "other"),
            obj(3, 2, "Field", "wrong_name"),
            obj(4, 1, "Table", "patients"),
            obj(5, 4, "Field", "patient_identifier"),
            obj(6, 4, "Field", "date_of_birth"),
        ],
        table_flags=0x04,
    )
    path = write_dbf(
        tmp_path / "patients.dbf",
        [F("PATIENT_ID", "I", 4), F("DATE_OF_BI", "D", 8)],
        [i4(7) + b"19800101"],
        backlink=b"shop.dbc",
    )
    with open_table(path) as t:
        assert t.backlink == "shop.dbc"
        assert [f.long_name for f in t.fields] == ["patient_identifier", "date_of_birth"]
        assert t.read().column_names == ["patient_identifier", "date_of_birth"]
    short = read_table(path, long_names=False)
    assert short.column_names == ["PATIENT_ID", "DATE_OF_BI"]
    # the container itself reads as a table
    assert read_table(tmp_path / "shop.dbc").num_rows == 6


def test_missing_dbc_is_a_note_not_an_error(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "t.dbf", [F("A", "I", 4)], [i4(1)], backlink=b"gone.dbc")
    with open_table(path) as t:
        assert t.read().column_names == ["A"]
        assert [a.kind for a in t.anomalies] == ["Note"]


def test_header_attributes(tmp_path: Path) -> None:
    data = dbf_bytes([F("A", "C", 3)], [c("x", 3)], version=0x31, language_driver=0xC9)
    path = tmp_path / "t.dbf"
    path.write_bytes(data)
    with open_table(path) as t:
        assert t.version == 0x31
        assert "autoincrement" in t.version_name
        assert t.last_update == dt.date(2024, 12, 4)
        assert t.record_count == 1
        assert t.codepage == "cp1251"
        assert t.language_driver == 0xC9
        assert t.fields[0].arrow_type == pa.string()
