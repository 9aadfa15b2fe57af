"""``next_day``: a day of in-place changes, checked with rxvault's reader and raw bytes."""

from __future__ import annotations

import datetime as dt
import shutil
import struct
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from rxvault.dbf import open_table
from rxvault.demo import AS_OF, generate, next_day


def _read(path: Path, **kwargs: object) -> pa.Table:
    with open_table(path) as t:
        return t.read(**kwargs)  # type: ignore[arg-type]


def _record(path: Path, recno: int) -> bytes:
    raw = path.read_bytes()
    header_length, record_length = struct.unpack_from("<HH", raw, 8)
    start = header_length + (recno - 1) * record_length
    return raw[start : start + record_length]


def _by_patient(fills: pa.Table) -> dict[int, set[tuple[object, ...]]]:
    out: dict[int, set[tuple[object, ...]]] = defaultdict(set)
    for row in fills.to_pylist():
        out[row["patient_id"]].add(tuple(sorted(row.items())))
    return out


@pytest.fixture
def pharmacy(tmp_path: Path) -> Path:
    generate(tmp_path / "p", patients=300, seed=2)
    return tmp_path / "p"


def test_counts_and_dates(pharmacy: Path) -> None:
    fills_path = pharmacy / "rxfill.dbf"
    with open_table(fills_path) as t:
        records, live = t.record_count, t.live_count
    changes = next_day(pharmacy, seed=1)
    assert changes.day == AS_OF + dt.timedelta(days=1)
    with open_table(fills_path) as t:
        assert t.last_update == changes.day
        assert t.record_count == records + changes.new_fills  # appended, header updated
        assert t.live_count == live + changes.new_fills - len(changes.deleted["prescriptions"])
        assert t.anomalies == []
        new = t.read().to_pylist()
    by_id = {r["fill_id"]: r for r in new}
    assert changes.new_fills >= 2
    assert changes.new_prescriptions >= 1
    for fill_id in changes.new_fill_ids:
        row = by_id[fill_id]
        assert row["fill_date"] == changes.day
        assert row["status"] == "W"
        assert row["sig"]
        assert row["patient_id"] in changes.patient_ids
    for fill_id in changes.picked_up_fill_ids:
        if fill_id in by_id:  # unless deleted the same day
            assert by_id[fill_id]["status"] == "P"
            assert by_id[fill_id]["picked_up_at"].date() == changes.day
    second = next_day(pharmacy, seed=1)
    assert second.day == changes.day + dt.timedelta(days=1)


def test_changed_patients_are_reported(pharmacy: Path) -> None:
    before_fills = _by_patient(_read(pharmacy / "rxfill.dbf"))
    before_patients = {r["patient_id"]: r for r in _read(pharmacy / "patient.dbf").to_pylist()}
    changes = next_day(pharmacy, seed=4)
    after_fills = _by_patient(_read(pharmacy / "rxfill.dbf"))
    after_patients = {r["patient_id"]: r for r in _read(pharmacy / "patient.dbf").to_pylist()}
    changed = {p for p in set(before_fills) | set(after_fills) if before_fills[p] != after_fills[p]}
    changed |= {
        p
        for p in set(before_patients) | set(after_patients)
        if before_patients.get(p) != after_patients.get(p)
    }
    assert changed
    assert changed <= set(changes.patient_ids)
    assert set(changes.edited_patient_ids) <= changed
    for p in changes.deleted_patient_ids:
        assert p not in after_patients


def test_memo_edits_in_place_keep_the_record(pharmacy: Path, tmp_path: Path) -> None:
    before = tmp_path / "before.dbf"
    shutil.copy(pharmacy / "patient.dbf", before)
    memo_size = (pharmacy / "patient.fpt").stat().st_size
    changes = next_day(pharmacy, seed=3)
    assert changes.memos_in_place or changes.memos_moved
    after = {r["_recno"]: r for r in _read(pharmacy / "patient.dbf", with_recno=True).to_pylist()}
    for table, recno, field in changes.memos_in_place:
        assert table == "patients"
        assert _record(before, recno) == _record(pharmacy / "patient.dbf", recno)
        assert after[recno][field]
    for _table, recno, field in changes.memos_moved:
        assert _record(before, recno) != _record(pharmacy / "patient.dbf", recno)
        assert after[recno][field]
    if changes.memos_moved:
        assert (pharmacy / "patient.fpt").stat().st_size > memo_size


def test_same_seed_same_day(tmp_path: Path) -> None:
    generate(tmp_path / "a", patients=80, seed=6)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    first = next_day(tmp_path / "a", seed=9)
    second = next_day(tmp_path / "b", seed=9)
    assert first == second
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_pack_removes_deleted_records_and_keeps_the_rest(pharmacy: Path) -> None:
    next_day(pharmacy, seed=5)
    live_before = {name: _read(pharmacy / f"{name}.dbf") for name in ("rxfill", "patient")}
    memo_before = (pharmacy / "rxfill.fpt").stat().st_size
    changes = next_day(pharmacy, seed=6, pack=True)
    assert set(changes.packed) == {"prescriptions", "patients", "allergies"}
    assert changes.packed["prescriptions"] > 0
    with open_table(pharmacy / "rxfill.dbf") as t:
        assert t.deleted_count == 0
        assert t.record_count == t.live_count
        fills = t.read()
    assert (pharmacy / "rxfill.fpt").stat().st_size < memo_before + 64 * changes.new_fills
    old_ids = set(live_before["rxfill"].column("fill_id").to_pylist())
    new_ids = set(fills.column("fill_id").to_pylist())
    assert new_ids == (old_ids | set(changes.new_fill_ids)) - set(changes.deleted_fill_ids)
    with open_table(pharmacy / "patient.dbf") as t:
        assert t.deleted_count == 0
