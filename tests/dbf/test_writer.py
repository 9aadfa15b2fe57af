"""The VFP writer, checked byte by byte and with an independent reader (dbfread)."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from pathlib import Path

import dbfread
import pyarrow as pa
import pytest

from rxvault.dbf import DbfWriteError, FieldSpec, TableEditor, write_dbc, write_table


def _header(path: Path) -> dict[str, int]:
    b = path.read_bytes()
    count, header_length, record_length = struct.unpack_from("<IHH", b, 4)
    return {
        "version": b[0],
        "count": count,
        "header_length": header_length,
        "record_length": record_length,
        "flags": b[28],
        "ldid": b[29],
        "size": len(b),
    }


def _descriptors(path: Path) -> list[tuple[str, str, int, int, int, int]]:
    b = path.read_bytes()
    out = []
    pos = 32
    while b[pos] != 0x0D:
        d = b[pos : pos + 32]
        name = d[:11].split(b"\0")[0].decode()
        out.append((name, chr(d[11]), struct.unpack_from("<I", d, 12)[0], d[16], d[17], d[18]))
        pos += 32
    return out


def _records(path: Path) -> list[bytes]:
    h = _header(path)
    b = path.read_bytes()
    start = h["header_length"]
    return [
        b[start + i * h["record_length"] : start + (i + 1) * h["record_length"]]
        for i in range(h["count"])
    ]


FIELDS = [
    FieldSpec("ID", "I", autoincrement=True),
    FieldSpec("NAME", "C", 20),
    FieldSpec("AMT", "N", 8, 2, nullable=True),
    FieldSpec("DOB", "D"),
    FieldSpec("SEEN", "T", nullable=True),
    FieldSpec("OK", "L"),
    FieldSpec("NOTES", "M", nullable=True),
    FieldSpec("PRICE", "Y"),
    FieldSpec("SCORE", "B", decimals=2),
]
ROWS = [
    {
        "NAME": "José",
        "AMT": Decimal("-12.30"),
        "DOB": dt.date(1980, 1, 2),
        "SEEN": dt.datetime(2020, 5, 6, 7, 8, 9),
        "OK": True,
        "NOTES": "Zoë Müller, allergic to penicillin",
        "PRICE": Decimal("12.3456"),
        "SCORE": 1.5,
    },
    {
        "NAME": "Zoë",
        "AMT": None,
        "DOB": None,
        "SEEN": None,
        "OK": False,
        "NOTES": None,
        "PRICE": Decimal(0),
        "SCORE": -2.0,
    },
]


def test_header_and_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "t.dbf"
    write_table(path, FIELDS, ROWS, last_update=dt.date(2026, 3, 4))
    h = _header(path)
    assert h["version"] == 0x31  # autoincrement, no V/Q/W
    assert h["count"] == 2
    # 9 fields + _NullFlags, terminator, 263-byte backlink area
    assert h["header_length"] == 32 + 32 * 10 + 1 + 263
    assert h["record_length"] == 1 + 4 + 20 + 8 + 8 + 8 + 1 + 4 + 8 + 8 + 1
    assert h["flags"] == 0x02  # has a memo file
    assert h["ldid"] == 0x03  # cp1252
    assert h["size"] == h["header_length"] + 2 * h["record_length"] + 1
    assert path.read_bytes()[-1] == 0x1A
    assert path.read_bytes()[1:4] == bytes((126, 3, 4))
    desc = _descriptors(path)
    assert desc[0] == ("ID", "I", 1, 4, 0, 0x0C)
    assert desc[2] == ("AMT", "N", 25, 8, 2, 0x02)
    assert desc[-1] == ("_NullFlags", "0", h["record_length"] - 1, 1, 0, 0x05)
    raw = path.read_bytes()
    next_value, step = struct.unpack_from("<IB", raw, 32 + 19)
    assert (next_value, step) == (3, 1)


def test_values_read_back_with_dbfread(tmp_path: Path) -> None:
    path = tmp_path / "t.dbf"
    write_table(path, FIELDS, ROWS)
    got = [dict(r) for r in dbfread.DBF(str(path), encoding="cp1252")]
    assert got[0]["ID"] == 1
    assert got[1]["ID"] == 2
    assert got[0]["NAME"] == "José"
    assert got[1]["NAME"] == "Zoë"
    assert got[0]["AMT"] == pytest.approx(-12.30)
    assert got[0]["DOB"] == dt.date(1980, 1, 2)
    assert got[1]["DOB"] is None
    assert got[0]["SEEN"] == dt.datetime(2020, 5, 6, 7, 8, 9)
    assert got[0]["OK"] is True
    assert got[1]["OK"] is False
    assert got[0]["NOTES"] == "Zoë Müller, allergic to penicillin"
    assert got[0]["PRICE"] == Decimal("12.3456")
    assert got[1]["SCORE"] == -2.0
    # dbfread ignores _NullFlags; the bits are checked here: AMT=bit 0, SEEN=1, NOTES=2
    assert got[0]["_NullFlags"] == b"\x00"
    assert got[1]["_NullFlags"] == bytes((0b111,))


def test_numeric_text_is_right_aligned(tmp_path: Path) -> None:
    path = tmp_path / "n.dbf"
    fields = [FieldSpec("A", "N", 8, 2), FieldSpec("B", "N", 5), FieldSpec("C", "F", 10, 3)]
    rows = [
        {"A": Decimal("-0.5"), "B": 12345, "C": 1.25},
        {"A": 0, "B": -1234, "C": None},
        {"A": Decimal("99999.99"), "B": None, "C": Decimal("-12345.789")},
    ]
    write_table(path, fields, rows)
    recs = _records(path)
    assert recs[0][1:] == b"   -0.5012345     1.250"
    assert recs[1][1:] == b"    0.00-1234          "
    assert recs[2][1:] == b"99999.99     -12345.789"


def test_varchar_and_nullflags_order(tmp_path: Path) -> None:
    """For each field in order: V/Q get a 'short' bit, then nullable fields a NULL bit."""
    path = tmp_path / "v.dbf"
    fields = [
        FieldSpec("QN", "Q", 4, nullable=True),  # bits 0 (short), 1 (null)
        FieldSpec("VN", "V", 6, nullable=True),  # bits 2, 3
        FieldSpec("V", "V", 3),  # bit 4
        FieldSpec("N", "I", nullable=True),  # bit 5
    ]
    rows = [
        {"QN": b"\x01\x02\x03\x04", "VN": "Test", "V": "", "N": 7},
        {"QN": None, "VN": "abcdef", "V": "xyz", "N": None},
    ]
    write_table(path, fields, rows)
    assert _header(path)["version"] == 0x32
    recs = _records(path)
    assert recs[0][1:5] == b"\x01\x02\x03\x04"
    assert recs[0][5:11] == b"Test\x00\x04"
    assert recs[0][11:14] == b"\x00\x00\x00"
    assert recs[0][-1] == 0b0010100
    assert recs[1][5:11] == b"abcdef"
    assert recs[1][-1] == 0b0100010
    assert _descriptors(path)[0][5] == 0x06  # nullable + binary (varbinary)


@pytest.mark.parametrize("block_size", [1, 33, 64, 512])
def test_memo_block_sizes(tmp_path: Path, block_size: int) -> None:
    path = tmp_path / "m.dbf"
    texts = ["", "a", "b" * 100, "Take 1 tablet by mouth twice daily", None]
    fields = [FieldSpec("K", "I"), FieldSpec("T", "M", nullable=True)]
    write_table(
        path, fields, [{"K": i, "T": t} for i, t in enumerate(texts)], memo_block_size=block_size
    )
    memo = (tmp_path / "m.fpt").read_bytes()
    next_free = struct.unpack_from(">I", memo, 0)[0]
    assert struct.unpack_from(">H", memo, 6)[0] == block_size
    assert len(memo) == next_free * block_size
    first = -(-512 // block_size)
    pointers = [struct.unpack_from("<I", r, 5)[0] for r in _records(path)]
    assert pointers[0] == 0
    assert pointers[4] == 0
    assert pointers[1] == first
    t, length = struct.unpack_from(">II", memo, pointers[3] * block_size)
    assert (t, length) == (1, 34)
    got = [r["T"] for r in dbfread.DBF(str(path))]
    assert got[1:4] == texts[1:4]


def test_codepages(tmp_path: Path) -> None:
    for cp, ldid in (("cp437", 0x01), ("cp850", 0x02), ("cp1252", 0x03)):
        path = tmp_path / f"{cp}.dbf"
        write_table(path, [FieldSpec("N", "C", 10)], [{"N": "Müller"}], codepage=cp)
        assert _header(path)["ldid"] == ldid
        assert _records(path)[0][1:11] == "Müller    ".encode(cp)


def test_errors_name_table_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "err.dbf"
    cases = [
        ([FieldSpec("NAME", "C", 3)], [{"NAME": "ok"}, {"NAME": "toolong"}], "row 2, field NAME"),
        ([FieldSpec("A", "N", 4, 1)], [{"A": Decimal("123.4")}], "does not fit N(4,1)"),
        ([FieldSpec("A", "N", 6, 1)], [{"A": Decimal("1.25")}], "more than 1 decimals"),
        ([FieldSpec("I", "I")], [{"I": None}], "not nullable"),
        ([FieldSpec("I", "I")], [{"I": 2**31}], "out of range"),
        ([FieldSpec("C", "C", 5)], [{"C": "żółw"}], "cannot be encoded in cp1252"),
        ([FieldSpec("D", "D")], [{"D": "2020-01-01"}], "expected a date"),
        ([FieldSpec("C", "C", 5)], [{"X": 1}], "'X' is not a field"),
        ([FieldSpec("LONGFIELDNAME", "C", 5)], [], "longer than 10"),
    ]
    for fields, rows, message in cases:
        with pytest.raises(DbfWriteError, match=r"err\.dbf") as info:
            write_table(path, fields, rows)
        assert message in str(info.value)


def test_arrow_input_matches_row_input(tmp_path: Path) -> None:
    fields = [
        FieldSpec("ID", "I"),
        FieldSpec("NAME", "C", 10, nullable=True),
        FieldSpec("QTY", "N", 8, 2),
        FieldSpec("DAY", "D"),
        FieldSpec("AT", "T"),
        FieldSpec("PRICE", "Y", nullable=True),
        FieldSpec("OK", "L"),
        FieldSpec("SIG", "M"),
    ]
    rows = [
        {
            "ID": i,
            "NAME": None if i % 3 == 0 else f"Renée {i}",
            "QTY": Decimal(i) / 4,
            "DAY": dt.date(2020, 1, 1) + dt.timedelta(days=i),
            "AT": dt.datetime(2021, 1, 1, 8) + dt.timedelta(minutes=7 * i),
            "PRICE": None if i % 4 == 0 else Decimal(i) / 100,
            "OK": i % 2 == 0,
            "SIG": f"Take {i} tablet(s)",
        }
        for i in range(50)
    ]
    table = pa.table(
        {
            "ID": pa.array([r["ID"] for r in rows], pa.int32()),
            "NAME": pa.array([r["NAME"] for r in rows]).dictionary_encode(),
            "QTY": pa.array([r["QTY"] for r in rows], pa.decimal128(10, 2)),
            "DAY": pa.array([r["DAY"] for r in rows], pa.date32()),
            "AT": pa.array([r["AT"] for r in rows], pa.timestamp("ms")),
            "PRICE": pa.array([r["PRICE"] for r in rows], pa.decimal128(12, 4)),
            "OK": pa.array([r["OK"] for r in rows]),
            "SIG": pa.array([r["SIG"] for r in rows]),
        }
    )
    a, b = tmp_path / "a.dbf", tmp_path / "b.dbf"
    write_table(a, fields, rows, last_update=dt.date(2020, 1, 1))
    write_table(b, fields, table, last_update=dt.date(2020, 1, 1))
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.fpt").read_bytes() == (tmp_path / "b.fpt").read_bytes()


def test_dbase3_with_dbt(tmp_path: Path) -> None:
    path = tmp_path / "d3.dbf"
    fields = [FieldSpec("NAME", "C", 10), FieldSpec("NOTE", "M"), FieldSpec("D", "D")]
    rows = [{"NAME": "abc", "NOTE": "memo text", "D": dt.date(2001, 2, 3)}, {"NAME": "x"}]
    write_table(path, fields, rows, version=0x03)
    h = _header(path)
    assert h["version"] == 0x83
    assert h["header_length"] == 32 + 32 * 3 + 1
    assert (tmp_path / "d3.dbt").exists()
    got = [dict(r) for r in dbfread.DBF(str(path))]
    assert got[0]["NOTE"] == "memo text"
    assert got[0]["D"] == dt.date(2001, 2, 3)
    with pytest.raises(DbfWriteError, match="cannot be written to a dBase III table"):
        write_table(path, [FieldSpec("I", "I")], [], version=0x03)


def test_dbc_and_long_names(tmp_path: Path) -> None:
    fields = [
        FieldSpec("patient_id", "I"),
        FieldSpec("date_of_birth", "D"),
        FieldSpec("date_of_birth_place", "D"),
    ]
    dbf = tmp_path / "patient.dbf"
    dbc = tmp_path / "pharmacy.dbc"
    write_table(dbf, fields, [{"patient_id": 1, "date_of_birth": dt.date(1990, 1, 1)}], dbc=dbc)
    write_dbc(dbc, {"patients": (dbf, [f.name for f in fields])})
    names = [d[0] for d in _descriptors(dbf)]
    assert names == ["PATIENT_ID", "DATE_OF_BI", "DATE_OF__2"]
    raw = dbf.read_bytes()
    h = _header(dbf)
    assert raw[h["header_length"] - 263 : h["header_length"]].rstrip(b"\0") == b"pharmacy.dbc"
    assert _header(dbc)["flags"] & 0x04
    # dbfread does not look for a .dct: show it the container under table names
    (tmp_path / "container.dbf").write_bytes(dbc.read_bytes())
    (tmp_path / "container.fpt").write_bytes((tmp_path / "pharmacy.dct").read_bytes())
    objects = [dict(r) for r in dbfread.DBF(str(tmp_path / "container.dbf"))]
    kinds = [(o["OBJECTID"], o["PARENTID"], o["OBJECTTYPE"], o["OBJECTNAME"]) for o in objects]
    assert kinds[0] == (1, 1, "Database", "Database")
    table = next(k for k in kinds if k[2] == "Table")
    assert table[3] == "patients"
    assert [k[3] for k in kinds if k[2] == "Field" and k[1] == table[0]] == [
        "patient_id",
        "date_of_birth",
        "date_of_birth_place",
    ]
    prop = next(o["PROPERTY"] for o in objects if o["OBJECTTYPE"] == "Table")
    assert "patient.dbf\0" in prop


def test_editor_append_update_delete_pack(tmp_path: Path) -> None:
    path = tmp_path / "t.dbf"
    write_table(path, FIELDS, ROWS)
    with TableEditor(path) as ed:
        assert ed.record_count == 2
        assert ed.append([{"NAME": "New", "OK": True, "NOTES": "x", "PRICE": 1, "SCORE": 0}]) == [3]
        before = ed.read_raw(1)
        block = ed.memo_pointer(1, "NOTES")
        ed.update(1, {"NOTES": "shorter"})
        assert ed.memo_pointer(1, "NOTES") == block  # rewritten in its own block
        assert ed.read_raw(1) == before  # the record itself did not change
        ed.update(1, {"NOTES": "long " * 100})
        assert ed.memo_pointer(1, "NOTES") > block  # moved to new blocks at the end
        ed.update(2, {"AMT": Decimal("5.25"), "NAME": "Zoé"})
        ed.delete(3)
    assert _header(path)["count"] == 3
    assert struct.unpack_from("<I", path.read_bytes(), 32 + 19)[0] == 4  # next autoinc value
    got = [dict(r) for r in dbfread.DBF(str(path))]
    assert [g["ID"] for g in got] == [1, 2]
    assert got[0]["NOTES"] == "long " * 100
    assert got[1]["NAME"] == "Zoé"
    assert got[1]["AMT"] == pytest.approx(5.25)
    assert got[1]["_NullFlags"] == bytes((0b110,))  # AMT no longer NULL
    memo_before = (tmp_path / "t.fpt").stat().st_size
    with TableEditor(path) as ed:
        assert ed.pack() == 1
        assert ed.record_count == 2
    assert _header(path)["count"] == 2
    assert (tmp_path / "t.fpt").stat().st_size < memo_before
    again = [dict(r) for r in dbfread.DBF(str(path))]
    assert again == got


def test_editor_rejects_bad_record_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.dbf"
    write_table(path, FIELDS, ROWS)
    with TableEditor(path) as ed, pytest.raises(DbfWriteError, match="record 3 does not exist"):
        ed.delete(3)


def test_option_errors(tmp_path: Path) -> None:
    path = tmp_path / "opt.dbf"
    fields = [FieldSpec("M", "M")]
    with pytest.raises(DbfWriteError, match=r"memo block size must be 1\.\.32768"):
        write_table(path, fields, [], memo_block_size=0)
    with pytest.raises(DbfWriteError, match="unknown code page 'klingon'"):
        write_table(path, fields, [], codepage="klingon")
    with pytest.raises(DbfWriteError, match="duplicate field name 'a'"):
        write_table(path, [FieldSpec("A", "C", 1), FieldSpec("a", "C", 1)], [])
    with pytest.raises(DbfWriteError, match="cannot write version 0xF5"):
        write_table(path, fields, [], version=0xF5)
    with pytest.raises(DbfWriteError, match="only integer"):
        write_table(path, [FieldSpec("A", "N", 5, autoincrement=True)], [])
    with pytest.raises(DbfWriteError, match="deleted= has 1 flags for 2 rows"):
        write_table(path, [FieldSpec("A", "L")], [{}, {}], deleted=[True])


def test_editor_on_dbase3_memo(tmp_path: Path) -> None:
    path = tmp_path / "d3.dbf"
    fields = [FieldSpec("NAME", "C", 10), FieldSpec("NOTE", "M")]
    write_table(path, fields, [{"NAME": "a", "NOTE": "first"}], version=0x03)
    with TableEditor(path) as ed:
        block = ed.memo_pointer(1, "NOTE")
        ed.update(1, {"NOTE": "second"})
        assert ed.memo_pointer(1, "NOTE") == block
        ed.update(1, {"NOTE": "x" * 600})
        assert ed.memo_pointer(1, "NOTE") > block
        ed.append([{"NAME": "b", "NOTE": "third"}])
    got = [dict(r) for r in dbfread.DBF(str(path))]
    assert [(g["NAME"], g["NOTE"]) for g in got] == [("a", "x" * 600), ("b", "third")]
