"""Per-file decisions for the shared DBF corpus (see ``_corpus.py``).

Keys of each entry:

- ``open``: options for ``open_table`` (a true code page where the header's mark is absent or
  wrong, as the MANIFEST notes say).
- ``error``: the error class strict mode must raise (a deliberately broken or unreadable file),
  ``why`` says why; ``lenient`` False when even lenient mode cannot read it (no header at all).
- ``values``: ``{(recno, column): value}`` checked exactly (where the reference is wrong or absent).
- ``ignore_fields``: fields not compared with the reference, with the reason in ``why``.
- ``reference_extra_records``: the reference reads records beyond the header count.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

EXPECTATIONS: dict[str, dict[str, Any]] = {}

JAVADBF = "albfernandez__javadbf/src/test/resources/"
PHPX = "luads__php-xbase/tests/Resources/"
NDBF = "eXavera__NDbfReader/NDbfReader.Tests/Samples/"
INFUSED = "infused__dbf/spec/fixtures/"
YF = "yellowfeather__DbfDataReader/test/fixtures/"
LAIS = "lais-huol__dbf_reader/tests/data/"


def _cp(codepage: str, why: str, **more: Any) -> dict[str, Any]:
    return {"open": {"codepage": codepage}, "why": why, **more}


def _err(error: str, why: str, **more: Any) -> dict[str, Any]:
    return {"error": error, "why": why, **more}


EXPECTATIONS.update(
    {
        # -- the true code page where the header has no mark (0x00) or a wrong one -------------
        JAVADBF + "bug-46-zero_field_count/a3.dbf": _cp("cp866", "Russian DOS text, no mark"),
        JAVADBF + "bug-60-fieldlength/060.dbf": _cp("cp866", "Russian DOS text, no mark"),
        NDBF + "BigCzechData.dbf": _cp("cp1250", "Czech text, no mark (upstream opens with 1250)"),
        NDBF + "CzechEncoding.dbf": _cp("cp1250", "Czech text, no mark"),
        NDBF + "WhiteSpaces.dbf": _cp("cp1250", "Czech text, no mark ('levý břeh')"),
        INFUSED + "dbase_03_cyrillic.dbf": _cp("utf-8", "UTF-8 names and text, mark 0xF0"),
        INFUSED + "dbase_83.dbf": _cp(
            "cp437", "DOS memo text, no mark ('Raspberry Crème' is 0x8A in cp437)"
        ),
        INFUSED + "dbase_f5.dbf": _cp("cp850", "Catalan DOS text, no mark ('penedès', 'químic')"),
        "iryndin__jdbf/data/215451/gds_im.dbf": _cp("cp866", "Russian customs data, no mark"),
        "iryndin__jdbf/data/215451/tir_im.dbf": _cp("cp866", "Russian customs data, no mark"),
        "iryndin__jdbf/data/218864/gds_im.dbf": _cp("cp866", "Russian customs data, no mark"),
        "iryndin__jdbf/data/218864/tir_im.dbf": _cp("cp866", "Russian customs data, no mark"),
        "jferard__JxBase/111.dbf": _cp("utf-8", "UTF-8 Russian names written by JxBase, no mark"),
        PHPX + "dBase/dBaseIII_nomemo.dbf": _cp("cp866", "Russian account codes, no mark"),
        PHPX + "dbf/cbrf_122019N1.dbf": _cp("cp866", "Central Bank of Russia list, no mark"),
        "tmontaigu__dbase-rs/tests/data/cp850.dbf": _cp(
            "cp850", "mark says cp1252 but the text is cp850 (the upstream test forces CP850)"
        ),
        YF + "INNAKLKVT20180904.dbf": _cp("cp1251", "cp1251 text, no mark (upstream test)"),
        "yortus__DBFFile/test/fixtures/dbase_not_latin1.dbf": _cp(
            "cp950", "Big5 names and text, no mark (upstream reads it with big5)"
        ),
        "yortus__DBFFile/test/fixtures/WSPMST.DBF": _cp("cp874", "Thai TIS-620 text, no mark"),
        "emelhu__NDbfReaderEx/NDbfReaderEx_Test/BDE_TEST_4_64.dbf": {
            "ignore_fields": ["B"],
            "why": "DBT block size 64: dbfread assumes 512, so its memo values are other bytes",
            "values": {(1, "B"): ">aAaA aAaA aAaA aAaA aAaA aAaA aAaA aAaA>"},
        },
        # -- deliberately broken or incomplete files: the declared error -----------------------
        JAVADBF + "books.dbf": _err("MissingMemoError", "its .fpt is not in the corpus"),
        JAVADBF + "bug-49/student.dbf": _err("MissingMemoError", "its .dbt is not in the corpus"),
        JAVADBF + "fixtures/dbase_7.dbf": _err("MissingMemoError", "its .dbt is not in the corpus"),
        NDBF + "FoxProDateTime.dbf": _err("MissingMemoError", "shipped without its .fpt"),
        INFUSED + "dbase_83_missing_memo.dbf": _err("MissingMemoError", "upstream negative test"),
        INFUSED + "dbase_8c.dbf": _err("MissingMemoError", "its .dbt is not in the corpus"),
        PHPX + "foxpro/1.dbf": _err("MissingMemoError", "its .fpt is not in the corpus"),
        "olemb__dbfread/tests/cases/no_memofile.dbf": _err(
            "MissingMemoError", "upstream negative test (memotest.dbf without its memo)"
        ),
        "yortus__DBFFile/test/fixtures/dbase_8b_missing_memo.dbf": _err(
            "MissingMemoError", "upstream negative test"
        ),
        "yortus__DBFFile/test/fixtures/vfp_gb2312_memo.dbf": _err(
            "MissingMemoError", "its 4 MiB .fpt was not available"
        ),
        JAVADBF + "bug-102/bug102.dbf": _err(
            "MemoPointerError", "its .dbt is only the 512-byte header; pointers run past it"
        ),
        "X-Sharp__XSharpPublic/src/Runtime/XSharp.Rdd.Tests/dbase_30.dbf": _err(
            "MemoPointerError", "its .fpt is only the 512-byte header (both Python readers crash)"
        ),
        JAVADBF + "bug-33-corrupted-file-sync-mode/myfileafter-corrupted.dbf": _err(
            "FlagByteError",
            "deliberately corrupt: the record area is shifted (javadbf expects an error)",
        ),
        INFUSED + "mazovia.dbf": _err(
            "FlagByteError",
            "both records have flag byte 0x00 (dbfread silently returns 0 of 2 records); "
            "lenient mode reads both",
        ),
        JAVADBF
        + "bug-77-no-header-record-terminator/continents-null-header-record-terminator.dbf": (
            _err("TerminatorError", "the 0x0D after the descriptors is 0x00 (lenient reads 7 rows)")
        ),
        JAVADBF + "bug-77-no-header-record-terminator/continents_no_header_record_terminator.dbf": (
            _err("TerminatorError", "the 0x0D after the descriptors is missing (lenient: 7 rows)")
        ),
        LAIS + "dbase3_invalid_terminator.dbf": _err(
            "TerminatorError", "deliberately invalid: terminator byte replaced by 0x2D"
        ),
        JAVADBF + "dbc-files/sids.dbc": _err(
            "TruncatedError",
            "not a VFP database container but a DATASUS compressed DBF: the header says 100 "
            "records, 29 fit",
        ),
        JAVADBF + "dbc-files/storm.dbc": _err(
            "TruncatedError", "DATASUS compressed DBF: the header says 100 records, 17 fit"
        ),
        LAIS + "dbase3_invalid_fields.dbf": _err(
            "RecordLengthError", "deliberately invalid field sizes (77 vs 58)"
        ),
        LAIS + "dbase3_invalid_fields_type.dbf": _err(
            "RecordLengthError", "deliberately invalid field sizes (77 vs 58)"
        ),
        "tmontaigu__dbase-rs/tests/data/stations_with_deleted.dbf": _err(
            "RecordLengthError", "writer bug: record length 1016, fields need 1017"
        ),
        LAIS + "dbase3_invalid_last_update.dbf": _err(
            "RecordCountError", "header record count 0 although 2 records follow"
        ),
        "LindsayBradford__go-dbf/testdata/lessThanActualRecords.dbf": _err(
            "RecordCountError", "upstream negative test: header count 1, 3 records in the file"
        ),
        "jferard__JxBase/mybase.dbf": _err("HeaderError", "zero-byte file", lenient=False),
        "jferard__JxBase/src/test/111.dbf": _err(
            "HeaderError", "malformed writer artifact: header length 0", lenient=False
        ),
        INFUSED + "dbase_02.dbf": _err(
            "UnsupportedTable", "dBase II: a different header layout", lenient=False
        ),
        YF + "FolderRoot.dbf": _err(
            "UnsupportedTable", "a field of type '7' (unknown to any xBase); lenient: raw bytes"
        ),
        JAVADBF + "numbers2.dbf": _err(
            "BadValueError",
            "record 5's logical field holds '2' (neither T/F/Y/N/? nor 1/0)",
        ),
        PHPX + "socios.dbf": _err("BadValueError", "numeric field holds '1,200.00'"),
        "olemb__dbfread/examples/files/invalid_value.dbf": _err(
            "BadValueError", "dbfread's own example: a date field holding 'NotAYear'"
        ),
        PHPX + "dBase/dBaseIV.dbf": _err(
            "DecodeError", "IMAGE is a text memo holding image bytes (0x90 is not cp1252)"
        ),
        PHPX + "dBase/dBaseVII.dbf": _err(
            "DecodeError", "IMAGE is a text memo holding image bytes, and no code page mark"
        ),
        PHPX + "foxpro/Foxpro2.dbf": _err(
            "DecodeError", "IMAGE is a text memo (no NOCPTRANS) holding image bytes"
        ),
        PHPX + "foxpro/vfp.dbf": _err(
            "DecodeError", "IMAGE is a text memo (no NOCPTRANS) holding image bytes"
        ),
        "X-Sharp__XSharpPublic/Runtime/XSharp.Rdd.Tests/tests/VO/German/TEST1ANSI.DBF": _err(
            "DecodeError",
            "a table of all 255 byte values; 0x81 0x8D 0x8F 0x90 0x9D are undefined in cp1252",
        ),
        YF + "MS__KHDM.DBF": _err(
            "DecodeError", "Persian text in a DOS code page Python has no codec for, no mark"
        ),
    }
)

# -- values checked exactly where the reference is wrong or absent (worked out from the bytes
#    and the upstream projects' own tests, not from this reader) --------------------------------
_D = dt.date
_T = dt.datetime
EMELHU = "emelhu__NDbfReaderEx/NDbfReaderEx_Test/"
BDE_ROWS = {
    (1, "C10"): "AAA",
    (1, "D"): _D(2015, 1, 1),
    (1, "L"): True,
    (1, "N5"): 1111,
    (1, "N10"): Decimal("11111.11"),
    (1, "B"): ">aAaA aAaA aAaA aAaA aAaA aAaA aAaA aAaA>",
    (2, "D"): _D(2015, 2, 8),
    (4, "N10"): Decimal("44444.44"),
    (4, "I"): 444,
    (3, "B"): "",  # pointer 0: an empty memo, not NULL
}
SPOT_VALUES: dict[str, dict[tuple[int, str], Any]] = {
    # dBase 7 doubles: big-endian, sign bit flipped for positives, all bits inverted for
    # negatives (BDE's encoding: Seged7's NEGNUM for 1 is 0x400FFFFF…, i.e. -1.0 inverted)
    EMELHU + "Seged7.dbf": {
        (1, "POSNUM"): 0.0,
        (1, "NEGNUM"): 0.0,
        (2, "POSNUM"): 1.0,
        (2, "NEGNUM"): -1.0,
        (3, "POSNUM"): 2.0,
        (3, "NEGNUM"): -2.0,
    },
    PHPX + "dBase/dBaseVII_double.dbf": {
        (1, "double"): -199.99,
        (2, "double"): -74.62,
        (3, "double"): 43.65,
        (4, "double"): 150.48,
    },
    # dBase 7 long integers: big-endian, sign bit flipped
    PHPX + "dBase/dBaseVII_int.dbf": {
        (1, "INT"): 1,
        (2, "INT"): -1,
        (3, "INT"): 5_000_000,
        (4, "INT"): -5_000_000,
    },
    # dBase 7 timestamps: milliseconds since 0001-01-01 (minus a day) as a big-endian double
    PHPX + "dBase/dBaseVII_ts.dbf": {
        (1, "TS"): _T(1601, 1, 1),
        (4, "TS"): _T(1970, 1, 1),
        (7, "TS"): _T(1900, 1, 1),
        (10, "TS"): _T(2000, 1, 1),
        (15, "TS"): _T(2000, 1, 10),
    },
    JAVADBF + "test_delete.dbf": {(1, "FNAME"): "john", (2, "FNAME"): "michael"},
    # dBase 7 autoincrement (+) and binary memo (B, 10-byte pointer): the GIF without the
    # 8-byte header dBase 7 puts before binary memo data
    JAVADBF + "inventory.dbf": {
        (1, "Item ID"): 1,
        (1, "Qty"): 53,
        (3, "Qty"): 150,
        (11, "Description"): "Travel Large",
    },
    EMELHU + "BDE_TEST_7_64.dbf": BDE_ROWS,
    EMELHU + "BDE_TEST_7_1024.dbf": BDE_ROWS,
    EMELHU + "BDE_TEST_7_2048.dbf": BDE_ROWS,
    EMELHU + "BDE_TEST_4_512.dbf": BDE_ROWS,
    # VFP 9 varchar/varbinary true lengths from _NullFlags (bit order: a V/Q field's length bit,
    # then its null bit); go-dbase's own test data
    "Valentin-Kaiser__go-dbase/examples/test_data/table/TEST.DBF": {
        (1, "PRODNAME"): "TEST PRODUCT",
        (1, "PRICE"): Decimal("12.3456"),
        (1, "DATE"): _D(2022, 4, 10),
        (1, "VAR_NIL"): "Test value with variable length",
        (1, "VAR"): "",
        (1, "VARBIN_NIL"): bytes.fromhex("112233445566778899aa"),
        (1, "TAX"): Decimal("19.99"),
        (2, "VARBIN_NIL"): b"\xaa\xbb\xcc",
        (3, "VAR"): "Test",
        (3, "VAR_NIL"): "",
        (3, "VARBIN_NIL"): b"",
    },
    # a numeric field padded with NUL bytes after the digits (dbase-rs reads 1234)
    "tmontaigu__dbase-rs/tests/data/contain_null_padded_numeric.dbf": {(1, "number"): 1234},
    # Excel-written: dbfread misreads the record layout; javadbf expects 16 rows
    JAVADBF + "bug_64_excel_dbf/wrong-exented-character-field.dbf": {
        (1, "GERADEAUS"): Decimal("25710.59"),
        (1, "KURVFORM"): 0,
        (2, "KURVFORM"): None,
        (5, "END_KORR"): Decimal("600.00"),
    },
    # php-xbase wrote text under a set _NullFlags bit: VFP semantics is NULL (MANIFEST NOTES)
    PHPX + "foxpro/issue115.dbf": {(4, "MASINA"): None, (9, "MASINA"): None},
}
for _file, _values in SPOT_VALUES.items():
    EXPECTATIONS.setdefault(_file, {}).setdefault("values", {}).update(_values)
EXPECTATIONS[PHPX + "foxpro/issue115.dbf"]["ignore_fields"] = ["MASINA"]
EXPECTATIONS[PHPX + "foxpro/issue115.dbf"]["why"] = (
    "MASINA's _NullFlags bit is set in rows 4-9 although text is stored: NULL, as VFP reads it"
)
