"""Harness 5, hostile DBF input, at the reader (issue 8).

Every case of ``_dbf_hostile.catalogue()`` (about 180: truncation of the table at every
record boundary and inside every record and at seeded random offsets; truncation of the memo
file at every memo and at random offsets; header counts and lengths that lie; 0x1A in the
middle; zeroed records; memo pointers into the header, past the next free block, past the
end; memo lengths past the end and huge; memo block size 0; records sharing a memo; missing,
empty or zeroed memo file; wrong code pages; bad values) is read strict and lenient in a
child process that runs under ``setrlimit``: 120 s of CPU and 4 GiB of address space for
all of them together, so a hang or a blow-up kills the child and fails the test. For each
case:

- strict mode raises one of the case's declared ``DbfError`` subclasses, whose message names
  the file (and the record, where the case knows it); or, where the case allows it, reads
  exactly the sound table;
- lenient mode raises only a ``DbfError`` or reads with at least one anomaly (never a silently
  different table), and never a record fewer than the file holds when it reads;
- memory, traced per case (tracemalloc for Python and numpy, and for
  Arrow bytes allocated while the table is held), stays within 16 MiB + 64 x the input size.

The sync side of the harness is ``test_dbf_hostile_sync.py``.

Long form: ``RXVAULT_HOSTILE_SEEDS=200 pytest -m long tests/reliability/test_dbf_hostile.py``
runs the random truncations with that many seeds (24 cuts of the table and 24 of the memo
file each), each case checked the same way.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ._dbf_hostile import ANY, catalogue

HERE = Path(__file__).resolve().parent
CASES = {c.name: c for c in catalogue()}

_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
sys.path.insert(0, sys.argv[1])
from reliability import _dbf_hostile
_dbf_hostile.run_all(__import__("pathlib").Path(sys.argv[2]), seeds=int(sys.argv[3]))
"""


def run_child(tmp: Path, seeds: int, cpu: int) -> dict[str, Any]:
    out = tmp / "hostile.json"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(cpu=cpu), str(HERE.parent), str(out), str(seeds)],
        capture_output=True,
        text=True,
        timeout=None,
        check=False,
    )
    assert proc.returncode == 0, f"the child failed (rc {proc.returncode}): {proc.stderr[-3000:]}"
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_child(tmp_path_factory.mktemp("hostile"), seeds=1, cpu=120)


def check_case(name: str, got: dict[str, Any]) -> None:
    case = CASES.get(name) or CASES[_generic(name)]
    strict, lenient = got["strict"], got["lenient"]
    allowed = set(case.strict)
    if case.same_ok:
        allowed.add("same")
    if case.value_change_ok:
        allowed |= {"different", "same"}
    # strict: a declared error (or, where allowed, the sound table)
    assert strict["outcome"] != "crash", f"{name}: {strict['message']}"
    if case.strict == ANY:
        assert strict["outcome"] not in ("different",) or case.value_change_ok, (name, strict)
        if strict["outcome"] != "same":
            assert strict["outcome"].endswith(("Error", "Table")), (name, strict)
    else:
        assert strict["outcome"] in allowed, f"{name}: strict gave {strict}, wanted {allowed}"
    if "message" in strict:
        assert "/t.dbf" in strict["message"] or "/t.fpt" in strict["message"], (name, strict)
        if case.record is not None:
            assert strict["record"] == case.record, (name, strict)
            assert f"record {case.record}" in strict["message"]
    # lenient: a DbfError, or a read that says what is wrong; never silently different
    assert lenient["outcome"] != "crash", f"{name}: {lenient['message']}"
    if lenient["outcome"] == "different" and not case.value_change_ok:
        assert lenient["anomalies"], f"{name}: lenient read a different table and said nothing"
    if lenient["outcome"] == "same" and strict["outcome"] not in ("same", "different"):
        assert lenient["anomalies"], f"{name}: lenient hid the strict error {strict}"
    # bounded memory, whatever the header claims
    for mode in (strict, lenient):
        bound = 16 * 1024 * 1024 + 64 * got["input_bytes"]
        assert mode["python_peak"] < bound, (name, mode["python_peak"])
        assert mode["arrow_peak"] < bound, (name, mode["arrow_peak"])


def _generic(name: str) -> str:
    """The catalogue name of a case of another seed (random cuts are named by position)."""
    prefix = name.split("-random-", maxsplit=1)[0] + "-random-"
    return next(n for n in CASES if n.startswith(prefix))


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_case(results: dict[str, Any], name: str) -> None:
    check_case(name, results[name])


