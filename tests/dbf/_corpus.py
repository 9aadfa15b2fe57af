"""Reading the shared DBF corpus and comparing with its reference readings.

The corpus (``<repo>/../shared/dbf-corpus``) holds real tables from other projects' test suites
and, under ``reference/``, what dbfread 2.0.7 made of each. Its MANIFEST lists where that reference
is wrong; :data:`CAVEAT_RULES` below say how each such difference is recognised, and
``corpus_expectations.py`` holds the per-file decisions (declared errors, true code pages, values
the reference gets wrong).

``python tests/dbf/_corpus.py`` prints the corpus report.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import json
import math
import os
import struct
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_expectations import EXPECTATIONS

import rxvault.dbf as dbf

REPO = Path(__file__).resolve().parents[2]
#: ``RXVAULT_DBF_CORPUS`` points elsewhere when the corpus is not beside the repository.
CORPUS = Path(
    os.environ.get("RXVAULT_DBF_CORPUS") or REPO / ".." / "shared" / "dbf-corpus"
).resolve()


@functools.cache
def manifest() -> dict[str, Any]:
    return json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))


@dataclass
class Outcome:
    file: str
    status: str = "?"  # "match", "refused", "read (no reference)", "read (lenient)"
    rows: int = 0
    values: int = 0
    caveats: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    error: str = ""


def reference_recnos(path: Path) -> list[int]:
    """The physical record numbers dbfread returns: it stops at 0x1A or the end of the file,
    ignores the header count, and skips records whose flag is neither space nor '*'."""
    data = path.read_bytes()
    hl, rl = struct.unpack_from("<HH", data, 8)
    out = []
    off, i = hl, 0
    while off + rl <= len(data) and rl > 0:
        flag = data[off]
        if flag == 0x1A:
            break
        if flag in (0x20, 0x2A):
            out.append(i + 1)
        off += rl
        i += 1
    return out


def _round_second(value: dt.datetime) -> dt.datetime:
    base = value.replace(microsecond=0)
    return base + dt.timedelta(seconds=1) if value.microsecond >= 500_000 else base


def _blank_like(value: Any) -> bool:
    """What a NULL field's bytes look like to a reader that ignores ``_NullFlags``."""
    if value is None or value is False:
        return True
    if isinstance(value, (int, float)):
        return value == 0
    return str(value).strip(" \0").strip("0.") == "" or str(value) == "1899-12-30T00:00:00"


def compare_value(
    f: dbf.Field,
    ours: Any,
    ref: Any,
    *,
    ref_encoding: str,
    our_codec: str | None,
    hex_field: bool,
    dbase4_memo: bool = False,
) -> str | None:
    """None if equal; a caveat name for a known reference fault; else "MISMATCH"."""
    if ref == "" and f.type in "DNFLIBY@+OT":
        ref = None
    if ours is None:
        if ref is None:
            return None
        if f.nullable and _blank_like(ref):
            return "reference ignores _NullFlags"
        return "MISMATCH"
    if isinstance(ours, bytes):
        if ref is None:
            return None if ours == b"" else "MISMATCH"
        if hex_field:
            return None if bytes.fromhex(ref) == ours else "MISMATCH"
        text = ours.decode(ref_encoding, errors="replace")
        if text.rstrip(" \0") == str(ref).rstrip(" \0"):
            return "binary field (NOCPTRANS) decoded as text by the reference"
        if f.type == "V" and str(ref).startswith(text):
            return "reference reads V like C (no true length), binary V decoded as text"
        return "MISMATCH"
    if isinstance(ours, str):
        if ref is None:
            return "reference returns null for an empty memo" if ours == "" else "MISMATCH"
        if ref_encoding == "latin-1" and our_codec not in (None, "latin-1", "iso8859-1"):
            ref = ref.encode("latin-1").decode(our_codec or "ascii", errors="replace")
            if ours == ref or ours.rstrip() == ref.rstrip(" \0"):
                return "reference decoded text as latin-1"
        if ours == ref:
            return None
        if f.type == "C" and ours == ref.rstrip(" \0"):
            return None
        if f.type == "V" and ref.startswith(ours):
            return "reference reads V like C (no true length)"
        if dbase4_memo and f.type == "M" and ref.startswith(ours) and len(ref) - len(ours) <= 8:
            return "reference reads up to 8 bytes past a dBase IV memo"
        return "MISMATCH"
    if isinstance(ours, bool):
        return None if ours == ref else "MISMATCH"
    if isinstance(ours, dt.datetime):
        if ref is None:
            return "MISMATCH"
        expected = _round_second(dt.datetime.fromisoformat(ref))
        if expected == ours:
            return (
                None if expected == dt.datetime.fromisoformat(ref) else "reference keeps raw T ms"
            )
        return "MISMATCH"
    if isinstance(ours, dt.date):
        return None if ref == ours.isoformat() else "MISMATCH"
    if isinstance(ours, (int, Decimal, float)):
        if ref is None:
            return "MISMATCH"
        if isinstance(ref, str) and ref in ("NaN", "Infinity", "-Infinity"):
            return None if str(float(ours)) in ("nan", "inf", "-inf") else "MISMATCH"
        a, b = float(ours), float(Decimal(str(ref)))
        if isinstance(ours, float) and math.isnan(a):
            return "MISMATCH"
        return None if abs(a - b) <= 1e-9 * max(1.0, abs(b)) else "MISMATCH"
    return "MISMATCH"


