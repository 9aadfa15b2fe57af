/**
 * FHIR R4 export: a Bundle (type "collection") with the Patient, one Medication per drug, one
 * MedicationRequest per prescription (Rx number), one MedicationDispense per fill and one
 * AllergyIntolerance per allergy, built from the mapping's semantic roles.
 */

const NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc";

function present(v) {
  return v !== null && v !== undefined && v !== "";
}

function fhirDate(value) {
  if (typeof value !== "string") return undefined;
  const m = /^\d{4}-\d{2}-\d{2}/.exec(value);
  return m ? m[0] : undefined;
}

function decimal(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  return undefined;
}

function integer(value) {
  const d = decimal(value);
  return d === undefined ? undefined : Math.trunc(d);
}

function clean(obj) {
  if (Array.isArray(obj)) return obj.map(clean).filter((v) => v !== undefined);
  if (obj && typeof obj === "object") {
    const out = {};
    for (const [k, v] of Object.entries(obj)) {
      const c = clean(v);
      if (c === undefined) continue;
      if (Array.isArray(c) && c.length === 0) continue;
      if (c && typeof c === "object" && !Array.isArray(c) && Object.keys(c).length === 0) continue;
      out[k] = c;
    }
    return out;
  }
  return obj === null || obj === "" ? undefined : obj;
}

function safeId(text) {
  return String(text).replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 60) || "x";
}

function gender(value) {
  const v = String(value ?? "").toLowerCase();
  if (v.startsWith("f")) return "female";
  if (v.startsWith("m")) return "male";
  if (v.startsWith("o")) return "other";
  return v ? "unknown" : undefined;
}

function dispenseStatus(value) {
  const v = String(value ?? "").toLowerCase();
  if (!v) return "completed";
  if (/cancel|void/.test(v)) return "cancelled";
  if (/return/.test(v)) return "declined";
  if (/ready|wait|process|progress/.test(v)) return "in-progress";
  if (/hold/.test(v)) return "on-hold";
  return "completed";
}

function severity(value) {
  const v = String(value ?? "").toLowerCase();
  if (/severe|high/.test(v)) return "severe";
  if (/moderate|medium/.test(v)) return "moderate";
  if (/mild|low/.test(v)) return "mild";
  return undefined;
}

