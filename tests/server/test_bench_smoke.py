"""The server benchmark's code runs (tiny sizes, SQLite) so it cannot rot between ``make bench``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_server.py"


def test_bench_server_runs_and_reports(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_server", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_server"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "section.md"
    code = module.main(
        [
            "--databases",
            "sqlite",
            "--batches",
            "1",
            "--batch-size",
            "20",
            "--sessions",
            "2",
            "--seconds",
            "0.5",
            "--logins",
            "1",
            "--markdown",
            str(out),
        ]
    )
    assert code == 0
    report = out.read_text()
    assert "blocks per second" in report
    fetch_row = next(
        line
        for line in report.splitlines()
        if line.startswith("| sqlite |") and line.endswith(" 0 |")
    )
    assert int(fetch_row.split("|")[2]) > 0  # requests made, with zero errors
