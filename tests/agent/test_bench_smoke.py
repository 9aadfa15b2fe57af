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
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    assert "## Syncing the demo pharmacy" in report
    rows = {
        line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")
    }
    # the quiet re-run uploads nothing; the first sync uploads every enrolled patient
    assert rows["re-run, no change"].split("|")[4].strip() == "0"
    assert rows["re-run, no change"].split("|")[5].strip() == "0"
    assert int(rows["first sync"].split("|")[4].strip().replace(",", "")) > 0
