"""bench/bench_portal.py runs on a tiny history (so it does not rot); numbers come only from
`make bench`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ._portal import DASH
from ._support import PORTAL_ROOT, ROOT, require_build


def test_portal_benchmark_runs_on_a_tiny_history(tmp_path: Path) -> None:
    require_build(PORTAL_ROOT)
    spec = importlib.util.spec_from_file_location(
        "bench_portal", ROOT / "bench" / "bench_portal.py"
    )
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "portal.md"
    assert (
        bench.main(["--fills", "20", "--history", "60", "--repeat", "1", "--markdown", str(out)])
        == 0
    )
    text = out.read_text(encoding="utf-8")
    assert "| Log in → records shown, 20 fills (n=1) |" in text
    assert f"Showing 1{DASH}25 of 60 prescriptions." in text
    for name in ("drug", "status", "date range", "clear"):
        assert f"| Filter 60 rows: {name} |" in text
