"""``rxvault demo tables``: generates the pharmacy once, then reads it back with the reader."""

from __future__ import annotations

from pathlib import Path

import dbfread
from click.testing import CliRunner

from rxvault.cli import main


def test_demo_generates_then_reuses(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    target = demo_dir / "pharmacy"
    runner = CliRunner()
    first = runner.invoke(
        main, ["demo", "tables", "--dir", str(demo_dir), "--patients", "30", "--seed", "5"]
    )
    assert first.exit_code == 0, first.output
    assert "Generated the demo pharmacy" in first.output
    assert "patients  patient.dbf" in first.output
    live = len(list(dbfread.DBF(str(target / "patient.dbf"))))
    deleted = 30 - live
    assert f"records    {live} live, {deleted} deleted" in first.output
    assert "date_of_birth (DATE_OF_BI)" in first.output
    assert "anomalies  none" in first.output
    assert f"Sample patients (3 of {live} live)" in first.output
    assert (target / "pharmacy.dbc").exists()
    mtime = (target / "patient.dbf").stat().st_mtime_ns
    second = runner.invoke(main, ["demo", "tables", "--dir", str(demo_dir), "--samples", "1"])
    assert second.exit_code == 0, second.output
    assert "Using the demo pharmacy" in second.output
    assert f"Sample patients (1 of {live} live)" in second.output
    assert (target / "patient.dbf").stat().st_mtime_ns == mtime
    third = runner.invoke(
        main, ["demo", "tables", "--dir", str(demo_dir), "--reset", "--patients", "12"]
    )
    assert third.exit_code == 0, third.output
    assert "12 live" not in first.output
    assert "records    12 live" in third.output  # too few rows for a deleted one


def test_demo_reports_a_damaged_table(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    target = demo_dir / "pharmacy"
    runner = CliRunner()
    assert (
        runner.invoke(
            main, ["demo", "tables", "--dir", str(demo_dir), "--patients", "10"]
        ).exit_code
        == 0
    )
    fills = target / "rxfill.dbf"
    fills.write_bytes(fills.read_bytes()[:-500])
    result = runner.invoke(main, ["demo", "tables", "--dir", str(demo_dir)])
    assert result.exit_code == 2
    assert "rxvault: error:" in result.output
    assert "rxfill.dbf" in result.output
    assert "rxvault: hint: generate the pharmacy again with --reset" in result.output
    assert "Traceback" not in result.output


def test_demo_next_days(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    target = demo_dir / "pharmacy"
    runner = CliRunner()
    args = ["demo", "tables", "--dir", str(demo_dir), "--patients", "40", "--samples", "0"]
    result = runner.invoke(main, [*args, "--next-day", "2", "--pack"])
    assert result.exit_code == 0, result.output
    assert "2026-12-01: " in result.output
    assert "2026-12-02: " in result.output
    assert "packed: " in result.output
    assert "last update 2026-12-02" in result.output
    assert " 0 deleted" in result.output
    assert list(dbfread.DBF(str(target / "rxfill.dbf")).deleted) == []
