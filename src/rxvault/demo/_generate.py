"""Generate the demo pharmacy: a seeded, realistic Visual FoxPro database.

Everything is drawn from one ``numpy`` generator seeded by ``seed``, so the same seed and size
give byte-identical files. The big table (prescription fills, about ten per patient) is built
with vectorized numpy code and written as Arrow columns, so 100,000 patients (about a million
fills) take well under a minute.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from rxvault.dbf import write_dbc, write_table
from rxvault.demo import _vocab as V
from rxvault.demo._schema import (
    ALLERGIES,
    DBC_NAME,
    DRUGS,
    FILLS,
    MEMO_BLOCK_SIZE,
    PATIENTS,
    PRESCRIBERS,
    STATUS_CANCELLED,
    STATUS_PICKED_UP,
    STATUS_RETURNED,
    STATUS_WAITING,
    TABLES,
    TableDef,
)

AS_OF = dt.date(2026, 11, 30)
"""The demo pharmacy's "today": the last day with fills."""

I64 = npt.NDArray[np.int64]
EPOCH = np.datetime64("1970-01-01", "D")
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class DemoTable:
    """One generated table: its DBC name, file, and record counts."""

    name: str
    path: Path
    records: int
    deleted: int

    @property
    def live(self) -> int:
        return self.records - self.deleted


@dataclass(frozen=True)
class DemoInfo:
    """What :func:`generate` wrote."""

    directory: Path
    dbc: Path
    tables: dict[str, DemoTable]
    patients: int
    seed: int
    as_of: dt.date

    def path(self, table: str) -> Path:
        return self.tables[table].path


