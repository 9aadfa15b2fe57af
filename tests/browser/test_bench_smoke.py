"""bench/bench_portal.py runs on a tiny history (so it does not rot); numbers come only from
`make bench`. It runs as its own process, as `make bench` runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._portal import DASH
from ._support import PORTAL_ROOT, ROOT, require_build


def test_portal_benchmark_runs_on_a_tiny_history(tmp_path: Path) -> None:
    require_build(PORTAL_ROOT)
    out = tmp_path / "portal.md"
    script = ROOT / "bench" / "bench_portal.py"
    tiny = ["--fills", "20", "--history", "60", "--repeat", "1", "--markdown", str(out)]
    done = subprocess.run(
        [sys.executable, str(script), *tiny],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "| Log in → records shown, 20 fills (n=1) |" in text
    assert f"Showing 1{DASH}25 of 60 prescriptions." in text
    for name in ("drug", "status", "date range", "clear"):
        assert f"| Filter 60 rows: {name} |" in text
    assert "| Search 60 rows: keystroke → result shown |" in text
