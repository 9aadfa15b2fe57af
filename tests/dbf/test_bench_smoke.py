"""The read benchmark's code runs (on a tiny pharmacy) so it cannot rot between ``make bench``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_read_runs_and_checks_values(tmp_path: Path) -> None:
    bench = _load("bench_read")
    report, results = bench.run(
        tmp_path / "pharmacy", 40, 1, ["rxvault", "dbfread", "dbf", "numpy"], 1
    )
    rx = results["prescriptions/rxvault"]
    assert rx["rows"] == results["prescriptions/dbfread"]["rows"] > 0
    assert rx["rows"] == results["prescriptions/numpy"]["rows"]
    assert results["patients/rxvault"]["rows"] == results["patients/dbfread"]["rows"]
    assert "| prescriptions |" in report
    assert "all equal" in report
    assert " differ" not in report


def test_bench_sample_comparison_catches_a_wrong_value() -> None:
    bench = _load("bench_read")
    compared, problems = bench.compare_samples(
        [{"_recno": 1, "A": "12.30", "B": "x", "C": None}],
        [{"A": 12.3, "B": "y", "C": "   "}],
    )
    assert compared == 3
    assert problems == ["record 1 B: rxvault 'x', dbfread 'y'"]