def test_catalogue_covers_the_issue(results: dict[str, Any]) -> None:
    """Each kind of damage issue 8 names is in the catalogue and gave its declared error."""
    outcome = {n: r["strict"]["outcome"] for n, r in results.items() if not n.startswith("_")}
    assert outcome["dbf-cut-at-record-6"] == "TruncatedError"
    assert outcome["count-plus-1"] == "TruncatedError"
    assert outcome["count-minus-1"] == "RecordCountError"
    assert outcome["record-length-minus-1"] == "RecordLengthError"
    assert outcome["eof-mark-at-record-7"] == "TruncatedError"
    assert outcome["zeroed-record-7"] == "FlagByteError"
    assert outcome["memo-pointer-past-end"] == "MemoPointerError"
    assert outcome["memo-length-huge"] == "MemoLengthError"
    assert outcome["memo-block-size-zero"] == "HeaderError"
    assert outcome["memo-file-missing"] == "MissingMemoError"
    assert outcome["codepage-cp936"] == "DecodeError"
    assert outcome["memo-records-share-one-block"] == "MemoPointerError"
    # the whole catalogue ran in one child under 4 GiB of address space; resident memory:
    assert results["_max_rss_kib"] < 1024 * 1024


@pytest.mark.long
@pytest.mark.timeout(0)
def test_hostile_random_cuts_long(tmp_path: Path) -> None:
    """RXVAULT_HOSTILE_SEEDS (default 200) seeds of random truncations, every case checked."""
    seeds = int(os.environ.get("RXVAULT_HOSTILE_SEEDS", "200"))
    results = run_child(tmp_path, seeds=seeds, cpu=max(600, 6 * seeds))
    checked = 0
    for name, got in results.items():
        if not name.startswith("_"):
            check_case(name, got)
            checked += 1
    print(f"{checked} hostile cases checked; child max RSS {results['_max_rss_kib']} KiB")
    assert checked > len(CASES)


# -- regressions: damage that cost time or memory out of proportion to the input ------------

_SHARED = """
import resource, sys, tracemalloc
from pathlib import Path
resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import pyarrow as pa
from rxvault.dbf import DbfError, MemoPointerError, open_table
path = Path(sys.argv[1])
try:
    with open_table(path) as t:
        t.read()
    raise SystemExit("strict mode read records that share one memo")
except MemoPointerError as exc:
    assert "shares blocks with another memo" in str(exc), exc
    assert exc.record == 2 and exc.field == "M", exc
tracemalloc.start()
with open_table(path, strict=False) as t:
    table = t.read()
    kinds = {a.kind for a in t.anomalies}
_, peak = tracemalloc.get_traced_memory()
assert kinds == {"MemoPointerError"}, kinds
assert table.num_rows == int(sys.argv[2]), table.num_rows
assert table.column("M").null_count == table.num_rows - 1
sys.path.insert(0, sys.argv[3])
from reliability._peak import peak_rss_kib
print(table.nbytes, peak, peak_rss_kib())
"""