def generate(
    dest_dir: str | Path, *, patients: int = 50, seed: int = 1, as_of: dt.date = AS_OF
) -> DemoInfo:
    """Write the demo pharmacy (``pharmacy.dbc`` and its tables) into ``dest_dir``.

    ``patients`` sets the size: prescribers, drugs, fills (about 10 per patient, skewed) and
    allergies follow from it. Existing files of the same names are overwritten.
    """
    if patients < 1:
        raise ValueError("the demo pharmacy needs at least one patient")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_prescribers = max(3, min(5000, patients // 40))
    drugs, drug_form, drug_price, drug_chronic, drug_weight = _drugs(rng)
    prescribers = _prescribers(rng, n_prescribers)
    pats, pat_allergies = _patients(rng, patients, as_of)
    allergies = _allergies(rng, pat_allergies, pats, as_of)
    fills = _fills(
        rng,
        patients=patients,
        prescribers=n_prescribers,
        drug_form=drug_form,
        drug_price=drug_price,
        drug_chronic=drug_chronic,
        drug_weight=drug_weight,
        as_of=as_of,
    )
    dbc = dest / DBC_NAME
    written: dict[str, DemoTable] = {}
    for table_def, (data, deleted) in (
        (PATIENTS, pats),
        (PRESCRIBERS, prescribers),
        (DRUGS, drugs),
        (FILLS, fills),
        (ALLERGIES, allergies),
    ):
        path = dest / table_def.file
        write_table(
            path,
            table_def.fields,
            data,
            codepage="cp1252",
            memo_block_size=MEMO_BLOCK_SIZE,
            dbc=dbc,
            deleted=deleted,
            last_update=as_of,
        )
        written[table_def.name] = DemoTable(
            table_def.name, path, data.num_rows, int(np.count_nonzero(deleted))
        )
    write_dbc(
        dbc,
        {t.name: (dest / t.file, t.long_names) for t in TABLES},
        last_update=as_of,
    )
    return DemoInfo(dest, dbc, written, patients, seed, as_of)


# --------------------------------------------------------------------------------------------
# Arrow helpers
# --------------------------------------------------------------------------------------------


def _dict_column(
    idx: npt.NDArray[np.integer], values: list[str], null: npt.NDArray[np.bool_] | None = None
) -> pa.DictionaryArray:
    indices = pa.array(idx.astype(np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))


def _money(cents: I64, null: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    """An exact decimal128(19, 4) column from amounts in cents."""
    unscaled = np.ascontiguousarray(cents, dtype=np.int64) * 100
    words = np.empty((len(unscaled), 2), dtype="<i8")
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    validity = None
    if null is not None and null.any():
        validity = pa.py_buffer(np.packbits(~null, bitorder="little").tobytes())
    return pa.Array.from_buffers(
        pa.decimal128(19, 4), len(unscaled), [validity, pa.py_buffer(words.tobytes())]
    )


def _dates(days: I64) -> pa.Array:
    return pa.array((EPOCH + days.astype("timedelta64[D]")).astype("datetime64[D]"))


def _timestamps(ms: I64, null: npt.NDArray[np.bool_] | None = None) -> pa.Array:
    return pa.array(ms.astype("datetime64[ms]"), mask=null)


def _day(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in kept.lower() if c.isalnum())


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    area = rng.integers(0, len(V.AREA_CODES), n)
    exchange = rng.integers(200, 999, n)
    line = rng.integers(0, 10000, n)
    return [
        f"({V.AREA_CODES[a]}) {e:03d}-{ln:04d}"
        for a, e, ln in zip(area.tolist(), exchange.tolist(), line.tolist(), strict=True)
    ]


def _deleted(rng: np.random.Generator, n: int, share: float) -> npt.NDArray[np.bool_]:
    """Flags for about ``share`` of the rows (at least one in a table of 20 rows or more)."""
    k = max(round(n * share), 1 if n >= 20 else 0)
    flags = np.zeros(n, dtype=bool)
    flags[rng.choice(n, size=k, replace=False)] = True
    return flags


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _drugs(
    rng: np.random.Generator,
) -> tuple[
    tuple[pa.Table, npt.NDArray[np.bool_]],
    list[str],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.float64],
]:
    rows: dict[str, list[object]] = {f.name: [] for f in DRUGS.fields}
    forms: list[str] = []
    prices: list[float] = []
    chronic: list[bool] = []
    weights: list[float] = []
    labelers = 100 + rng.choice(99_899, size=len(V.DRUGS), replace=False)
    for k, drug in enumerate(V.DRUGS):
        for s, strength in enumerate(drug.strengths):
            product = int(rng.integers(1, 9999))
            package = int(rng.choice([1, 5, 10, 30, 60, 90]))
            rows["drug_id"].append(len(forms) + 1)
            rows["ndc"].append(f"{int(labelers[k]):05d}-{product:04d}-{package:02d}")
            rows["drug_name"].append(drug.name)
            rows["generic_name"].append(drug.generic)
            rows["strength"].append(strength)
            rows["dosage_form"].append(drug.form.upper())
            rows["dea_schedule"].append(drug.schedule)
            price = round(drug.unit_price * (1 + 0.35 * s) * float(rng.uniform(0.9, 1.1)), 4)
            rows["unit_cost"].append(price)
            rows["active"].append(bool(rng.random() > 0.04))
            forms.append(drug.form)
            prices.append(price)
            chronic.append(drug.chronic)
            weights.append(drug.weight / len(drug.strengths) * (1.5 if s == 0 else 1.0))
    n = len(forms)
    table = pa.table(
        {
            "drug_id": pa.array(rows["drug_id"], pa.int32()),
            "ndc": pa.array(rows["ndc"], pa.string()),
            "drug_name": pa.array(rows["drug_name"], pa.string()),
            "generic_name": pa.array(rows["generic_name"], pa.string()),
            "strength": pa.array(rows["strength"], pa.string()),
            "dosage_form": pa.array(rows["dosage_form"], pa.string()),
            "dea_schedule": pa.array(rows["dea_schedule"], pa.string()),
            "unit_cost": _money_4(np.array(prices)),
            "active": pa.array(rows["active"], pa.bool_()),
        }
    )
    w = np.array(weights)
    return (
        (table, np.zeros(n, dtype=bool)),
        forms,
        np.array(prices),
        np.array(chronic),
        w / w.sum(),
    )


def _money_4(values: npt.NDArray[np.float64]) -> pa.Array:
    """Exact decimal128(19, 4) from floats rounded to 4 places (unit costs)."""
    unscaled = np.round(values * 10_000).astype(np.int64)
    words = np.empty((len(unscaled), 2), dtype="<i8")
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(
        pa.decimal128(19, 4), len(unscaled), [None, pa.py_buffer(words.tobytes())]
    )


def _npi(base: int) -> str:
    """A 10-digit NPI with a valid Luhn check digit (prefix 80840, as the standard says)."""
    digits = f"80840{base:09d}"[:14]
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    check = (10 - total % 10) % 10
    return f"{base:09d}{check}"


def _dea(last_name: str, serial: int) -> str:
    """A DEA number: two letters and seven digits with the DEA check digit."""
    digits = [int(c) for c in f"{serial:06d}"]
    check = (digits[0] + digits[2] + digits[4] + 2 * (digits[1] + digits[3] + digits[5])) % 10
    initial = _ascii(last_name)[:1].upper() or "X"
    return f"B{initial}{serial:06d}{check}"


def _prescribers(rng: np.random.Generator, n: int) -> tuple[pa.Table, npt.NDArray[np.bool_]]:
    last = rng.integers(0, len(V.LAST_NAMES), n)
    female = rng.random(n) < 0.5
    first_f = rng.integers(0, len(V.FIRST_NAMES_F), n)
    first_m = rng.integers(0, len(V.FIRST_NAMES_M), n)
    cred = rng.integers(0, len(V.CREDENTIALS), n)
    bases = 100_000_000 + rng.choice(99_999_999, size=n, replace=False)
    serials = 100_000 + rng.choice(899_999, size=n, replace=False)
    practice_a = rng.integers(0, len(V.PRACTICE_WORDS), n)
    practice_b = rng.integers(0, len(V.PRACTICE_KINDS), n)
    last_names = [V.LAST_NAMES[i] for i in last.tolist()]
    creds = [V.CREDENTIALS[i] for i in cred.tolist()]
    deas = [
        None if c in ("NP", "PA-C") and k % 3 == 0 else _dea(ln, int(s))
        for k, (ln, c, s) in enumerate(zip(last_names, creds, serials.tolist(), strict=True))
    ]
    table = pa.table(
        {
            "prescriber_id": pa.array(np.arange(1, n + 1, dtype=np.int32)),
            "last_name": pa.array(last_names),
            "first_name": pa.array(
                [
                    V.FIRST_NAMES_F[a] if f else V.FIRST_NAMES_M[b]
                    for f, a, b in zip(
                        female.tolist(), first_f.tolist(), first_m.tolist(), strict=True
                    )
                ]
            ),
            "credential": pa.array(creds),
            "npi": pa.array([_npi(int(b)) for b in bases.tolist()]),
            "dea_number": pa.array(deas, pa.string()),
            "practice_name": pa.array(
                [
                    f"{V.PRACTICE_WORDS[a]} {V.PRACTICE_KINDS[b]}"
                    for a, b in zip(practice_a.tolist(), practice_b.tolist(), strict=True)
                ]
            ),
            "phone": pa.array(_phones(rng, n)),
            "active": pa.array(rng.random(n) > 0.05),
        }
    )
    return table, _deleted(rng, n, 0.01)


def _patients(
    rng: np.random.Generator, n: int, as_of: dt.date
) -> tuple[tuple[pa.Table, npt.NDArray[np.bool_]], list[list[tuple[int, int]]]]:
    today = _day(as_of)
    female = rng.random(n) < 0.54
    sex = np.where(female, 0, 1)
    sex[rng.random(n) < 0.005] = 2
    first_f = rng.integers(0, len(V.FIRST_NAMES_F), n)
    first_m = rng.integers(0, len(V.FIRST_NAMES_M), n)
    first_names = [
        V.FIRST_NAMES_F[a] if f else V.FIRST_NAMES_M[b]
        for f, a, b in zip(female.tolist(), first_f.tolist(), first_m.tolist(), strict=True)
    ]
    last_idx = rng.integers(0, len(V.LAST_NAMES), n)
    last_names = [V.LAST_NAMES[i] for i in last_idx.tolist()]
    mi_idx = rng.integers(0, len(V.MIDDLE_INITIALS), n)
    mi_blank = rng.random(n) < 0.35
    ages = np.clip(rng.normal(52, 20, n), 0.2, 99)
    dob = today - (ages * 365.25).astype(np.int64)
    house = rng.integers(1, 9999, n)
    street = rng.integers(0, len(V.STREETS), n)
    stype = rng.integers(0, len(V.STREET_TYPES), n)
    addr1 = [
        f"{h} {V.STREETS[s]} {V.STREET_TYPES[t]}"
        for h, s, t in zip(house.tolist(), street.tolist(), stype.tolist(), strict=True)
    ]
    has_unit = rng.random(n) < 0.18
    unit_idx = rng.integers(0, len(V.UNITS), n)
    city_idx = rng.integers(0, len(V.CITIES), n)
    zip_tail = rng.integers(0, 100, n)
    zip4 = rng.integers(0, 10000, n)
    zip_plus4 = rng.random(n) < 0.3
    zips = [
        f"{V.CITIES[c][2]}{t:02d}" + (f"-{z4:04d}" if p else "")
        for c, t, z4, p in zip(
            city_idx.tolist(), zip_tail.tolist(), zip4.tolist(), zip_plus4.tolist(), strict=True
        )
    ]
    has_email = rng.random(n) < 0.68
    email_num = rng.integers(1, 100, n)
    domain = rng.integers(0, len(V.EMAIL_DOMAINS), n)
    emails = [
        f"{_ascii(fn)}.{_ascii(ln)}{k}@{V.EMAIL_DOMAINS[d]}" if e else None
        for fn, ln, k, d, e in zip(
            first_names,
            last_names,
            email_num.tolist(),
            domain.tolist(),
            has_email.tolist(),
            strict=True,
        )
    ]
    plan_idx = rng.integers(0, len(V.INSURANCE_PLANS), n)
    cash = rng.random(n) < 0.12
    active = rng.random(n) > 0.07
    # allergies: NULL (never asked), "NKDA", or a list; the same ones go to the allergy table
    allergy_state = rng.choice(3, size=n, p=[0.25, 0.45, 0.30])
    n_allergies = rng.integers(1, 4, n)
    pat_allergies: list[list[tuple[int, int]]] = []
    allergy_memo: list[str | None] = []
    for k in range(n):
        state = int(allergy_state[k])
        if state == 0:
            allergy_memo.append(None)
            pat_allergies.append([])
        elif state == 1:
            allergy_memo.append("NKDA (no known drug allergies)")
            pat_allergies.append([])
        else:
            picks = rng.choice(len(V.ALLERGENS), size=int(n_allergies[k]), replace=False)
            reactions = rng.integers(0, len(V.REACTIONS), len(picks))
            pairs = list(zip(picks.tolist(), reactions.tolist(), strict=True))
            pat_allergies.append(pairs)
            allergy_memo.append(
                "; ".join(f"{V.ALLERGENS[a][0]} ({V.REACTIONS[r].lower()})" for a, r in pairs)
            )
    has_note = rng.random(n) < 0.15
    note_idx = rng.integers(0, len(V.PATIENT_NOTES), n)
    notes = [
        V.PATIENT_NOTES[i] if h else None
        for h, i in zip(has_note.tolist(), note_idx.tolist(), strict=True)
    ]
    balance_cents = np.where(rng.random(n) < 0.1, rng.integers(0, 25_000, n), 0)
    created_day = np.maximum(dob, today - rng.integers(30, 365 * 12, n))
    created_ms = created_day * MS_PER_DAY + rng.integers(8 * 3600, 19 * 3600, n) * 1000
    modified = rng.random(n) < 0.6
    modified_ms = (
        np.minimum(today, created_day + rng.integers(1, 2000, n)) * MS_PER_DAY
        + rng.integers(8 * 3600, 19 * 3600, n) * 1000
        - (rng.random(n) < 0.5)  # Visual FoxPro often stores a time 1 ms short
    )
    sexes = ["F", "M", "U"]
    table = pa.table(
        {
            "patient_id": pa.array(np.arange(1, n + 1, dtype=np.int32)),
            "last_name": pa.array(last_names),
            "first_name": pa.array(first_names),
            "middle_initial": _dict_column(mi_idx, V.MIDDLE_INITIALS, mi_blank),
            "date_of_birth": _dates(dob),
            "sex": _dict_column(sex, sexes),
            "address_line1": pa.array(addr1),
            "address_line2": _dict_column(unit_idx, V.UNITS, ~has_unit),
            "city": _dict_column(city_idx, [c[0] for c in V.CITIES]),
            "state": _dict_column(city_idx, [c[1] for c in V.CITIES]),
            "zip_code": pa.array(zips),
            "phone": pa.array(_phones(rng, n)),
            "email": pa.array(emails, pa.string()),
            "insurance_plan": _dict_column(plan_idx, V.INSURANCE_PLANS, cash),
            "active": pa.array(active),
            "allergies": pa.array(allergy_memo, pa.string()),
            "notes": pa.array(notes, pa.string()),
            "account_balance": _money(balance_cents),
            "created_at": _timestamps(created_ms),
            "modified_at": _timestamps(modified_ms, ~modified),
        }
    )
    return (table, _deleted(rng, n, 0.005)), pat_allergies


def _allergies(
    rng: np.random.Generator,
    pat_allergies: list[list[tuple[int, int]]],
    patients: tuple[pa.Table, npt.NDArray[np.bool_]],
    as_of: dt.date,
) -> tuple[pa.Table, npt.NDArray[np.bool_]]:
    today = _day(as_of)
    pid: list[int] = []
    allergen: list[int] = []
    reaction: list[int] = []
    for k, pairs in enumerate(pat_allergies):
        for a, r in pairs:
            pid.append(k + 1)
            allergen.append(a)
            reaction.append(r)
    n = len(pid)
    reaction_null = rng.random(n) < 0.2
    noted_null = rng.random(n) < 0.3
    noted = today - rng.integers(10, 365 * 10, n)
    severity = np.array([V.ALLERGENS[a][1] for a in allergen], dtype=object)
    sev_values = ["MILD", "MODERATE", "SEVERE"]
    sev_idx = np.array([sev_values.index(s) for s in severity.tolist()], dtype=np.int64)
    table = pa.table(
        {
            "allergy_id": pa.array(np.arange(1, n + 1, dtype=np.int32)),
            "patient_id": pa.array(np.array(pid, dtype=np.int32)),
            "allergen": _dict_column(
                np.array(allergen, dtype=np.int64), [a for a, _ in V.ALLERGENS]
            ),
            "reaction": _dict_column(
                np.array(reaction, dtype=np.int64), V.REACTIONS, reaction_null
            ),
            "severity": _dict_column(sev_idx, sev_values),
            "date_noted": pa.array(
                (EPOCH + noted.astype("timedelta64[D]")).astype("datetime64[D]"), mask=noted_null
            ),
        }
    )
    return table, _deleted(rng, n, 0.02)


def _fills(
    rng: np.random.Generator,
    *,
    patients: int,
    prescribers: int,
    drug_form: list[str],
    drug_price: npt.NDArray[np.float64],
    drug_chronic: npt.NDArray[np.bool_],
    drug_weight: npt.NDArray[np.float64],
    as_of: dt.date,
) -> tuple[pa.Table, npt.NDArray[np.bool_]]:
    today = _day(as_of)
    # Prescriptions per patient: skewed (many have one or two, a few have dozens).
    per_patient = np.floor(rng.gamma(0.8, 4.7, patients)).astype(np.int64)
    n_rx = int(per_patient.sum())
    rx_patient = np.repeat(np.arange(1, patients + 1, dtype=np.int64), per_patient)
    rx_drug = rng.choice(len(drug_form), size=n_rx, p=drug_weight)
    rx_prescriber = rng.integers(1, prescribers + 1, n_rx)
    chronic = drug_chronic[rx_drug]
    written = today - rng.integers(0, 730, n_rx)
    days_supply = np.where(
        chronic,
        rng.choice([30, 30, 30, 90], size=n_rx),
        rng.choice([5, 7, 10, 14], size=n_rx),
    )
    refills_auth = np.where(
        chronic, rng.choice([1, 2, 3, 5, 11], size=n_rx, p=[0.1, 0.15, 0.25, 0.3, 0.2]), 0
    )
    refills_auth = np.where(
        chronic & (days_supply == 90), np.minimum(refills_auth, 3), refills_auth
    )
    # sig and quantity follow from the drug's dosage form
    sig_texts: list[str] = []
    sig_units: list[float] = []
    sig_of_form: dict[str, list[int]] = {}
    for form, options in V.SIGS.items():
        for text, units in options:
            sig_of_form.setdefault(form, []).append(len(sig_texts))
            sig_texts.append(text)
            sig_units.append(units)
    forms = np.array(drug_form, dtype=object)[rx_drug]
    rx_sig = np.zeros(n_rx, dtype=np.int64)
    short_course = ("as needed", "until gone", "for 10 days")
    for form, options_idx in sig_of_form.items():
        for is_chronic in (True, False):
            rows = np.nonzero((forms == form) & (chronic == is_chronic))[0]
            fitting = [
                k for k in options_idx if any(w in sig_texts[k] for w in short_course) != is_chronic
            ] or options_idx
            if rows.size:
                rx_sig[rows] = rng.choice(np.array(fitting), size=rows.size)
    units_per_day = np.array(sig_units)[rx_sig]
    package = np.array([V.PACKAGE_QUANTITY.get(f, 0.0) for f in drug_form])[rx_drug]
    quantity = np.where(units_per_day > 0, units_per_day * days_supply, package)
    quantity_cents = np.round(quantity * 100).astype(np.int64)
    # Each prescription is filled once plus some of its refills, one days' supply apart.
    fills = 1 + rng.binomial(refills_auth, 0.75)
    n_rows = int(fills.sum())
    rx_of_row = np.repeat(np.arange(n_rx), fills)
    starts = np.cumsum(fills) - fills
    fill_no = np.arange(n_rows) - np.repeat(starts, fills)
    gaps = rng.integers(-3, 8, n_rows)
    fill_day = written[rx_of_row] + fill_no * (days_supply[rx_of_row] + 0) + np.maximum(gaps, 0)
    fill_day += (rng.integers(0, 3, n_rows) * (fill_no == 0)).astype(np.int64)
    keep = fill_day <= today
    rx_of_row, fill_no, fill_day = rx_of_row[keep], fill_no[keep], fill_day[keep]
    entered_s = rng.integers(8 * 3600, 20 * 3600, fill_day.size)
    # Physical order: as entered, day by day
    order = np.lexsort((entered_s, fill_day))
    rx_of_row, fill_no, fill_day, entered_s = (
        rx_of_row[order],
        fill_no[order],
        fill_day[order],
        entered_s[order],
    )
    n = fill_day.size
    # rx numbers are given in the order prescriptions were first filled
    first_seen = np.full(n_rx, -1, dtype=np.int64)
    first_rows = np.nonzero(fill_no == 0)[0]
    first_seen[rx_of_row[first_rows]] = np.arange(first_rows.size)
    missing = first_seen < 0
    first_seen[missing] = first_rows.size + np.arange(int(missing.sum()))
    rx_number = 1_000_000 + first_seen[rx_of_row]
    age = today - fill_day
    status_idx = np.zeros(n, dtype=np.int64)  # picked up
    status_idx[(age <= 7) & (rng.random(n) < 0.6)] = 1  # waiting in the bin
    status_idx[rng.random(n) < 0.01] = 2  # cancelled
    status_idx[(age > 14) & (rng.random(n) < 0.006)] = 3  # returned to stock
    statuses = [STATUS_PICKED_UP, STATUS_WAITING, STATUS_CANCELLED, STATUS_RETURNED]
    drug = rx_drug[rx_of_row]
    qty_cents = quantity_cents[rx_of_row]
    price_cents = np.round(drug_price[drug] * qty_cents + 1050 + rng.integers(0, 300, n)).astype(
        np.int64
    )
    insured = rng.random(n) > 0.12
    copay_cents = np.minimum(
        price_cents, rng.choice([0, 500, 1000, 1500, 2500, 4000], size=n)
    ).astype(np.int64)
    entered_ms = fill_day * MS_PER_DAY + entered_s * 1000 - (rng.random(n) < 0.5)
    picked = status_idx == 0
    picked_day = np.minimum(fill_day + rng.integers(0, 5, n), today)
    picked_ms = picked_day * MS_PER_DAY + rng.integers(9 * 3600, 20 * 3600, n) * 1000
    picked_ms = np.maximum(picked_ms, entered_ms + 1_800_000)  # not before it was filled
    refills_left = refills_auth[rx_of_row] - fill_no
    table = pa.table(
        {
            "fill_id": pa.array(np.arange(1, n + 1, dtype=np.int32)),
            "rx_number": pa.array(rx_number),
            "fill_number": pa.array(fill_no),
            "patient_id": pa.array(rx_patient[rx_of_row].astype(np.int32)),
            "drug_id": pa.array((drug + 1).astype(np.int32)),
            "prescriber_id": pa.array(rx_prescriber[rx_of_row].astype(np.int32)),
            "date_written": _dates(written[rx_of_row]),
            "fill_date": _dates(fill_day),
            "quantity": _money(qty_cents).cast(pa.decimal128(11, 2)),
            "days_supply": pa.array(days_supply[rx_of_row]),
            "refills_authorized": pa.array(refills_auth[rx_of_row]),
            "refills_remaining": pa.array(refills_left),
            "status": _dict_column(status_idx, statuses),
            "price": _money(price_cents),
            "copay": _money(copay_cents, ~insured),
            "sig": _dict_column(rx_sig[rx_of_row], sig_texts),
            "pharmacist": _dict_column(rng.integers(0, len(V.PHARMACISTS), n), V.PHARMACISTS),
            "entered_at": _timestamps(entered_ms),
            "picked_up_at": _timestamps(picked_ms, ~picked),
        }
    )
    return table, _deleted(rng, n, 0.003)


def table_def(name: str) -> TableDef:
    """The definition of a demo table by its DBC name."""
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)