export function toFhirBundle(doc, { asOf }) {
  const entries = [];
  const add = (resource) => {
    entries.push({ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource });
    return entries[entries.length - 1].fullUrl;
  };
  const given = [doc.patientValue("given_name"), doc.patientValue("middle_name")].filter(present);
  const address = {
    line: doc.patientValues("address_line").map(String),
    city: doc.patientValue("city"),
    state: doc.patientValue("state"),
    postalCode: doc.patientValue("postal_code"),
  };
  const patientRef = add(
    clean({
      resourceType: "Patient",
      id: "patient",
      name: [{ family: doc.patientValue("family_name"), given, text: doc.patientName || undefined }],
      birthDate: fhirDate(doc.patientValue("birth_date")),
      gender: gender(doc.patientValue("sex")),
      telecom: [
        present(doc.patientValue("phone")) ? { system: "phone", value: String(doc.patientValue("phone")) } : undefined,
        present(doc.patientValue("email")) ? { system: "email", value: String(doc.patientValue("email")) } : undefined,
      ],
      address: [address],
    }),
  );
  const rx = doc.prescriptions;
  if (rx) {
    const medications = new Map();
    const requests = new Map();
    rx.rows.forEach((row, index) => {
      const name = [rx.value(row, "drug_name"), rx.value(row, "strength"), rx.value(row, "dosage_form")].filter(present).join(" ") || "Unnamed medication";
      const ndc = rx.value(row, "ndc");
      const medKey = `${name}|${ndc ?? ""}`;
      if (!medications.has(medKey))
        medications.set(
          medKey,
          add(
            clean({
              resourceType: "Medication",
              id: `med-${medications.size + 1}`,
              code: { text: name, coding: present(ndc) ? [{ system: NDC_SYSTEM, code: String(ndc), display: name }] : [] },
            }),
          ),
        );
      const medRef = medications.get(medKey);
      const rxNumber = rx.value(row, "rx_number");
      const prescriber = [rx.value(row, "prescriber_given_name"), rx.value(row, "prescriber")].filter(present).join(" ");
      const directions = rx.value(row, "directions");
      const reqKey = present(rxNumber) ? String(rxNumber) : `row-${index}`;
      if (!requests.has(reqKey)) {
        const left = integer(rx.value(row, "refills_left"));
        requests.set(
          reqKey,
          add(
            clean({
              resourceType: "MedicationRequest",
              id: `rx-${safeId(reqKey)}`,
              identifier: present(rxNumber) ? [{ type: { text: "Rx number" }, value: String(rxNumber) }] : [],
              status: left !== undefined && left <= 0 ? "completed" : "active",
              intent: "order",
              subject: { reference: patientRef },
              medicationReference: { reference: medRef, display: name },
              authoredOn: fhirDate(rx.value(row, "written_date")),
              requester: present(prescriber)
                ? { display: prescriber, identifier: present(rx.value(row, "prescriber_npi")) ? { system: "http://hl7.org/fhir/sid/us-npi", value: String(rx.value(row, "prescriber_npi")) } : undefined }
                : undefined,
              dosageInstruction: present(directions) ? [{ text: String(directions) }] : [],
              dispenseRequest: {
                numberOfRepeatsAllowed: integer(rx.value(row, "refills_authorized")),
                quantity: decimal(rx.value(row, "quantity")) !== undefined ? { value: decimal(rx.value(row, "quantity")) } : undefined,
                expectedSupplyDuration:
                  integer(rx.value(row, "days_supply")) !== undefined
                    ? { value: integer(rx.value(row, "days_supply")), unit: "days", system: "http://unitsofmeasure.org", code: "d" }
                    : undefined,
              },
            }),
          ),
        );
      }
      const filled = fhirDate(rx.value(row, "fill_date"));
      const pickedUp = fhirDate(rx.value(row, "picked_up_at"));
      add(
        clean({
          resourceType: "MedicationDispense",
          id: `fill-${index + 1}`,
          status: dispenseStatus(rx.value(row, "status")),
          medicationReference: { reference: medRef, display: name },
          subject: { reference: patientRef },
          authorizingPrescription: [{ reference: requests.get(reqKey) }],
          quantity: decimal(rx.value(row, "quantity")) !== undefined ? { value: decimal(rx.value(row, "quantity")) } : undefined,
          daysSupply:
            integer(rx.value(row, "days_supply")) !== undefined
              ? { value: integer(rx.value(row, "days_supply")), unit: "days", system: "http://unitsofmeasure.org", code: "d" }
              : undefined,
          whenPrepared: filled,
          whenHandedOver: pickedUp,
          dosageInstruction: present(directions) ? [{ text: String(directions) }] : [],
          note: present(rx.value(row, "fill_number")) ? [{ text: `Fill ${rx.value(row, "fill_number")}` }] : [],
        }),
      );
    });
  }
  const al = doc.allergies;
  if (al)
    al.rows.forEach((row, index) => {
      const allergen = al.value(row, "allergen");
      if (!present(allergen)) return;
      const reaction = al.value(row, "reaction");
      add(
        clean({
          resourceType: "AllergyIntolerance",
          id: `allergy-${index + 1}`,
          clinicalStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", code: "active" }] },
          code: { text: String(allergen) },
          patient: { reference: patientRef },
          recordedDate: fhirDate(al.value(row, "noted_date")),
          reaction: present(reaction) || severity(al.value(row, "severity"))
            ? [{ manifestation: [{ text: present(reaction) ? String(reaction) : "Not recorded" }], severity: severity(al.value(row, "severity")) }]
            : [],
        }),
      );
    });
  return {
    resourceType: "Bundle",
    type: "collection",
    timestamp: asOf.toISOString().replace(/\.\d{3}Z$/, "Z"),
    meta: { tag: [{ display: `Records from ${doc.pharmacyName}` }] },
    entry: entries,
  };
}
