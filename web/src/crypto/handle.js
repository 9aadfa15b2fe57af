/** Patient handles: a keyed hash of the pharmacy's patient id (mirrors _handle.py). */

import { concat, hmacSha256, toHex, utf8 } from "./primitives.js";

const HANDLE_LABEL = utf8("rxvault/v1/patient-handle\u0000");

export async function patientHandle(handleSecret, patientId) {
  if (handleSecret.length !== 32) throw new Error("a handle secret is 32 bytes");
  if (!patientId) throw new Error("a patient id must not be empty");
  return toHex((await hmacSha256(handleSecret, concat(HANDLE_LABEL, utf8(patientId)))).subarray(0, 16));
}
