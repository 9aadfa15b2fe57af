"""Harness 6: coverage-guided fuzzing of the DBF reader over a DBF + memo pair (issue 8).

The fuzzer is ``tools/fuzz_dbf.py`` (atheris: libFuzzer guided by the Python coverage of
``rxvault.dbf``). Its target opens a table strict and lenient, reads every column and memo
into Arrow (validated), iterates the rows and runs the ``inspect`` scan; the only allowed
outcomes are success and ``DbfError``. The corpus it keeps is ``dbf_fuzz_corpus/`` (seeds of
every table kind, plus the inputs that added coverage in the long runs, plus every crash it
found, named ``regress-*``).

Short form (make test): the whole corpus is replayed in a subprocess under a CPU-time and
address-space limit, then a fixed 300-input, fixed-seed fuzzing run (deterministic).

Long form (make soak): ``RXVAULT_FUZZ_SECONDS`` (default 3600) of fuzzing, which must find no
crash::

    RXVAULT_FUZZ_SECONDS=3600 .venv/bin/pytest -m long tests/reliability/test_dbf_fuzz_corpus.py

(or by hand, which also merges the new coverage into the corpus:
``nice -n 15 .venv/bin/python tools/fuzz_dbf.py --seconds 3600``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from rxvault.dbf import BadValueError, DbfError, FieldSpec, open_table, write_table

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "fuzz_dbf.py"
CORPUS = Path(__file__).resolve().parent / "dbf_fuzz_corpus"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_dbf", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_dbf"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fuzz_dbf = _tool()

# Replays the corpus in a child with hard limits: a hang is killed by SIGXCPU, a memory
# blow-up fails its allocation (MemoryError is not a DbfError, so it is reported as a crash).
_LIMITED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (240, 240))
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
sys.path.insert(0, sys.argv[1])
import fuzz_dbf
from pathlib import Path
print(json.dumps(fuzz_dbf.replay([Path(sys.argv[2])])))
sys.path.insert(0, sys.argv[3])
from reliability._peak import peak_rss_kib
print(peak_rss_kib())
"""


