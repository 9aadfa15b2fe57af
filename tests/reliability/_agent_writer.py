"""A pharmacy application writing its tables the way Visual FoxPro does, for harness 8.

``python _agent_writer.py DIRECTORY LOG SECONDS SEED COLUMNS [PAUSE [IDLE]]`` changes
``patient.dbf`` and ``rxfill.dbf`` (and their memo files) in place for SECONDS, in bursts (after
each change, another at once with probability 0.7, else a rest of up to IDLE seconds, default
0.3): appends patients and fills, edits
fills in place, rewrites memos in place, deletes fills (never a patient). Each change goes
through :class:`rxvault.dbf.TableEditor` (memo blocks first, then the record, then the header's
count and date), with a pause of up to PAUSE seconds (default 0.002) before the header is
written, so a reader can catch a record without its count.

After every change (a *committed state*) the writer, the only one writing, reads the changed
table back (the columns the agent reads, COLUMNS: a JSON object table file -> column names) and
appends a line to LOG: the :func:`table_digest` of each of the two tables in that state. The
same function of the tables an agent's read accepted is then comparable. The process stops early
when the file LOG + ".stop" exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from rxvault.dbf import TableEditor, open_table
from rxvault.demo._schema import FILLS, PATIENTS

TABLES = {"patient": PATIENTS, "rxfill": FILLS}


def table_digest(data: pa.Table) -> str:
    """A digest of a table's live records as read (column names aside, order kept)."""
    values = [data.column(i).to_pylist() for i in range(data.num_columns)]
    text = json.dumps(values, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PausingEditor(TableEditor):
    """VFP's order with a gap: data on disk (flushed), a pause, then the header."""

    pause = 0.002
    rng = random.Random(0)

    def _write_header(self) -> None:
        self._fh.flush()
        if self.rng.random() < 0.7:
            time.sleep(self.rng.uniform(0, self.pause))
        super()._write_header()


def read_columns(path: Path, columns: list[str]) -> pa.Table:
    """The live records of ``columns`` (case-insensitive, short or long names), as the agent's
    reader selects them."""
    with open_table(path, strict=True) as t:
        available: dict[str, str] = {}
        for f in t.fields:
            for spelled in (f.name, f.long_name):
                if spelled:
                    available.setdefault(spelled.lower(), f.long_name or f.name)
        return t.read(columns=[available[c.lower()] for c in columns])


def _rows(path: Path) -> list[dict[str, Any]]:
    with open_table(path) as t:
        return list(t.read(with_recno=True).to_pylist())


def main() -> None:
    directory, log_path = Path(sys.argv[1]), Path(sys.argv[2])
    seconds, seed = float(sys.argv[3]), int(sys.argv[4])
    columns: dict[str, list[str]] = json.loads(sys.argv[5])
    if len(sys.argv) > 6:
        PausingEditor.pause = float(sys.argv[6])
    idle = float(sys.argv[7]) if len(sys.argv) > 7 else 0.3
    rng = random.Random(seed)
    PausingEditor.rng = random.Random(seed + 1)
    stop = log_path.with_name(log_path.name + ".stop")

    def digest(table: str) -> str:
        name = f"{table}.dbf"
        return table_digest(read_columns(directory / name, columns[name]))

    current = {t: digest(t) for t in TABLES}
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
    log.write(json.dumps(current) + "\n")
    log.flush()
    patients = _rows(directory / "patient.dbf")
    fills = _rows(directory / "rxfill.dbf")
    next_patient = max(int(p["patient_id"]) for p in patients) + 1
    today = dt.date.today()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and not stop.exists():
        n += 1
        op = rng.random()
        if op < 0.15:
            table = "patient"
            template = dict(rng.choice(patients))
            template.pop("_recno")
            template.update(patient_id=next_patient, active=True, last_name=f"NEW{next_patient}")
            next_patient += 1
            with PausingEditor(directory / "patient.dbf", long_names=PATIENTS.long_names) as ed:
                (recno,) = ed.append([template])
            patients.append({**template, "_recno": recno})
        elif op < 0.35:
            table = "rxfill"
            template = dict(rng.choice(fills))
            template.pop("_recno")
            template.pop("fill_id", None)  # autoincrement
            template["patient_id"] = rng.choice(patients)["patient_id"]
            template["fill_date"] = today
            with PausingEditor(directory / "rxfill.dbf", long_names=FILLS.long_names) as ed:
                (recno,) = ed.append([template])
            fills.append({**template, "_recno": recno})
        elif op < 0.6:
            table = "rxfill"
            fill = rng.choice(fills)
            values = {"quantity": rng.randint(1, 180), "status": rng.choice("PWCR")}
            with PausingEditor(directory / "rxfill.dbf", long_names=FILLS.long_names) as ed:
                ed.update(fill["_recno"], values)
            fill.update(values)
        elif op < 0.8:
            table = "rxfill"  # a memo rewritten in place: same length, the row bytes unchanged
            fill = rng.choice([f for f in fills if f.get("sig")] or fills)
            old = fill.get("sig") or "Take one daily."
            text = "".join(rng.choice("ABCDEFGHIJ") for _ in old[:8]) + old[8:]
            with PausingEditor(directory / "rxfill.dbf", long_names=FILLS.long_names) as ed:
                ed.update(fill["_recno"], {"sig": text})
            fill["sig"] = text
        elif op < 0.9:
            table = "patient"
            p = rng.choice(patients)
            text = (p.get("allergies") or "NKDA")[:20] + f" ({n})"
            with PausingEditor(directory / "patient.dbf", long_names=PATIENTS.long_names) as ed:
                ed.update(p["_recno"], {"allergies": text})
            p["allergies"] = text
        else:
            table = "rxfill"
            if len(fills) < 10:
                continue
            fill = fills.pop(rng.randrange(len(fills)))
            with PausingEditor(directory / "rxfill.dbf", long_names=FILLS.long_names) as ed:
                ed.delete(fill["_recno"])
        current[table] = digest(table)
        log.write(json.dumps(current) + "\n")
        log.flush()
        if rng.random() >= 0.7:
            time.sleep(rng.uniform(0, idle))
    log.close()


if __name__ == "__main__":
    main()
