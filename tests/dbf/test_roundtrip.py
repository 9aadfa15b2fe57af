"""Property tests: what the writer writes, the reader reads back; damage gives only DbfError.

- Random valid tables (every writable field type, nullable and binary fields, NULLs, deleted
  rows, memo block sizes from 1 up, code pages cp1252/cp437/cp850, tables bound to a DBC with
  long field names, dBase III tables) read back identically.
- Random truncations and byte corruptions of a written table and its memo file raise only
  ``rxvault.dbf.DbfError`` (strict mode) or read with anomalies (lenient mode); never another
  exception, within a time limit and a memory bound.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tracemalloc
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxvault.dbf import DbfError, FieldSpec, open_table, write_dbc, write_table

CODEPAGES = ["cp1252", "cp437", "cp850"]
VFP_TYPES = "CNFDLMIBYTVQWG"
DBASE3_TYPES = "CNDLM"

# The default run is small and the same every time (make test stays fast and stable); a longer,
# random search: RXVAULT_HYPOTHESIS_EXAMPLES=2000 pytest tests/dbf/test_roundtrip.py
_LONG = os.environ.get("RXVAULT_HYPOTHESIS_EXAMPLES")
SETTINGS = settings(
    max_examples=int(_LONG or "40"),
    derandomize=_LONG is None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _alphabet(codepage: str) -> list[str]:
    """Printable characters of a single-byte code page (no control characters)."""
    chars = []
    for b in range(0x20, 0x100):
        try:
            c = bytes([b]).decode(codepage)
        except UnicodeDecodeError:
            continue
        if c.isprintable():
            chars.append(c)
    return chars


@dataclass
class Case:
    fields: list[FieldSpec]
    rows: list[dict[str, Any]] | pa.Table
    deleted: list[bool]
    codepage: str
    block_size: int
    version: int | None
    long_names: bool


@st.composite
def field_specs(draw: st.DrawFn, index: int, dbase: bool, long_names: bool) -> FieldSpec:
    ftype = draw(st.sampled_from(DBASE3_TYPES if dbase else VFP_TYPES))
    name = f"field_number_{index}_{ftype.lower()}" if long_names else f"F{index}"
    length = decimals = 0
    if ftype in "CVQ":
        length = draw(st.integers(1, 40))
    elif ftype in "NF":
        length = draw(st.integers(1, 20))
        if length >= 3:
            decimals = draw(st.integers(0, min(length - 2, 8)))
    elif ftype == "B":
        decimals = draw(st.integers(0, 6))
    nullable = not dbase and draw(st.booleans())
    binary = not dbase and ftype in "CMV" and draw(st.booleans())
    autoincrement = not dbase and ftype == "I" and not nullable and draw(st.integers(0, 4)) == 0
    return FieldSpec(name, ftype, length, decimals, nullable, binary, autoincrement)


def _text(draw: st.DrawFn, codepage: str, max_size: int) -> str:
    return draw(st.text(alphabet=st.sampled_from(_alphabet(codepage)), max_size=max_size))


@st.composite
def values(draw: st.DrawFn, spec: FieldSpec, codepage: str, dbase: bool) -> Any:
    if spec.nullable and draw(st.integers(0, 4)) == 0:
        return None
    t = spec.type
    if t == "C":
        if spec.binary:
            return draw(st.binary(max_size=spec.length))
        return _text(draw, codepage, spec.length).rstrip(" ")
    if t == "V":
        if spec.binary:
            return draw(st.binary(max_size=spec.length))
        return _text(draw, codepage, spec.length)
    if t == "Q":
        return draw(st.binary(max_size=spec.length))
    if t in "NF":
        room = spec.length - (spec.decimals + 1 if spec.decimals else 0)  # sign and digits
        low = -(10 ** (room - 1 + spec.decimals) - 1) if room >= 2 else 0
        unscaled = draw(st.integers(low, 10 ** (room + spec.decimals) - 1))
        return Decimal(unscaled).scaleb(-spec.decimals)
    if t == "D":
        return draw(st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)))
    if t == "T":
        moment = draw(st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)))
        return moment.replace(microsecond=0)
    if t == "L":
        return draw(st.booleans())
    if t == "M":
        if spec.binary:
            return draw(st.binary(max_size=300))
        text = _text(draw, codepage, 300)
        return text.replace("\x1a", "") if dbase else text
    if t == "I":
        if spec.autoincrement:
            return None
        return draw(st.integers(-(2**31), 2**31 - 1))
    if t == "B":
        return draw(st.floats(allow_nan=False, allow_infinity=False))
    if t == "Y":
        return Decimal(draw(st.integers(-(2**63), 2**63 - 1))).scaleb(-4)
    if t in "WG":
        return draw(st.binary(max_size=300))
    raise AssertionError(t)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    dbase = draw(st.integers(0, 5)) == 0
    long_names = not dbase and draw(st.booleans())
    codepage = draw(st.sampled_from(CODEPAGES))
    n_fields = draw(st.integers(1, 8))
    fields = [draw(field_specs(i, dbase, long_names)) for i in range(n_fields)]
    n_rows = draw(st.integers(0, 12))
    rows = [{f.name: draw(values(f, codepage, dbase)) for f in fields} for _ in range(n_rows)]
    deleted = [draw(st.integers(0, 3)) == 0 for _ in range(n_rows)]
    block_size = draw(st.sampled_from([1, 2, 7, 33, 64, 100, 512, 1024]))
    return Case(fields, rows, deleted, codepage, block_size, 0x03 if dbase else None, long_names)


def _expected(spec: FieldSpec, value: Any, autoinc: int) -> Any:
    """What the reader gives back for a written value."""
    t = spec.type
    if t == "I" and spec.autoincrement:
        return autoinc
    if value is None:
        if spec.nullable:
            return None
        if t == "C":
            return b" " * spec.length if spec.binary else ""
        if t == "M":
            return b"" if spec.binary else ""
        if t in "WG":
            return b""
        return None  # blank N, F, D, L, T
    if t == "C" and spec.binary:
        return value.ljust(spec.length, b" ")
    if t in "NF" and spec.decimals == 0 and spec.length <= 18:
        return int(value)
    if t == "B":
        return float(value)
    return value


def _write(case: Case, directory: Path) -> Path:
    path = directory / "t.dbf"
    dbc = directory / "db.dbc" if case.long_names else None
    write_table(
        path,
        case.fields,
        case.rows,
        version=case.version,
        codepage=case.codepage,
        memo_block_size=case.block_size,
        dbc=dbc,
        deleted=case.deleted,
        last_update=dt.date(2024, 2, 29),
    )
    if dbc is not None:
        write_dbc(dbc, {"t": (path, [f.name for f in case.fields])})
    return path


def _arrow_type(spec: FieldSpec) -> pa.DataType:
    t = spec.type
    if t in "CVM":
        return pa.binary() if spec.binary else pa.string()
    if t in "QWG":
        return pa.binary()
    if t in "NF":
        return pa.decimal128(38, spec.decimals)
    return {
        "D": pa.date32(),
        "T": pa.timestamp("ms"),
        "L": pa.bool_(),
        "I": pa.int32(),
        "B": pa.float64(),
        "Y": pa.decimal128(38, 4),
    }[t]


@SETTINGS
@given(case=cases())
def test_arrow_input_writes_the_same_bytes(tmp_path_factory: Any, case: Case) -> None:
    rows_dir = tmp_path_factory.mktemp("rows")
    arrow_dir = tmp_path_factory.mktemp("arrow")
    _write(case, rows_dir)
    columns = {
        f.name: pa.array([row[f.name] for row in case.rows], _arrow_type(f)) for f in case.fields
    }
    _write(Case(**{**case.__dict__, "rows": pa.table(columns)}), arrow_dir)
    for path in sorted(rows_dir.iterdir()):
        assert path.read_bytes() == (arrow_dir / path.name).read_bytes(), path.name


@SETTINGS
@given(case=cases())
def test_written_tables_read_back_identically(tmp_path_factory: Any, case: Case) -> None:
    directory = tmp_path_factory.mktemp("rt")
    path = _write(case, directory)
    with open_table(path) as t:
        assert t.anomalies == []
        assert t.codepage == case.codepage
        assert t.record_count == len(case.rows)
        assert t.last_update == dt.date(2024, 2, 29)
        if not case.long_names:
            assert [f.name for f in t.fields] == [f.name for f in case.fields]
        names = [f.long_name or f.name for f in t.fields]
        assert names == [f.name if not case.long_names else f.name.lower() for f in case.fields]
        got = t.read(include_deleted=True).to_pylist()
    autoinc = 1
    expected = []
    for row, deleted in zip(case.rows, case.deleted, strict=True):
        out = {
            name: _expected(spec, row[spec.name], autoinc)
            for name, spec in zip(names, case.fields, strict=True)
        }
        out["_deleted"] = deleted
        expected.append(out)
        autoinc += 1
    assert got == expected
    with open_table(path) as t:
        live = t.read().to_pylist()
        assert list(t.rows()) == live
    assert live == [
        {k: v for k, v in row.items() if k != "_deleted"} for row in expected if not row["_deleted"]
    ]


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, str, list[tuple[int, int]], float]:
    target = draw(st.sampled_from(["dbf", "memo"]))
    kind = draw(st.sampled_from(["truncate", "flip", "both"]))
    flips = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=8))
    cut = draw(st.floats(0.0, 1.0))
    return target, kind, flips, cut


def _damage(path: Path, kind: str, flips: list[tuple[int, int]], cut: float) -> None:
    data = bytearray(path.read_bytes())
    if kind in ("flip", "both") and data:
        for pos, xor in flips:
            data[pos % len(data)] ^= xor
    if kind in ("truncate", "both"):
        data = data[: int(len(data) * cut)]
    path.write_bytes(bytes(data))


def _read_everything(path: Path, strict: bool) -> None:
    with open_table(path, strict=strict) as t:
        t.read(include_deleted=True, with_recno=True)
        for _ in t.rows():
            pass
        if not strict:
            assert all(a.message for a in t.anomalies)


@SETTINGS
@pytest.mark.timeout(120)
@given(case=cases(), hurt=damage(), strict=st.booleans())
def test_damaged_tables_raise_only_dbf_errors(
    tmp_path_factory: Any,
    case: Case,
    hurt: tuple[str, str, list[tuple[int, int]], float],
    strict: bool,
) -> None:
    directory = tmp_path_factory.mktemp("bad")
    path = _write(case, directory)
    target, kind, flips, cut = hurt
    memo = [p for p in directory.iterdir() if p.suffix in (".fpt", ".dbt")]
    victim = memo[0] if target == "memo" and memo else path
    _damage(victim, kind, flips, cut)
    size = sum(p.stat().st_size for p in directory.iterdir())
    message = None
    tracemalloc.start()
    try:
        _read_everything(path, strict)
    except DbfError as exc:  # the only exception allowed; anything else fails the test
        message = str(exc)
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert message is None or message
    # memory stays proportional to the files, whatever the damaged header claims
    assert peak < 64 * 1024 * 1024 + 200 * size


def test_record_length_one_short_in_lenient_mode(tmp_path: Path) -> None:
    """Regression (found by the corruption property): lenient mode raised IndexError."""
    fields = [
        FieldSpec("F0", "I", nullable=True),
        FieldSpec("F1", "C", 15),
        FieldSpec("F2", "W"),
        FieldSpec("F3", "I", autoincrement=True),
        FieldSpec("F4", "C", 4),
    ]
    path = tmp_path / "t.dbf"
    write_table(path, fields, [{}] * 7, deleted=[True] * 7, memo_block_size=1)
    data = bytearray(path.read_bytes())
    data[10] ^= 1  # record length 33 -> 32
    path.write_bytes(bytes(data))
    with contextlib.suppress(DbfError):  # a clear error is fine too
        _read_everything(path, strict=False)


def test_datetime_far_out_of_range(tmp_path: Path) -> None:
    """Regression (found by the corruption property): rows() raised OverflowError."""
    path = tmp_path / "t.dbf"
    write_table(path, [FieldSpec("T", "T")], [{"T": dt.datetime(2020, 1, 1)}])
    data = bytearray(path.read_bytes())
    header_length = int.from_bytes(data[8:10], "little")
    data[header_length + 1 : header_length + 5] = (2**31 - 1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    for strict in (True, False):
        with contextlib.suppress(DbfError):
            _read_everything(path, strict=strict)


def test_only_deleted_records(tmp_path: Path) -> None:
    path = tmp_path / "t.dbf"
    fields = [FieldSpec("B", "B"), FieldSpec("M", "M")]
    write_table(path, fields, [{"B": 1.0, "M": "x"}], deleted=[True])
    with open_table(path) as t:
        assert t.read().num_rows == 0