def test_corpus_is_small_and_holds_every_regression() -> None:
    files = [p for p in CORPUS.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2 * 1024 * 1024
    names = {p.name for p in files}
    assert {"regress-oserror-long-backlink", "regress-decimal-past-precision"} <= names
    assert sum(n.startswith("seed-") for n in names) >= 10


def test_corpus_replays_without_a_crash() -> None:
    """Every corpus input gives success or a DbfError, within the CPU and memory limits."""
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(TOOL.parent), str(CORPUS), str(CORPUS.parent.parent)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report_line, rss_line = proc.stdout.strip().splitlines()[-2:]
    report = json.loads(report_line)
    assert report["inputs"] == len([p for p in CORPUS.iterdir() if p.is_file()])
    # both outcomes occur: the corpus is not all refused (or all accepted)
    assert report["outcomes"].get("strict:ok", 0) > 0
    assert (
        sum(v for k, v in report["outcomes"].items() if k.startswith("strict:")) == report["inputs"]
    )
    assert int(rss_line) < 1024 * 1024  # KiB: the whole replay stays under 1 GiB resident


def test_a_short_fuzzing_run_finds_no_crash(tmp_path: Path) -> None:
    """300 inputs with a fixed seed (the same run each time), through atheris and libFuzzer,
    from the seeds and regressions (the whole corpus is replayed above, uninstrumented)."""
    start = tmp_path / "start"
    start.mkdir()
    for p in CORPUS.iterdir():
        if p.name.startswith(("seed-", "regress-")):
            shutil.copy(p, start / p.name)
    work = tmp_path / "work"
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            "--runs",
            "300",
            "--seed",
            "1",
            "--no-merge",
            "--corpus",
            str(start),
            "--workdir",
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["crashes"] == []
    assert result["executions"] == 300
    assert result["coverage_edges"] > 500  # the reader was really instrumented and driven


@pytest.mark.long
@pytest.mark.timeout(0)
def test_long_fuzzing_run_finds_no_crash(tmp_path: Path) -> None:
    """RXVAULT_FUZZ_SECONDS (default 3600) of coverage-guided fuzzing: no crash."""
    seconds = int(os.environ.get("RXVAULT_FUZZ_SECONDS", "3600"))
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            "--seconds",
            str(seconds),
            "--no-merge",
            "--corpus",
            str(CORPUS),
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    result = json.loads(proc.stdout)
    print(json.dumps(result, indent=2))
    crashes = {
        name: (tmp_path / "crashes" / name).read_bytes().hex()[:200] for name in result["crashes"]
    }
    assert crashes == {}, f"crash inputs are in {tmp_path / 'crashes'}"
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_blob_framing_round_trips() -> None:
    blob = fuzz_dbf.pack(b"table", b"memo", memo_ext=".dbt", codepage=4)
    case = fuzz_dbf.unpack(blob)
    assert (case.dbf, case.memo, case.memo_ext, case.codepage) == (
        b"table",
        b"memo",
        ".dbt",
        "cp936",
    )
    assert fuzz_dbf.unpack(fuzz_dbf.pack(b"t", None)).memo is None
    case = fuzz_dbf.unpack(fuzz_dbf.pack(b"t", b"m", dbc=(b"container", b"its memo")))
    assert (case.dbf, case.memo, case.dbc, case.dct) == (b"t", b"m", b"container", b"its memo")
    # any bytes at all are an input (a mutated length cannot point outside the blob)
    case = fuzz_dbf.unpack(b"RXF1\x00\xff\xff\xff\xffabc")
    assert (case.dbf, case.memo) == (b"abc", b"")


# -- the crashes the fuzzer found, as plain regression tests -----------------------------------


def _read_all(path: Path, strict: bool) -> None:
    with open_table(path, strict=strict) as t:
        t.read(include_deleted=True).validate(full=True)
        list(t.rows())


def test_regression_backlink_longer_than_a_file_name(tmp_path: Path) -> None:
    """Found by the fuzzer: a damaged DBC backlink of 263 letters made the reader look up a
    file name longer than the system allows and raise OSError (ENAMETOOLONG)."""
    path = tmp_path / "t.dbf"
    write_table(path, [FieldSpec("A", "C", 3)], [{"A": "x"}], dbc=tmp_path / "db.dbc")
    data = bytearray(path.read_bytes())
    backlink_at = int.from_bytes(data[8:10], "little") - 263
    data[backlink_at : backlink_at + 263] = b"c" * 263
    path.write_bytes(bytes(data))
    for strict in (True, False):
        with open_table(path, strict=strict) as t:
            assert t.read().to_pylist() == [{"A": "x"}]
            assert any("not found; short field names" in a.message for a in t.anomalies)


def test_regression_number_past_its_decimal_precision(tmp_path: Path) -> None:
    """Found by the fuzzer: an N(10,5) field holding ``9999999999`` (no decimal point: the
    integer part runs into the decimals' columns) read as a decimal with more digits than its
    Arrow type, giving invalid Arrow data or ArrowInvalid. Now a BadValueError naming the
    record and field (null in lenient mode)."""
    path = tmp_path / "t.dbf"
    write_table(path, [FieldSpec("Q", "N", 10, 5)], [{"Q": Decimal("1.5")}, {"Q": Decimal("2")}])
    data = bytearray(path.read_bytes())
    hl, rl = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    data[hl + rl + 1 : hl + rl + 11] = b"9999999999"
    path.write_bytes(bytes(data))
    with pytest.raises(BadValueError) as info:
        _read_all(path, strict=True)
    assert info.value.record == 2
    assert info.value.field == "Q"
    assert "does not fit" in str(info.value)
    with open_table(path, strict=False) as t:
        table = t.read()
        table.validate(full=True)
        assert table.column("Q").to_pylist() == [Decimal("1.50000"), None]
        assert [a.record for a in t.anomalies if a.kind == "BadValueError"] == [2]


def test_numbers_wider_than_any_decimal_are_refused_cleanly(tmp_path: Path) -> None:
    """Found with the one above: decimals beyond what decimal128 holds, and 20-digit values."""
    path = tmp_path / "t.dbf"
    write_table(path, [FieldSpec("W", "N", 20, 2)], [{"W": Decimal("1.25")}])
    data = bytearray(path.read_bytes())
    hl = int.from_bytes(data[8:10], "little")
    data[32 + 17] = 50  # the field's decimal count: 50
    path.write_bytes(bytes(data))
    for strict in (True, False):
        with contextlib.suppress(DbfError):
            _read_all(path, strict=strict)
    data[32 + 17] = 2
    data[hl + 1 : hl + 21] = b"99999999999999999999"
    path.write_bytes(bytes(data))
    with pytest.raises(BadValueError):
        _read_all(path, strict=True)
    _read_all(path, strict=False)
