"""The demo pharmacy's tables, as a Visual FoxPro pharmacy application would define them.

Short DBF file names (``patient.dbf``), long table and field names in the ``pharmacy.dbc``
container (the DBF headers keep the first 10 characters of each field name).
"""

from __future__ import annotations

from dataclasses import dataclass

from rxvault.dbf import FieldSpec

DBC_NAME = "pharmacy.dbc"
MEMO_BLOCK_SIZE = 64  # Visual FoxPro's default SET BLOCKSIZE


@dataclass(frozen=True)
class TableDef:
    name: str  # the table's name in the DBC
    file: str  # its DBF file
    fields: tuple[FieldSpec, ...]

    @property
    def long_names(self) -> list[str]:
        return [f.name for f in self.fields]


PATIENTS = TableDef(
    "patients",
    "patient.dbf",
    (
        FieldSpec("patient_id", "I", autoincrement=True),
        FieldSpec("last_name", "C", 25),
        FieldSpec("first_name", "C", 20),
        FieldSpec("middle_initial", "C", 1),
        FieldSpec("date_of_birth", "D"),
        FieldSpec("sex", "C", 1),
        FieldSpec("address_line1", "C", 40),
        FieldSpec("address_line2", "C", 40, nullable=True),
        FieldSpec("city", "C", 25),
        FieldSpec("state", "C", 2),
        FieldSpec("zip_code", "C", 10),
        FieldSpec("phone", "C", 14),
        FieldSpec("email", "V", 60, nullable=True),
        FieldSpec("insurance_plan", "C", 25, nullable=True),
        FieldSpec("active", "L"),
        FieldSpec("allergies", "M", nullable=True),
        FieldSpec("notes", "M", nullable=True),
        FieldSpec("account_balance", "Y"),
        FieldSpec("created_at", "T"),
        FieldSpec("modified_at", "T", nullable=True),
    ),
)

PRESCRIBERS = TableDef(
    "prescribers",
    "prescrib.dbf",
    (
        FieldSpec("prescriber_id", "I", autoincrement=True),
        FieldSpec("last_name", "C", 25),
        FieldSpec("first_name", "C", 20),
        FieldSpec("credential", "C", 5),
        FieldSpec("npi", "C", 10),
        FieldSpec("dea_number", "C", 9, nullable=True),
        FieldSpec("practice_name", "C", 40),
        FieldSpec("phone", "C", 14),
        FieldSpec("active", "L"),
    ),
)

DRUGS = TableDef(
    "drugs",
    "drug.dbf",
    (
        FieldSpec("drug_id", "I", autoincrement=True),
        FieldSpec("ndc", "C", 13),
        FieldSpec("drug_name", "C", 40),
        FieldSpec("generic_name", "C", 60),
        FieldSpec("strength", "C", 20),
        FieldSpec("dosage_form", "C", 20),
        FieldSpec("dea_schedule", "C", 1, nullable=True),
        FieldSpec("unit_cost", "Y"),
        FieldSpec("active", "L"),
    ),
)

FILLS = TableDef(
    "prescriptions",
    "rxfill.dbf",
    (
        FieldSpec("fill_id", "I", autoincrement=True),
        FieldSpec("rx_number", "N", 7),
        FieldSpec("fill_number", "N", 2),
        FieldSpec("patient_id", "I"),
        FieldSpec("drug_id", "I"),
        FieldSpec("prescriber_id", "I"),
        FieldSpec("date_written", "D"),
        FieldSpec("fill_date", "D"),
        FieldSpec("quantity", "N", 9, 2),
        FieldSpec("days_supply", "N", 3),
        FieldSpec("refills_authorized", "N", 2),
        FieldSpec("refills_remaining", "N", 2),
        FieldSpec("status", "C", 1),
        FieldSpec("price", "Y"),
        FieldSpec("copay", "Y", nullable=True),
        FieldSpec("sig", "M"),
        FieldSpec("pharmacist", "C", 3),
        FieldSpec("entered_at", "T"),
        FieldSpec("picked_up_at", "T", nullable=True),
    ),
)

ALLERGIES = TableDef(
    "allergies",
    "allergy.dbf",
    (
        FieldSpec("allergy_id", "I", autoincrement=True),
        FieldSpec("patient_id", "I"),
        FieldSpec("allergen", "C", 30),
        FieldSpec("reaction", "C", 30, nullable=True),
        FieldSpec("severity", "C", 8),
        FieldSpec("date_noted", "D", nullable=True),
    ),
)

TABLES = (PATIENTS, PRESCRIBERS, DRUGS, FILLS, ALLERGIES)

# Fill status codes
STATUS_PICKED_UP = "P"
STATUS_WAITING = "W"
STATUS_CANCELLED = "C"
STATUS_RETURNED = "R"
