"""What ``rxvault demo`` shows: every table of the pharmacy as rxvault's reader sees it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rxvault.dbf import Field, Table, open_table
from rxvault.demo._schema import DBC_NAME, TABLES


def _flags(f: Field) -> str:
    words = []
    if f.nullable:
        words.append("null")
    if f.binary:
        words.append("binary")
    if f.autoincrement:
        words.append("autoincrement")
    return ", ".join(words)


def _value(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, dt.datetime):
        return f"{v:%Y-%m-%d %H:%M:%S}"
    if isinstance(v, dt.date):
        return f"{v:%Y-%m-%d}"
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    if isinstance(v, str):
        return v if len(v) <= 60 else v[:57] + "..."
    return str(v)


def _describe_table(t: Table, title: str) -> Iterator[str]:
    updated = f", last update {t.last_update:%Y-%m-%d}" if t.last_update else ""
    version = f"{t.version_name} (0x{t.version:02X})"
    yield f"{title}  {t.path.name}  {version}, code page {t.codepage}{updated}"
    yield f"  records    {t.live_count:,} live, {t.deleted_count:,} deleted"
    if t.memo is not None:
        yield (
            f"  memo       {t.memo.path.name}: {t.memo.size:,} bytes, "
            f"block size {t.memo.block_size}, next free block {t.memo.next_free:,}"
        )
    if t.anomalies:
        yield f"  anomalies  {len(t.anomalies)}"
        for a in t.anomalies[:5]:
            yield f"             {a.kind}: {a.message}"
    else:
        yield "  anomalies  none"
    width = max(len(f.long_name or f.name) + len(f.name) + 3 for f in t.fields)
    yield f"  fields     {'name (DBF name)':<{width}}  type  length  dec  flags"
    for f in t.fields:
        label = f"{f.long_name} ({f.name})" if f.long_name else f.name
        yield (
            f"             {label:<{width}}  {f.type:<4}  {f.length:>6}  {f.decimals:>3}  "
            f"{_flags(f)}".rstrip()
        )


def describe_pharmacy(directory: Path, *, samples: int = 3) -> Iterator[str]:
    """Lines describing the demo pharmacy in ``directory``, read with :mod:`rxvault.dbf`.

    Raises :class:`rxvault.dbf.DbfError` when a table cannot be read.
    """
    with open_table(directory / DBC_NAME) as dbc:
        objects = dbc.read(["OBJECTTYPE", "OBJECTNAME"])
    kinds = objects.column("OBJECTTYPE").to_pylist()
    names = objects.column("OBJECTNAME").to_pylist()
    tables = [n for k, n in zip(kinds, names, strict=True) if k == "Table"]
    fields = sum(1 for k in kinds if k == "Field")
    yield (
        f"{DBC_NAME}  Visual FoxPro database container: {len(tables)} tables "
        f"({', '.join(tables)}), {fields} fields with long names"
    )
    for table_def in TABLES:
        yield ""
        with open_table(directory / table_def.file) as t:
            yield from _describe_table(t, table_def.name)
    if samples:
        yield ""
        yield from _samples(directory, samples)


def _samples(directory: Path, count: int) -> Iterator[str]:
    by_file = {t.name: directory / t.file for t in TABLES}
    with open_table(by_file["patients"]) as t:
        patients = t.read()
    with open_table(by_file["prescriptions"]) as t:
        fills = t.read(["patient_id", "fill_date", "drug_id", "quantity", "sig", "status"])
    with open_table(by_file["drugs"]) as t:
        drugs = t.read(["drug_id", "drug_name", "strength"])
    drug_names = {
        d: f"{n} {s}"
        for d, n, s in zip(
            drugs.column("drug_id").to_pylist(),
            drugs.column("drug_name").to_pylist(),
            drugs.column("strength").to_pylist(),
            strict=True,
        )
    }
    chosen = _choose_samples(patients, count)
    yield f"Sample patients ({len(chosen)} of {patients.num_rows:,} live):"
    for row in chosen:
        p = patients.slice(row, 1).to_pylist()[0]
        mine = fills.filter(pc.equal(fills.column("patient_id"), p["patient_id"]))
        mine = mine.sort_by([("fill_date", "descending")])
        name = " ".join(x for x in (p["first_name"], p["middle_initial"], p["last_name"]) if x)
        yield (
            f"  #{p['patient_id']} {name}, {p['sex']}, born {_value(p['date_of_birth'])}, "
            f"{p['city']} {p['state']}"
        )
        yield f"      email {_value(p['email'])}; insurance {_value(p['insurance_plan'])}"
        yield f"      allergies: {_value(p['allergies'])}"
        yield f"      {mine.num_rows} fills" + (":" if mine.num_rows else "")
        for fill in mine.slice(0, 3).to_pylist():
            yield (
                f"        {_value(fill['fill_date'])}  "
                f"{drug_names.get(fill['drug_id'], '?'):<28} qty {_value(fill['quantity']):>7}"
                f"  {fill['status']}  {_value(fill['sig'])}"
            )


def _choose_samples(patients: pa.Table, count: int) -> list[int]:
    """A few patients worth looking at: one with an accented name, one with allergies..."""
    first = patients.column("first_name").to_pylist()
    last = patients.column("last_name").to_pylist()
    allergies = patients.column("allergies").to_pylist()
    emails = patients.column("email").to_pylist()
    wanted = [
        next(
            (i for i, (f, n) in enumerate(zip(first, last, strict=True)) if not (f + n).isascii()),
            None,
        ),
        next((i for i, a in enumerate(allergies) if a and "(" in a), None),
        next((i for i, e in enumerate(emails) if e is None), None),
    ]
    chosen: list[int] = []
    for i in [*wanted, *range(len(first))]:
        if i is not None and i not in chosen:
            chosen.append(i)
        if len(chosen) >= count:
            break
    return sorted(chosen)
