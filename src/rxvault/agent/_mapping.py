"""The mapping: which tables and fields of the pharmacy's database are published, and how.

A TOML file the pharmacy edits (the demo pharmacy's is ``mappings/demo.toml``)::

    format = 1

    [tables.patients]
    file = "patient.dbf"             # relative to the source directory
    # codepage = "cp1252"            # overrides the code page in the table's header

    [patient]
    table = "patients"
    key = "patient_id"               # the pharmacy's patient id (hashed into the handle)
    filter = [{ field = "active", equals = true }]

    [patient.fields]                 # the allow-list: only these fields are published
    first_name = { label = "First name", role = "given_name" }

    [sections.prescriptions]         # rows of other tables that belong to the patient
    table = "prescriptions"
    label = "Prescriptions"
    patient_key = "patient_id"
    order_by = ["fill_date desc", "rx_number"]

    [sections.prescriptions.joins.drug]   # fields of drug.dbf become "drug.<field>"
    table = "drugs"
    key = "drug_id"                  # field of the section's table
    on = "drug_id"                   # field of the joined table

    [sections.prescriptions.fields]
    "drug.drug_name" = { label = "Drug", role = "drug_name" }

Every mistake is a :class:`MappingError` whose message starts with ``file:line:``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxvault._cli_errors import UserError

__all__ = [
    "KINDS",
    "ROLES",
    "FieldMap",
    "Filter",
    "Join",
    "Mapping",
    "MappingError",
    "Section",
    "TableSource",
    "load_mapping",
    "parse_mapping",
]

FORMAT = 1

#: Value kinds of the published document (from the DBF field types).
KINDS = ("text", "integer", "decimal", "date", "datetime", "boolean")

_TEXT = frozenset({"text"})
_INT = frozenset({"integer"})
_NUM = frozenset({"integer", "decimal"})
_DATE = frozenset({"date", "datetime"})
_ID = frozenset({"text", "integer"})

#: Semantic roles the portal understands (refill dates, FHIR export), with the kinds they take.
ROLES: dict[str, frozenset[str]] = {
    # the patient
    "patient_id": _ID,
    "given_name": _TEXT,
    "middle_name": _TEXT,
    "family_name": _TEXT,
    "birth_date": _DATE,
    "sex": _TEXT,
    "address_line": _TEXT,
    "city": _TEXT,
    "state": _TEXT,
    "postal_code": _TEXT,
    "phone": _TEXT,
    "email": _TEXT,
    "insurance": _TEXT,
    "balance": _NUM,
    # prescriptions and fills
    "rx_number": _ID,
    "fill_number": _INT,
    "drug_name": _TEXT,
    "generic_name": _TEXT,
    "strength": _TEXT,
    "dosage_form": _TEXT,
    "ndc": _TEXT,
    "written_date": _DATE,
    "fill_date": _DATE,
    "quantity": _NUM,
    "days_supply": _INT,
    "refills_authorized": _INT,
    "refills_left": _INT,
    "prescriber": _TEXT,
    "prescriber_given_name": _TEXT,
    "prescriber_npi": _TEXT,
    "prescriber_phone": _TEXT,
    "status": _TEXT,
    "price": _NUM,
    "copay": _NUM,
    "directions": _TEXT,
    "pharmacist": _TEXT,
    "picked_up_at": _DATE,
    # allergies
    "allergen": _TEXT,
    "reaction": _TEXT,
    "severity": _TEXT,
    "noted_date": _DATE,
    # anything else worth showing
    "note": frozenset(KINDS),
}

_IDENT = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_ORDER = re.compile(r"\A\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<dir>asc|desc)?\s*\Z", re.I)


class MappingError(UserError):
    """A mistake in the mapping file; the message names the file and line."""


@dataclass(frozen=True)
class TableSource:
    name: str
    file: str
    codepage: str | None
    line: int


@dataclass(frozen=True)
class Filter:
    """Keep a row only when ``field`` equals / differs from / is in / is not in ``values``."""

    field: str
    op: str  # "in" or "not_in"
    values: tuple[Any, ...]
    line: int


@dataclass(frozen=True)
class FieldMap:
    """A published field: ``source`` is a field of the table, or ``join.field``."""

    source: str
    label: str
    role: str | None
    values: dict[str, str] | None
    line: int

    @property
    def join(self) -> str | None:
        return self.source.split(".", 1)[0] if "." in self.source else None

    @property
    def column(self) -> str:
        return self.source.split(".", 1)[1] if "." in self.source else self.source


@dataclass(frozen=True)
class Join:
    name: str
    table: str
    key: str
    on: str
    line: int


@dataclass(frozen=True)
class Section:
    """Rows of a table that belong to a patient (prescriptions, allergies …)."""

    name: str
    table: str
    label: str
    patient_key: str
    fields: tuple[FieldMap, ...]
    joins: tuple[Join, ...]
    filters: tuple[Filter, ...]
    order_by: tuple[tuple[str, bool], ...]  # (source, descending)
    line: int


@dataclass(frozen=True)
class PatientPart:
    table: str
    key: str
    label: str
    fields: tuple[FieldMap, ...]
    filters: tuple[Filter, ...]
    line: int
    key_line: int


@dataclass(frozen=True)
class Mapping:
    path: Path
    tables: dict[str, TableSource]
    patient: PatientPart
    sections: tuple[Section, ...]
    text_digest: str = field(repr=False)

    def line_of(self, *keys: str) -> int:
        """The line of a key path (for errors found later, against the data)."""
        return _Locator(self.path.read_text(encoding="utf-8")).line(tuple(keys))

    def line_of_column(self, table: str, column: str) -> int:
        """The first line that uses ``column`` of ``table`` (for a missing-field error)."""
        candidates: list[tuple[str, ...]] = []
        p = self.patient
        if p.table == table:
            if column == p.key:
                candidates.append(("patient", "key"))
            candidates += [("patient", "fields", column), ("patient", "filter")]
        for s in self.sections:
            base = ("sections", s.name)
            if s.table == table:
                if column == s.patient_key:
                    candidates.append((*base, "patient_key"))
                candidates.append((*base, "fields", column))
                candidates += [(*base, "joins", j.name, "key") for j in s.joins if j.key == column]
                candidates += [(*base, "filter"), (*base, "order_by")]
            for j in s.joins:
                if j.table == table:
                    if column == j.on:
                        candidates.append((*base, "joins", j.name, "on"))
                    candidates.append((*base, "fields", f"{j.name}.{column}"))
        locate = _Locator(self.path.read_text(encoding="utf-8"))
        for keys in candidates:
            if keys in locate.lines:
                return locate.lines[keys]
        return self.tables[table].line

    def error(self, line: int, message: str, hint: str | None = None) -> MappingError:
        return MappingError(f"{self.path}:{line}: {message}", hint=hint)

    def columns(self, table: str) -> list[str]:
        """Every field of ``table`` that the mapping reads (published, keys, joins, filters)."""
        wanted: list[str] = []

        def add(name: str) -> None:
            if name not in wanted:
                wanted.append(name)

        p = self.patient
        if p.table == table:
            add(p.key)
            for f in p.fields:
                add(f.source)
            for flt in p.filters:
                add(flt.field)
        for s in self.sections:
            if s.table == table:
                add(s.patient_key)
                for f in s.fields:
                    if f.join is None:
                        add(f.source)
                for flt in s.filters:
                    add(flt.field)
                for j in s.joins:
                    add(j.key)
                for src, _ in s.order_by:
                    if "." not in src:
                        add(src)
            for j in s.joins:
                if j.table == table:
                    add(j.on)
                    for f in s.fields:
                        if f.join == j.name:
                            add(f.column)
                    for src, _ in s.order_by:
                        if src.startswith(j.name + "."):
                            add(src.split(".", 1)[1])
        return wanted


class _Locator:
    """Finds the line of a key in TOML text: enough of TOML for a mapping's error messages."""

    _KEY = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=""")

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        current: tuple[str, ...] = ()
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                inner = line.strip("[]").split("#", 1)[0].strip().rstrip("]").strip()
                current = _split_key(inner)
                self.lines.setdefault(current, number)
                continue
            match = self._KEY.match(line)
            if match:
                self.lines.setdefault((*current, *_split_key(match.group(1))), number)

    def line(self, keys: tuple[str, ...]) -> int:
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return 1


def _split_key(text: str) -> tuple[str, ...]:
    parts: list[str] = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', text):
        parts.append(next(g for g in match.groups() if g is not None))
    return tuple(parts)


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.locate = _Locator(text)

    def fail(self, keys: tuple[str, ...], message: str, hint: str | None = None) -> MappingError:
        return MappingError(f"{self.path}:{self.locate.line(keys)}: {message}", hint=hint)

    def table(self, raw: Any, keys: tuple[str, ...], allowed: set[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(keys, f"{'.'.join(keys)} must be a table")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise self.fail(
                (*keys, unknown[0]),
                f"unknown key {unknown[0]!r} in [{'.'.join(keys)}]",
                hint=f"allowed here: {', '.join(sorted(allowed))}",
            )
        return raw

    def string(self, raw: dict[str, Any], keys: tuple[str, ...], name: str) -> str:
        if name not in raw:
            raise self.fail(keys, f'[{".".join(keys)}] needs {name} = "…"')
        value = raw[name]
        if not isinstance(value, str) or not value.strip():
            raise self.fail((*keys, name), f"{name} must be a non-empty string")
        return value.strip()

    def filters(self, raw: Any, keys: tuple[str, ...]) -> tuple[Filter, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(keys, "filter must be a list of { field = …, equals = … } tables")
        line = self.locate.line(keys)
        out = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("field"), str):
                raise self.fail(keys, 'each filter needs field = "…" and one condition')
            ops = [k for k in ("equals", "not_equals", "in", "not_in") if k in item]
            extra = set(item) - {"field", "equals", "not_equals", "in", "not_in"}
            if len(ops) != 1 or extra:
                raise self.fail(
                    keys,
                    f"filter on {item['field']!r} needs exactly one of equals, not_equals, in, "
                    "not_in",
                )
            op = ops[0]
            value = item[op]
            if op in ("in", "not_in"):
                if not isinstance(value, list) or not value:
                    raise self.fail(keys, f"filter {op} needs a non-empty list")
                values = tuple(value)
            else:
                values = (value,)
            for v in values:
                if not isinstance(v, str | int | bool) or isinstance(v, float):
                    raise self.fail(keys, "filter values must be strings, integers or booleans")
            out.append(
                Filter(item["field"], "in" if op in ("equals", "in") else "not_in", values, line)
            )
        return tuple(out)

    def fields(
        self, raw: Any, keys: tuple[str, ...], joins: dict[str, Join]
    ) -> tuple[FieldMap, ...]:
        if not isinstance(raw, dict) or not raw:
            raise self.fail(
                keys,
                f"[{'.'.join(keys)}] must list at least one published field",
            )
        out = []
        for source, raw_spec in raw.items():
            fkeys = (*keys, source)
            spec = self.table(
                {"label": raw_spec} if isinstance(raw_spec, str) else raw_spec,
                fkeys,
                {"label", "role", "values"},
            )
            parts = source.split(".")
            if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
                raise self.fail(fkeys, f"{source!r} is not a field name (or join.field)")
            if len(parts) == 2 and parts[0] not in joins:
                raise self.fail(
                    fkeys,
                    f"field {source!r} names join {parts[0]!r}, which this section does not define",
                    hint=f"known joins: {', '.join(sorted(joins)) or '(none)'}",
                )
            label = spec.get("label", source)
            if not isinstance(label, str) or not label.strip():
                raise self.fail(fkeys, "label must be a non-empty string")
            role = spec.get("role")
            if role is not None and role not in ROLES:
                raise self.fail(
                    fkeys,
                    f"unknown role {role!r}",
                    hint="roles: " + ", ".join(sorted(ROLES)),
                )
            values = spec.get("values")
            if values is not None and (
                not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
            ):
                raise self.fail(fkeys, "values must map stored codes to labels (strings)")
            out.append(FieldMap(source, label.strip(), role, values, self.locate.line(fkeys)))
        return tuple(out)


def parse_mapping(text: str, path: Path) -> Mapping:
    """Parse and check a mapping's text (against itself; the source is checked later)."""
    reader = _Reader(path, text)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    reader.table(doc, (), {"format", "tables", "patient", "sections"})
    if doc.get("format") != FORMAT:
        raise reader.fail(("format",), f"format must be {FORMAT}")
    tables_raw = reader.table(doc.get("tables"), ("tables",), set(doc.get("tables") or {}))
    if not tables_raw:
        raise reader.fail(("tables",), "[tables] must name at least one table")
    tables: dict[str, TableSource] = {}
    for name, raw_spec in tables_raw.items():
        keys = ("tables", name)
        spec = reader.table(raw_spec, keys, {"file", "codepage"})
        file = reader.string(spec, keys, "file")
        if Path(file).is_absolute() or ".." in Path(file).parts:
            raise reader.fail((*keys, "file"), "file must be relative to the source directory")
        codepage = spec.get("codepage")
        if codepage is not None and not isinstance(codepage, str):
            raise reader.fail((*keys, "codepage"), "codepage must be a string such as cp1252")
        tables[name] = TableSource(name, file, codepage, reader.locate.line(keys))

    def known_table(keys: tuple[str, ...], name: str) -> str:
        if name not in tables:
            raise reader.fail(
                keys,
                f"unknown table {name!r}",
                hint=f"tables defined under [tables]: {', '.join(tables)}",
            )
        return name

    pkeys = ("patient",)
    praw = reader.table(doc.get("patient"), pkeys, {"table", "key", "label", "filter", "fields"})
    patient = PatientPart(
        table=known_table((*pkeys, "table"), reader.string(praw, pkeys, "table")),
        key=reader.string(praw, pkeys, "key"),
        label=str(praw.get("label", "Patient")),
        fields=reader.fields(praw.get("fields"), (*pkeys, "fields"), {}),
        filters=reader.filters(praw.get("filter"), (*pkeys, "filter")),
        line=reader.locate.line(pkeys),
        key_line=reader.locate.line((*pkeys, "key")),
    )
    sections: list[Section] = []
    sections_raw = doc.get("sections", {})
    if not isinstance(sections_raw, dict):
        raise reader.fail(("sections",), "sections must be a table of sections")
    for name, section_raw in sections_raw.items():
        skeys = ("sections", name)
        if not _IDENT.match(name):
            raise reader.fail(skeys, f"section name {name!r} must be a plain identifier")
        sraw = reader.table(
            section_raw,
            skeys,
            {"table", "label", "patient_key", "joins", "fields", "filter", "order_by"},
        )
        joins: dict[str, Join] = {}
        jraw = sraw.get("joins", {})
        if not isinstance(jraw, dict):
            raise reader.fail((*skeys, "joins"), "joins must be a table of joins")
        for jname, join_raw in jraw.items():
            jkeys = (*skeys, "joins", jname)
            if not _IDENT.match(jname):
                raise reader.fail(jkeys, f"join name {jname!r} must be a plain identifier")
            spec = reader.table(join_raw, jkeys, {"table", "key", "on"})
            joins[jname] = Join(
                jname,
                known_table((*jkeys, "table"), reader.string(spec, jkeys, "table")),
                reader.string(spec, jkeys, "key"),
                reader.string(spec, jkeys, "on"),
                reader.locate.line(jkeys),
            )
        order: list[tuple[str, bool]] = []
        oraw = sraw.get("order_by", [])
        if not isinstance(oraw, list) or not all(isinstance(o, str) for o in oraw):
            raise reader.fail((*skeys, "order_by"), "order_by must be a list of strings")
        for item in oraw:
            m = _ORDER.match(item)
            if not m:
                raise reader.fail(
                    (*skeys, "order_by"), f"order_by item {item!r}: expected 'field [asc|desc]'"
                )
            src = m.group("field")
            if "." in src and src.split(".", 1)[0] not in joins:
                raise reader.fail((*skeys, "order_by"), f"order_by {src!r} names an unknown join")
            order.append((src, (m.group("dir") or "asc").lower() == "desc"))
        sections.append(
            Section(
                name=name,
                table=known_table((*skeys, "table"), reader.string(sraw, skeys, "table")),
                label=str(sraw.get("label", name.replace("_", " ").capitalize())),
                patient_key=reader.string(sraw, skeys, "patient_key"),
                fields=reader.fields(sraw.get("fields"), (*skeys, "fields"), joins),
                joins=tuple(joins.values()),
                filters=reader.filters(sraw.get("filter"), (*skeys, "filter")),
                order_by=tuple(order),
                line=reader.locate.line(skeys),
            )
        )
    digest = hashlib.sha256(
        json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False).encode()
    ).hexdigest()
    return Mapping(path, tables, patient, tuple(sections), digest)


def load_mapping(path: Path) -> Mapping:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(
            f"{path}: mapping file not found",
            hint="create one from the demo: rxvault agent init writes mapping.toml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read the mapping ({exc})") from None
    return parse_mapping(text, path)
