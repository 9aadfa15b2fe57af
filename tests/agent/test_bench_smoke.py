"""bench/bench_sync.py runs end to end on a tiny pharmacy (so it does not rot; numbers come only
from `make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sync.py"


@pytest.mark.slow
def test_bench_sync_smoke(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--patients",
            "40",
            "--dir",
            str(tmp_path / "b"),
            "--markdown",
            str(out),
            "--repeat",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    assert "## Syncing the demo pharmacy" in report
    assert "Median of 2 repetitions" in report
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in report.splitlines()
        if line.startswith("| ")
    }
    # sync s, wall s, agent CPU s, server CPU s, uploaded, bytes sent, peak MB
    first, quiet, daily = rows["first sync"], rows["re-run, no change"], rows["daily run"]
    # the quiet re-run uploads nothing; the first sync uploads every enrolled patient
    assert quiet[4] == "0"
    assert quiet[5] == "0"
    assert int(first[4].replace(",", "")) > 0
    assert 0 < int(daily[4].replace(",", "")) < int(first[4].replace(",", ""))
    # CPU seconds are measured (the agent's process and its workers)
    assert float(first[2].split()[0]) > 0
    # the phase table: the first and the daily run read the tables; the re-run on unchanged
    # tables only hashes them; only runs that upload build, seal and wait for the server
    assert rows["read"][0] != ""
    assert rows["read"][1] == ""
    assert rows["read"][2] != ""
    assert rows["source digest"][1] != ""
    assert rows["build documents"][0] != ""
    assert rows["build documents"][1] == ""
    assert "upload (waiting for the server)" in rows