def check(entry: dict[str, Any]) -> Outcome:
    rel = entry["file"]
    out = Outcome(rel)
    exp = EXPECTATIONS.get(rel, {})
    path = CORPUS / rel
    kwargs = dict(exp.get("open", {}))
    if "error" in exp:
        out.status = "refused"
        out.error = exp["error"]
        try:
            with dbf.open_table(path, **kwargs) as t:
                t.read(include_deleted=True)
        except dbf.DbfError as exc:
            if type(exc).__name__ != exp["error"]:
                out.problems.append(f"expected {exp['error']}, got {type(exc).__name__}: {exc}")
            elif str(path) not in str(exc):
                out.problems.append(f"error message does not name the file: {exc}")
        else:
            out.problems.append(f"expected {exp['error']}, but the table was read")
        if exp.get("lenient", True):
            try:
                with dbf.open_table(path, strict=False, **kwargs) as t:
                    table = t.read(include_deleted=True)
                    kinds = {a.kind for a in t.anomalies}
                out.rows = table.num_rows
                if exp["error"] not in kinds:
                    out.problems.append(f"lenient anomalies {kinds} lack {exp['error']}")
            except dbf.DbfError as exc:
                out.problems.append(f"lenient read failed: {exc}")
        return out
    try:
        with dbf.open_table(path, long_names=False, **kwargs) as t:
            table = t.read(include_deleted=True, with_recno=True)
            fields = t.fields
            codec = t.codepage
    except dbf.DbfError as exc:
        out.status = "refused"
        out.error = type(exc).__name__
        out.problems.append(f"unexpected {type(exc).__name__}: {exc}")
        return out
    out.rows = table.num_rows
    rows = table.to_pylist()
    for (recno, column), value in exp.get("values", {}).items():
        got = next((r[column] for r in rows if r["_recno"] == recno), "<no such record>")
        if got != value:
            out.problems.append(f"record {recno} {column}: expected {value!r}, got {got!r}")
    ref_info = entry["dbfread"]
    ref_path = CORPUS / "reference" / (rel + ".jsonl")
    if not ref_info["ok"] or not ref_path.is_file() or exp.get("no_reference"):
        out.status = "read (no reference)"
        return out
    out.status = "match"
    ref_rows = [
        json.loads(line) for line in ref_path.read_text(encoding="utf-8").split("\n") if line
    ]
    ref_recnos = reference_recnos(path)
    if len(ref_recnos) != len(ref_rows):
        out.problems.append(f"reference has {len(ref_rows)} rows, expected {len(ref_recnos)}")
        return out
    by_recno = {r["_recno"]: r for r in rows}
    missing_memo = "memo values null" in " ".join(entry.get("reference_caveats", []))
    ignore = set(exp.get("ignore_fields", ()))
    hex_fields = set(ref_info.get("hex_fields", []))
    dbase4_memo = "dBase IV/7 memo" in " ".join(entry.get("reference_caveats", []))
    ref_encoding = ref_info.get("encoding_used") or "ascii"

    def ref_key(name: str) -> str:
        # the reference decoded field names with its own encoding
        if ref_encoding == "latin-1" and codec:
            return name.encode(codec, errors="replace").decode("latin-1")
        return name

    for recno, ref in zip(ref_recnos, ref_rows, strict=True):
        ours_row = by_recno.get(recno)
        if ours_row is None:
            out.caveats["reference reads a record beyond the header count"] += 1
            if not exp.get("reference_extra_records"):
                out.problems.append(f"reference has record {recno}, we do not")
            continue
        if bool(ref["_deleted"]) != bool(ours_row["_deleted"]):
            out.problems.append(f"record {recno}: deleted flag differs")
        for f in fields:
            name = f.column_name
            if name in ignore:
                continue
            if f.is_memo and missing_memo:
                out.caveats["reference has no memo file"] += 1
                continue
            out.values += 1
            verdict = compare_value(
                f,
                ours_row[name],
                ref.get(ref_key(name)),
                ref_encoding=ref_encoding,
                our_codec=codec,
                hex_field=name in hex_fields,
                dbase4_memo=dbase4_memo,
            )
            if verdict == "MISMATCH":
                out.problems.append(
                    f"record {recno} {name} ({f.type}): ours {ours_row[name]!r} "
                    f"reference {ref.get(ref_key(name))!r}"
                )
            elif verdict:
                out.caveats[verdict] += 1
    return out


def report(outcomes: list[Outcome]) -> str:
    by_status = collections.Counter(o.status for o in outcomes)
    lines = [
        f"tables: {len(outcomes)}",
        *(f"  {status}: {n}" for status, n in sorted(by_status.items())),
        f"values compared with the reference: {sum(o.values for o in outcomes)}",
        "differences explained by reference caveats:",
    ]
    caveats: collections.Counter[str] = collections.Counter()
    for o in outcomes:
        caveats.update(o.caveats)
    lines += [f"  {name}: {n}" for name, n in caveats.most_common()]
    refused = collections.Counter(o.error for o in outcomes if o.status == "refused")
    lines.append("refused (declared errors):")
    lines += [f"  {name}: {n}" for name, n in refused.most_common()]
    bad = [o for o in outcomes if o.problems]
    lines.append(f"tables with unexplained problems: {len(bad)}")
    for o in bad:
        lines.append(f"  {o.file}: {o.problems[:3]}")
    return "\n".join(lines)


if __name__ == "__main__":
    results = [check(e) for e in manifest()["tables"]]
    verbose = "-v" in sys.argv
    if verbose:
        for o in results:
            print(o.file, o.status, o.rows, dict(o.caveats), o.problems[:5])
    print(report(results))