def test_records_sharing_one_large_memo_stay_small(tmp_path: Path) -> None:
    """Regression: 20,000 records (100 KB of DBF) all pointing at one 1 MB memo read as 20 GB
    (memory and time out of all proportion; the process was killed). Now strict mode refuses
    the second record that shares the memo; lenient mode reads it once and the others null.
    (Found with it: past the first thousand memo problems of a batch, lenient mode read the
    bad memos as empty strings instead of null.)"""
    from rxvault.dbf import FieldSpec, write_table

    n = 20_000
    path = tmp_path / "t.dbf"
    write_table(path, [FieldSpec("M", "M")], [{"M": "x" * 1_000_000}] + [{"M": "y"}] * (n - 1))
    data = bytearray(path.read_bytes())
    hl, rl = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    first = bytes(data[hl + 1 : hl + 5])
    for i in range(n):
        data[hl + i * rl + 1 : hl + i * rl + 5] = first
    path.write_bytes(bytes(data))
    proc = subprocess.run(
        [sys.executable, "-c", _SHARED, str(path), str(n), str(HERE.parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    nbytes, peak, rss_kib = map(int, proc.stdout.split())
    assert nbytes < 2 * 1024 * 1024
    assert peak < 32 * 1024 * 1024
    assert rss_kib < 512 * 1024


_DBT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
from rxvault.dbf import MemoLengthError, open_table
try:
    with open_table(sys.argv[1]) as t:
        t.read()
    raise SystemExit("read unterminated memos")
except MemoLengthError as exc:
    assert exc.record == 1 and exc.field == "NOTE", exc
with open_table(sys.argv[1], strict=False) as t:
    table = t.read()
    assert table.num_rows == int(sys.argv[2])
    assert len(t.anomalies) == 1000  # the first thousand are listed
print(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
"""


def test_unterminated_dbase_memos_are_found_in_one_scan(tmp_path: Path) -> None:
    """Regression: a dBase III memo ends at 0x1A; with no 0x1A anywhere in an 8 MB .dbt and
    50,000 records pointing into it, each record scanned to the end of the file (about 200 GB
    read in all). Now the terminators are found once; the child has 30 s of CPU for it all."""
    n, blocks = 50_000, 16_384  # an 8 MB memo file of 512-byte blocks, no 0x1A in it
    head = struct.pack("<I", blocks) + bytes(508)
    (tmp_path / "t.dbt").write_bytes(head + b"m" * (512 * (blocks - 1)))
    descriptor = struct.pack("<11scIBBB13x", b"NOTE", b"M", 1, 10, 0, 0)
    header = struct.pack("<B3BIHH20x", 0x83, 124, 1, 1, n, 32 + 32 + 1, 11)
    records = b"".join(b" " + str(1 + i % (blocks - 1)).rjust(10).encode() for i in range(n))
    (tmp_path / "t.dbf").write_bytes(header + descriptor + b"\r" + records + b"\x1a")
    proc = subprocess.run(
        [sys.executable, "-c", _DBT, str(tmp_path / "t.dbf"), str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- dBase III tables and their .dbt memo files (memos end at 0x1A, pointers are digits) ------


def _dbase3(directory: Path) -> tuple[Path, Path]:
    from rxvault.dbf import FieldSpec, write_table

    path = directory / "d.dbf"
    rows = [{"NAME": f"p{i}", "NOTE": f"memo {i} " * (i * 40)} for i in range(1, 9)]
    write_table(path, [FieldSpec("NAME", "C", 8), FieldSpec("NOTE", "M")], rows, version=0x03)
    return path, path.with_suffix(".dbt")


def _dbt_pointer(path: Path, record: int, text: bytes) -> None:
    data = bytearray(path.read_bytes())
    hl, rl = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    at = hl + (record - 1) * rl + 1 + 8
    data[at : at + 10] = text.rjust(10)
    path.write_bytes(bytes(data))


DBT_CASES = {
    "dbt-missing": (lambda t, m: m.unlink(), {"MissingMemoError"}),
    "dbt-empty": (lambda t, m: m.write_bytes(b""), {"MemoPointerError"}),
    "dbt-cut-in-half": (
        lambda t, m: m.write_bytes(m.read_bytes()[: m.stat().st_size // 2]),
        {"MemoPointerError", "MemoLengthError"},
    ),
    "dbt-no-terminators": (
        lambda t, m: m.write_bytes(m.read_bytes().replace(b"\x1a", b"x")),
        {"MemoLengthError"},
    ),
    "dbt-pointer-not-digits": (lambda t, m: _dbt_pointer(t, 4, b"12ab"), {"BadValueError"}),
    "dbt-pointer-past-end": (lambda t, m: _dbt_pointer(t, 4, b"9999999999"), {"MemoPointerError"}),
    # zeros are an empty memo in dBase III (as blanks are): a changed value, not an error
    "dbt-pointer-zero": (lambda t, m: _dbt_pointer(t, 4, b"0000000000"), {"different"}),
    "dbt-records-share-a-memo": (
        lambda t, m: [_dbt_pointer(t, r, b"8") for r in range(1, 9)],
        {"MemoPointerError"},
    ),
}


@pytest.mark.parametrize("name", list(DBT_CASES))
def test_hostile_dbase_memo(tmp_path: Path, name: str) -> None:
    """Damaged .dbt memo files give their declared error naming the table."""
    from rxvault.dbf import DbfError, open_table

    table, memo = _dbase3(tmp_path)
    with open_table(table) as t:
        sound = t.read()
    damage, allowed = DBT_CASES[name]
    damage(table, memo)
    message = ""
    try:
        with open_table(table) as t:
            got = "same" if t.read().equals(sound) else "different"
    except DbfError as exc:
        got, message = type(exc).__name__, str(exc)
    assert got in allowed, got
    if got not in ("same", "different"):
        assert message.startswith(str(table)), message
        assert got == "MissingMemoError" or f"{table}, record " in message, message
    with open_table(table, strict=False) as t:  # lenient: reads, and says what is wrong
        assert t.read().num_rows == 8
        assert got in ("same", "different") or [a for a in t.anomalies if a.kind != "Note"]
