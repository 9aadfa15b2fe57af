"""The sync statement benchmark's code runs (a few patients, SQLite) so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_statement.py"


def test_bench_statement_runs_and_reports(tmp_path: Path) -> None:
    report = tmp_path / "statement.md"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--patients",
            "200",
            "--repeat",
            "1",
            "--markdown",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "agent, 200 leaves:" in done.stdout
    assert "POST /agent/statement" in done.stdout
    assert "proof of 8 hashes" in done.stdout
    text = report.read_text()
    assert text.startswith("## Sync statements (`bench/bench_statement.py`)")
    assert text.count("x |") == 4  # four rows, each with its ratio
