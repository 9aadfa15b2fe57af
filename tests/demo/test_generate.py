"""The demo pharmacy generator, checked with an independent reader (dbfread) and raw bytes."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import dbfread
import pytest

from rxvault.demo import DBC_NAME, TABLES, generate


def _count(path: Path) -> int:
    return int(struct.unpack_from("<I", path.read_bytes(), 4)[0])


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _dbc_objects(directory: Path, tmp: Path) -> list[dict[str, object]]:
    # dbfread does not look for a .dct memo file; show it the container as a plain table
    (tmp / "container.dbf").write_bytes((directory / DBC_NAME).read_bytes())
    (tmp / "container.fpt").write_bytes((directory / "pharmacy.dct").read_bytes())
    return [dict(r) for r in dbfread.DBF(str(tmp / "container.dbf"))]


@pytest.fixture(scope="module")
def pharmacy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pharmacy")
    generate(directory, patients=400, seed=7)
    return directory


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", patients=60, seed=3)
    b = generate(tmp_path / "b", patients=60, seed=3)
    c = generate(tmp_path / "c", patients=60, seed=4)
    assert _files(a.directory) == _files(b.directory)
    assert _files(a.directory)["patient.dbf"] != _files(c.directory)["patient.dbf"]


def test_tables_files_and_counts(pharmacy: Path, tmp_path: Path) -> None:
    info = generate(tmp_path, patients=400, seed=7)
    assert set(info.tables) == {"patients", "prescribers", "drugs", "prescriptions", "allergies"}
    names = {p.name for p in tmp_path.iterdir()}
    assert {"pharmacy.dbc", "pharmacy.dct", "patient.dbf", "patient.fpt", "rxfill.dbf"} <= names
    assert {"rxfill.fpt", "drug.dbf", "prescrib.dbf", "allergy.dbf"} <= names
    for table in info.tables.values():
        assert _count(table.path) == table.records
    assert info.tables["patients"].records == 400
    fills = info.tables["prescriptions"].records
    assert 6 * 400 <= fills <= 14 * 400  # about ten fills per patient
    assert info.tables["prescriptions"].deleted + info.tables["patients"].deleted > 0


def test_dbc_lists_tables_and_long_field_names(pharmacy: Path, tmp_path: Path) -> None:
    objects = _dbc_objects(pharmacy, tmp_path)
    tables = {o["OBJECTNAME"]: o["OBJECTID"] for o in objects if o["OBJECTTYPE"] == "Table"}
    assert set(tables) == {t.name for t in TABLES}
    for t in TABLES:
        fields = [
            o["OBJECTNAME"]
            for o in objects
            if o["OBJECTTYPE"] == "Field" and o["PARENTID"] == tables[t.name]
        ]
        assert fields == t.long_names
    # the DBF header keeps the first 10 characters of a long name, and points at the DBC
    patient = pharmacy / "patient.dbf"
    fields = dbfread.DBF(str(patient)).field_names
    assert "DATE_OF_BI" in fields
    raw = patient.read_bytes()
    header_length = struct.unpack_from("<H", raw, 8)[0]
    assert raw[header_length - 263 : header_length].rstrip(b"\0") == b"pharmacy.dbc"


def test_accents_nulls_and_memos(pharmacy: Path) -> None:
    patients = list(dbfread.DBF(str(pharmacy / "patient.dbf"), encoding="cp1252"))
    names = [p["FIRST_NAME"] + " " + p["LAST_NAME"] for p in patients]
    assert any(not n.isascii() for n in names)
    assert all(n.encode("cp1252") for n in names)
    # NULL bits set in some records (email, address line 2, insurance, notes...)
    assert sum(p["_NullFlags"] != b"\0\0" for p in patients) > 100
    allergies = [p["ALLERGIES"] for p in patients]
    assert any(a and "(" in a for a in allergies)
    assert any(a and a.startswith("NKDA") for a in allergies)


def test_fills_reference_real_rows(pharmacy: Path) -> None:
    drugs = list(dbfread.DBF(str(pharmacy / "drug.dbf")))
    prescribers = list(dbfread.DBF(str(pharmacy / "prescrib.dbf")))
    fills = list(dbfread.DBF(str(pharmacy / "rxfill.dbf")))
    assert all(re.fullmatch(r"\d{5}-\d{4}-\d{2}", d["NDC"]) for d in drugs)
    drug_ids = {d["DRUG_ID"] for d in drugs}
    assert {f["DRUG_ID"] for f in fills} <= drug_ids
    assert {f["PRESCRIBER"] for f in fills} <= {p["PRESCRIBER"] for p in prescribers}
    assert {f["PATIENT_ID"] for f in fills} <= set(range(1, 401))
    for f in fills:
        assert f["FILL_DATE"] >= f["DATE_WRITT"]
        assert f["REFILLS_RE"] == f["REFILLS_AU"] - f["FILL_NUMBE"]
        assert f["SIG"].split()[0] in {"Take", "Inhale", "Use", "Inject", "Apply", "Instill"}
        assert f["PRICE"] > 0
    dates = [f["FILL_DATE"] for f in fills]
    assert dates == sorted(dates)  # appended day by day


def test_tiny_pharmacy(tmp_path: Path) -> None:
    info = generate(tmp_path, patients=5, seed=1)
    assert info.tables["patients"].records == 5
    assert len(list(dbfread.DBF(str(info.path("prescriptions"))))) > 0


def test_rejects_empty_pharmacy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one patient"):
        generate(tmp_path, patients=0)
