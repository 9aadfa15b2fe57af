"""A day in the life of the demo pharmacy, made the way Visual FoxPro makes changes.

:func:`next_day` moves the pharmacy one day forward, in place, through
:class:`rxvault.dbf.TableEditor`: new fills are appended (the header's record count is updated
after the records are written), filled prescriptions are picked up, some patients' details
change, memos are rewritten in their own blocks when the new text fits (else in new blocks at
the end of the memo file), some records are flagged deleted, and optionally the tables are
packed. It returns what changed, so tests can check what an agent later finds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rxvault.dbf import TableEditor, open_table
from rxvault.demo import _vocab as V
from rxvault.demo._schema import (
    ALLERGIES,
    FILLS,
    PATIENTS,
    STATUS_PICKED_UP,
    STATUS_WAITING,
    TableDef,
)


@dataclass
class DayChanges:
    """What one :func:`next_day` changed (record numbers are those before any pack)."""

    day: dt.date
    new_fill_ids: list[int] = field(default_factory=list)
    new_prescriptions: int = 0
    picked_up_fill_ids: list[int] = field(default_factory=list)
    edited_patient_ids: list[int] = field(default_factory=list)
    memos_in_place: list[tuple[str, int, str]] = field(default_factory=list)
    memos_moved: list[tuple[str, int, str]] = field(default_factory=list)
    new_allergy_ids: list[int] = field(default_factory=list)
    deleted: dict[str, list[int]] = field(default_factory=dict)
    deleted_fill_ids: list[int] = field(default_factory=list)
    deleted_patient_ids: list[int] = field(default_factory=list)
    packed: dict[str, int] = field(default_factory=dict)
    patient_ids: list[int] = field(default_factory=list)
    """Every patient whose records changed (sorted)."""

    @property
    def new_fills(self) -> int:
        return len(self.new_fill_ids)


@dataclass
class _Day:
    directory: Path
    day: dt.date
    rng: np.random.Generator
    changes: DayChanges
    touched: set[int]


def _last_update(path: Path) -> dt.date:
    with open_table(path) as t:
        if t.last_update is None:
            raise ValueError(f"{path.name}: the header has no last-update date")
        return t.last_update


def _editor(directory: Path, table: TableDef, day: dt.date) -> TableEditor:
    return TableEditor(directory / table.file, long_names=table.long_names, today=day)


def _ms(day: dt.date, seconds: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=seconds)


def next_day(dest_dir: str | Path, *, seed: int, pack: bool = False) -> DayChanges:
    """Apply one realistic day of changes to the demo pharmacy in ``dest_dir``.

    The day is the one after the fills table's last update. ``seed`` (with that day) decides
    every choice, so the same pharmacy and seed give the same changes.
    """
    directory = Path(dest_dir)
    day = _last_update(directory / FILLS.file) + dt.timedelta(days=1)
    rng = np.random.default_rng([seed, day.toordinal()])
    changes = DayChanges(day)
    touched: set[int] = set()

    with open_table(directory / PATIENTS.file) as t:
        patients = t.read(["patient_id", "allergies", "notes", "email", "active"], with_recno=True)
    with open_table(directory / FILLS.file) as t:
        fills = t.read(with_recno=True)

    ctx = _Day(directory, day, rng, changes, touched)
    _fill_day(ctx, fills, patients)
    _patient_day(ctx, patients)

    if pack:
        for table in (FILLS, PATIENTS, ALLERGIES):
            with _editor(directory, table, day) as ed:
                changes.packed[table.name] = ed.pack()
    changes.patient_ids = sorted(touched)
    return changes


def _fill_day(ctx: _Day, fills: pa.Table, patients: pa.Table) -> None:
    directory, day, rng, changes, touched = (
        ctx.directory,
        ctx.day,
        ctx.rng,
        ctx.changes,
        ctx.touched,
    )
    n_live = fills.num_rows
    per_day = max(2, round(n_live / 700))
    # Refills: the latest fill of each prescription with refills left, due about now.
    rx_all = fills.column("rx_number").to_numpy()
    order = np.lexsort((fills.column("fill_number").to_numpy(), rx_all))
    rx = rx_all[order]
    last = np.ones(len(rx), dtype=bool)
    last[:-1] = rx[:-1] != rx[1:]
    latest = fills.take(pa.array(order[last]))
    fill_days = latest.column("fill_date").cast(pa.int32()).to_numpy()
    supply = latest.column("days_supply").to_numpy()
    today = (day - dt.date(1970, 1, 1)).days
    eligible = np.nonzero(
        (latest.column("refills_remaining").to_numpy() > 0)
        & (fill_days + supply - 7 <= today)
        & (pc.equal(latest.column("status"), STATUS_PICKED_UP).to_numpy(zero_copy_only=False))
    )[0]
    n_refills = min(len(eligible), max(1, int(per_day * 0.7)))
    picks: list[int] = (
        sorted(rng.choice(eligible, size=n_refills, replace=False).tolist()) if n_refills else []
    )
    new_rows: list[dict[str, object]] = []
    for k in picks:
        row = latest.slice(int(k), 1).to_pylist()[0]
        touched.add(int(row["patient_id"]))
        new_rows.append(
            {
                **{c: row[c] for c in ("rx_number", "patient_id", "drug_id", "prescriber_id")},
                **{c: row[c] for c in ("date_written", "quantity", "days_supply", "sig")},
                "fill_number": row["fill_number"] + 1,
                "refills_authorized": row["refills_authorized"],
                "refills_remaining": row["refills_remaining"] - 1,
                "price": row["price"],
                "copay": row["copay"],
            }
        )
    # New prescriptions: a template prescription for another (active) patient.
    max_rx = int(pc.max(fills.column("rx_number")).as_py() or 999_999)
    active_ids = patients.filter(patients.column("active")).column("patient_id").to_numpy()
    n_new_rx = max(1, per_day - n_refills) if len(active_ids) else 0
    templates: list[int] = rng.integers(0, n_live, n_new_rx).tolist() if n_live else []
    for i, k in enumerate(templates):
        row = fills.slice(int(k), 1).to_pylist()[0]
        auth = row["refills_authorized"]
        patient_id = int(rng.choice(active_ids))
        touched.add(patient_id)
        new_rows.append(
            {
                "rx_number": max_rx + 1 + i,
                "fill_number": 0,
                "patient_id": patient_id,
                "drug_id": row["drug_id"],
                "prescriber_id": row["prescriber_id"],
                "date_written": day,
                "quantity": row["quantity"],
                "days_supply": row["days_supply"],
                "refills_authorized": auth,
                "refills_remaining": auth,
                "price": row["price"],
                "copay": row["copay"],
                "sig": row["sig"],
            }
        )
    changes.new_prescriptions = n_new_rx
    seconds = np.sort(rng.integers(8 * 3600, 20 * 3600, len(new_rows)))
    for row, sec in zip(new_rows, seconds.tolist(), strict=True):
        row.update(
            {
                "fill_date": day,
                "status": STATUS_WAITING,
                "pharmacist": V.PHARMACISTS[int(rng.integers(0, len(V.PHARMACISTS)))],
                "entered_at": _ms(day, sec),
                "picked_up_at": None,
            }
        )
    with _editor(directory, FILLS, day) as ed:
        first_id = _next_autoinc(directory / FILLS.file)
        recnos = ed.append(new_rows)
        changes.new_fill_ids = list(range(first_id, first_id + len(recnos)))
        # Pickups of fills waiting in the bin
        waiting = fills.filter(pc.equal(fills.column("status"), STATUS_WAITING))
        n_pick = min(waiting.num_rows, max(1, per_day // 2))
        for k in sorted(rng.choice(waiting.num_rows, size=n_pick, replace=False).tolist()):
            w = waiting.slice(k, 1).to_pylist()[0]
            sec = int(rng.integers(9 * 3600, 20 * 3600))
            ed.update(w["_recno"], {"status": STATUS_PICKED_UP, "picked_up_at": _ms(day, sec)})
            changes.picked_up_fill_ids.append(int(w["fill_id"]))
            touched.add(int(w["patient_id"]))
        # Cancelled: a few fills are deleted (VFP's DELETE: the flag byte becomes '*')
        n_del = min(fills.num_rows, max(1, per_day // 10))
        deleted = sorted(rng.choice(fills.num_rows, size=n_del, replace=False).tolist())
        for k in deleted:
            f = fills.slice(k, 1).to_pylist()[0]
            ed.delete(f["_recno"])
            changes.deleted.setdefault(FILLS.name, []).append(int(f["_recno"]))
            changes.deleted_fill_ids.append(int(f["fill_id"]))
            touched.add(int(f["patient_id"]))


def _next_autoinc(path: Path) -> int:
    """The next value of the table's autoincrement field (from its descriptor)."""
    raw = path.read_bytes()[:4096]
    pos = 32
    while raw[pos] != 0x0D:
        if raw[pos + 18] & 0x0C == 0x0C:
            return int.from_bytes(raw[pos + 19 : pos + 23], "little")
        pos += 32
    raise ValueError(f"{path.name} has no autoincrement field")


