"""The server benchmark's code runs (tiny sizes, SQLite) so it cannot rot between ``make bench``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_server.py"


def test_bench_server_runs_and_reports(tmp_path: Path) -> None:
    # In a process of its own: the benchmark runs its own event loop, which cannot start in a
    # test process where another test (the browser's) already keeps one running.
    out = tmp_path / "section.md"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
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
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = out.read_text()
    assert "blocks per second" in report
    fetch_row = next(
        line
        for line in report.splitlines()
        if line.startswith("| sqlite |") and line.endswith(" 0 |")
    )
    assert int(fetch_row.split("|")[2]) > 0  # requests made, with zero errors
