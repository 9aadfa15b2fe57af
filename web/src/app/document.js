/**
 * The published document (rxvault.agent, "rxvault.document/1"), read into what the screens use:
 *
 *     {"format": "rxvault.document/1", "pharmacy": {"name"},
 *      "patient": {"label", "fields": [FIELD], "values": {id: value}},
 *      "sections": [{"id", "label", "fields": [FIELD], "rows": [{id: value}]}]}
 *     FIELD = {"id", "label", "role" | null, "type"}
 *
 * The semantic roles (drug_name, fill_date, days_supply, refills_left, allergen ...) say which
 * section holds prescriptions and which allergies, and drive refill dates and the FHIR export.
 */

import { parseJson } from "../crypto/index.js";

export const DOCUMENT_FORMAT = "rxvault.document/1";

export class DocumentError extends Error {
  constructor(message) {
    super(message);
    this.name = "DocumentError";
  }
}

function checkFields(fields, where) {
  if (!Array.isArray(fields)) throw new DocumentError(`${where}: fields are missing`);
  for (const f of fields)
    if (!f || typeof f.id !== "string" || typeof f.label !== "string") throw new DocumentError(`${where}: a field has no id or label`);
  return fields;
}

export class Section {
  constructor(raw) {
    this.id = String(raw.id ?? "");
    this.label = String(raw.label ?? this.id);
    this.fields = checkFields(raw.fields, `section ${this.id}`);
    if (!Array.isArray(raw.rows)) throw new DocumentError(`section ${this.id}: rows are missing`);
    this.rows = raw.rows;
    this.byRole = new Map();
    for (const f of this.fields) if (f.role && !this.byRole.has(f.role)) this.byRole.set(f.role, f.id);
  }

  has(role) {
    return this.byRole.has(role);
  }

  /** The value of the first field with `role` in `row` (undefined when the mapping has none). */
  value(row, role) {
    const id = this.byRole.get(role);
    return id === undefined ? undefined : row[id];
  }
}

export class PatientDocument {
  constructor(raw) {
    if (!raw || typeof raw !== "object" || raw.format !== DOCUMENT_FORMAT)
      throw new DocumentError(`this portal reads documents of format ${DOCUMENT_FORMAT}`);
    this.pharmacyName = String(raw.pharmacy?.name ?? "your pharmacy");
    const patient = raw.patient ?? {};
    this.patient = new Section({ id: "patient", label: patient.label ?? "Patient", fields: patient.fields, rows: [patient.values ?? {}] });
    this.sections = (raw.sections ?? []).map((s) => new Section(s));
    this.prescriptions = this.sections.find((s) => s.has("drug_name") || s.has("fill_date")) ?? null;
    this.allergies = this.sections.find((s) => s.has("allergen")) ?? null;
  }

  patientValue(role) {
    return this.patient.value(this.patient.rows[0], role);
  }

  /** Every patient value with that role (address lines come in several fields). */
  patientValues(role) {
    const row = this.patient.rows[0];
    return this.patient.fields.filter((f) => f.role === role).map((f) => row[f.id]).filter((v) => v !== null && v !== undefined && v !== "");
  }

  get patientName() {
    const parts = ["given_name", "middle_name", "family_name"].map((r) => this.patientValue(r)).filter((v) => typeof v === "string" && v.trim());
    return parts.join(" ").trim();
  }
}

/** Parse the decrypted bytes (strict JSON) into a PatientDocument. */
export function readDocument(bytes) {
  let raw;
  try {
    raw = parseJson(bytes);
  } catch (exc) {
    throw new DocumentError(`the records are not readable: ${exc.message}`);
  }
  return new PatientDocument(raw);
}

/** A cell's text: null and undefined are blank; booleans say Yes/No. */
export function cellText(value) {
  if (value === null || value === undefined) return "";
  if (value === true) return "Yes";
  if (value === false) return "No";
  return String(value);
}
