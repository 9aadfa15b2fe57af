"""``rxvault dbf inspect`` and ``rxvault dbf export``."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
from _build import F, c, fpt_bytes, n, ptr, write_dbf
from click.testing import CliRunner

from rxvault.cli import main


def _table(tmp_path: Path) -> Path:
    fpt, (p,) = fpt_bytes([(1, "crème".encode("cp1252"))])
    (tmp_path / "t.fpt").write_bytes(fpt)
    fields = [F("NAME", "C", 6), F("QTY", "N", 5, 2), F("NOTE", "M", 4), F("RAW", "C", 2, flags=4)]
    return write_dbf(
        tmp_path / "t.dbf",
        fields,
        [c("Zoë", 6) + n("1.50", 5) + ptr(p) + b"\x00\xff", c("Al", 6) + n("", 5) + ptr(0) + b"ab"],
        flags=[0x20, 0x2A],
    )


def test_inspect_text(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dbf", "inspect", str(_table(tmp_path))])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "0x30 Visual FoxPro" in out
    assert "cp1252" in out
    assert "1 live, 1 deleted" in out
    assert "block size 64" in out
    assert "QTY          N 5,2" in out
    assert "anomalies    none" in out


def test_inspect_json_lists_anomalies_and_exits_1(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "b.dbf", [F("A", "C", 2)], [b"ok", b"\x90x"], flags=[0x20, 0x00])
    result = CliRunner().invoke(main, ["dbf", "inspect", "--json", str(path)])
    assert result.exit_code == 1
    info = json.loads(result.output)
    kinds = [a["kind"] for a in info["anomalies"]]
    assert kinds == ["FlagByteError", "DecodeError"]
    assert info["anomalies"][1]["record"] == 2
    assert info["fields"][0]["name"] == "A"


def test_export_jsonl_and_csv(tmp_path: Path) -> None:
    path = _table(tmp_path)
    result = CliRunner().invoke(main, ["dbf", "export", str(path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows == [
        {"NAME": "Zoë", "QTY": "1.50", "NOTE": "crème", "RAW": base64.b64encode(b"\0\xff").decode()}
    ]
    out = tmp_path / "t.csv"
    args = ["dbf", "export", str(path), "--format", "csv", "-o", str(out), "--include-deleted"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    table = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert table[0] == ["NAME", "QTY", "NOTE", "RAW", "_deleted"]
    assert table[1][:3] == ["Zoë", "1.50", "crème"]
    assert table[2] == ["Al", "", "", "YWI=", "true"]


def test_export_parquet(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    args = [
        "dbf",
        "export",
        str(_table(tmp_path)),
        "--format",
        "parquet",
        "-o",
        str(out),
        "--recno",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == ["NAME", "QTY", "NOTE", "RAW", "_recno"]
    assert table.column("_recno").to_pylist() == [1]


def test_user_errors_are_short_messages_with_hints(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "m.dbf", [F("M", "M", 4)], [ptr(8)])
    result = CliRunner().invoke(main, ["dbf", "export", str(path), "--format", "csv"])
    assert result.exit_code == 2
    assert "rxvault: error: cannot read" in result.output
    assert "memo file (m.fpt) is missing" in result.output
    assert "rxvault: hint:" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["dbf", "inspect", str(tmp_path / "absent.dbf")])
    assert result.exit_code == 2
    assert "no such file" in result.output
    result = CliRunner().invoke(main, ["dbf", "export", str(path), "--format", "parquet"])
    assert result.exit_code == 2
    assert "-o FILE.parquet" in result.output


def test_export_lenient_salvages_with_warnings(tmp_path: Path) -> None:
    path = write_dbf(tmp_path / "m.dbf", [F("A", "C", 1), F("M", "M", 4)], [b"x" + ptr(8)])
    args = ["dbf", "export", str(path), "--format", "jsonl", "--lenient"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert '{"A": "x", "M": null}' in result.output
    assert "rxvault: warning:" in result.output