def _patient_day(ctx: _Day, patients: pa.Table) -> None:
    directory, day, rng, changes, touched = (
        ctx.directory,
        ctx.day,
        ctx.rng,
        ctx.changes,
        ctx.touched,
    )
    n = patients.num_rows
    if n == 0:
        return
    per_day = max(2, n // 400)
    rows = sorted(rng.choice(n, size=min(n, per_day * 2), replace=False).tolist())
    edits, memo_edits = rows[:per_day], rows[per_day:]
    new_allergies: list[dict[str, object]] = []
    with _editor(directory, PATIENTS, day) as ed:
        for k in edits:
            p = patients.slice(k, 1).to_pylist()[0]
            sec = int(rng.integers(9 * 3600, 20 * 3600))
            what = int(rng.integers(0, 3))
            values: dict[str, object] = {"modified_at": _ms(day, sec)}
            if what == 0:
                area = V.AREA_CODES[int(rng.integers(0, len(V.AREA_CODES)))]
                values["phone"] = (
                    f"({area}) {int(rng.integers(200, 999)):03d}-{int(rng.integers(0, 10000)):04d}"
                )
            elif what == 1:
                house = int(rng.integers(1, 9999))
                street = V.STREETS[int(rng.integers(0, len(V.STREETS)))]
                values["address_line1"] = f"{house} {street} Ave"
                values["address_line2"] = None
            else:
                values["email"] = None if p["email"] else f"patient{p['patient_id']}@example.com"
            ed.update(p["_recno"], values)
            changes.edited_patient_ids.append(int(p["patient_id"]))
            touched.add(int(p["patient_id"]))
        for k in memo_edits:
            p = patients.slice(k, 1).to_pylist()[0]
            recno = int(p["_recno"])
            if p["allergies"] and p["allergies"].startswith("NKDA"):
                field_name, text = "allergies", f"NKDA, confirmed {day:%m/%d/%Y}"
            elif p["notes"] is not None:
                field_name = "notes"
                text = (
                    p["notes"] + f"\r\n{day:%m/%d/%Y}: " + V.PATIENT_NOTES[int(rng.integers(0, 10))]
                )
            else:
                allergen = int(rng.integers(0, len(V.ALLERGENS)))
                reaction = int(rng.integers(0, len(V.REACTIONS)))
                entry = f"{V.ALLERGENS[allergen][0]} ({V.REACTIONS[reaction].lower()})"
                old = p["allergies"]
                field_name = "allergies"
                text = f"{old}; {entry}" if old and not old.startswith("NKDA") else entry
                new_allergies.append(
                    {
                        "patient_id": p["patient_id"],
                        "allergen": V.ALLERGENS[allergen][0],
                        "reaction": V.REACTIONS[reaction],
                        "severity": V.ALLERGENS[allergen][1],
                        "date_noted": day,
                    }
                )
            before = ed.memo_pointer(recno, field_name)
            ed.update(recno, {field_name: text})
            after = ed.memo_pointer(recno, field_name)
            target = changes.memos_in_place if before and before == after else changes.memos_moved
            target.append((PATIENTS.name, recno, field_name))
            touched.add(int(p["patient_id"]))
        if rng.random() < 0.5 and n > 20:
            k = int(rng.integers(0, n))
            p = patients.slice(k, 1).to_pylist()[0]
            ed.delete(int(p["_recno"]))  # a duplicate record merged into another
            changes.deleted.setdefault(PATIENTS.name, []).append(int(p["_recno"]))
            changes.deleted_patient_ids.append(int(p["patient_id"]))
            touched.add(int(p["patient_id"]))
    if new_allergies:
        first_id = _next_autoinc(directory / ALLERGIES.file)
        with _editor(directory, ALLERGIES, day) as ed:
            ed.append(new_allergies)
        changes.new_allergy_ids = list(range(first_id, first_id + len(new_allergies)))
