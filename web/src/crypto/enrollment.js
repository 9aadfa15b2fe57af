/**
 * Enrollment codes (mirrors rxvault.format._enrollment): a version symbol "1", 26 Crockford
 * base32 symbols (128-bit secret), one Luhn mod 32 check symbol; seven groups of four.
 */

import { checkHandle } from "./codec.js";
import { BindingInvalid, InvalidEnrollmentCode, PinTagInvalid } from "./errors.js";
import { ascii, concat, equalBytes, hkdfSha256, hmacSha256, toHex, utf8 } from "./primitives.js";

export const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_VERSION = "1";
const SECRET_LENGTH = 16;
const DATA_SYMBOLS = 26;
const CODE_SYMBOLS = 1 + DATA_SYMBOLS + 1;
const LOOKALIKES = { O: "0", I: "1", L: "1" };
const IGNORED = " -\t\r\n";
export const URL_FRAGMENT_KEY = "enroll";
const LOOKUP_ID_LABEL = utf8("rxvault/v1/enrollment/lookup-id");
const BINDING_KEY_LABEL = utf8("rxvault/v1/enrollment/binding-key");
const PIN_KEY_LABEL = utf8("rxvault/v1/enrollment/pin-key");
const BINDING_MAC_LABEL = utf8("rxvault/v1/binding\u0000");
const PIN_TAG_LABEL = utf8("rxvault/v1/pin-tag\u0000");

function checkSymbol(symbols) {
  let total = 0;
  let factor = 2;
  for (let i = symbols.length - 1; i >= 0; i--) {
    const addend = factor * CODE_ALPHABET.indexOf(symbols[i]);
    total += Math.floor(addend / 32) + (addend % 32);
    factor = 3 - factor;
  }
  return CODE_ALPHABET[(32 - (total % 32)) % 32];
}

/** An enrollment code from its 16-byte secret: {secret, compact, text}. */
export function enrollmentCodeFromSecret(secret) {
  if (secret.length !== SECRET_LENGTH) throw new Error("an enrollment secret is 16 bytes");
  let value = 0n;
  for (const b of secret) value = (value << 8n) | BigInt(b);
  let data = "";
  for (let i = 0; i < DATA_SYMBOLS; i++) data += CODE_ALPHABET[Number((value >> BigInt(5 * (DATA_SYMBOLS - 1 - i))) & 31n)];
  const body = CODE_VERSION + data;
  const compact = body + checkSymbol(body);
  const text = compact.match(/.{1,4}/g).join("-");
  return { secret: Uint8Array.from(secret), compact, text };
}

/** Parse a typed or scanned code: case, spaces, dashes, O/I/L look-alikes and a pasted URL are forgiven. */
export function parseEnrollmentCode(input) {
  // A pasted QR URL is accepted too: only what follows "#enroll=" is parsed.
  const marker = `#${URL_FRAGMENT_KEY}=`;
  const text = input.includes(marker) ? input.slice(input.indexOf(marker) + marker.length) : input;
  const symbols = [];
  for (const typed of text.toUpperCase()) {
    if (IGNORED.includes(typed)) continue;
    const symbol = LOOKALIKES[typed] ?? typed;
    if (!CODE_ALPHABET.includes(symbol) || symbol.length !== 1)
      throw new InvalidEnrollmentCode(`enrollment code: ${JSON.stringify(typed)} is not a code symbol`);
    symbols.push(symbol);
  }
  const compact = symbols.join("");
  if (compact.length !== CODE_SYMBOLS) throw new InvalidEnrollmentCode(`enrollment code: ${compact.length} symbols, expected ${CODE_SYMBOLS}`);
  if (compact[0] !== CODE_VERSION) throw new InvalidEnrollmentCode(`enrollment code: unknown code version ${JSON.stringify(compact[0])}`);
  if (checkSymbol(compact.slice(0, -1)) !== compact[compact.length - 1])
    throw new InvalidEnrollmentCode("enrollment code: check symbol does not match (a typo?)");
  let value = 0n;
  for (const symbol of compact.slice(1, -1)) value = value * 32n + BigInt(CODE_ALPHABET.indexOf(symbol));
  if (value >> BigInt(8 * SECRET_LENGTH)) throw new InvalidEnrollmentCode("enrollment code: value out of range");
  const secret = new Uint8Array(SECRET_LENGTH);
  for (let i = SECRET_LENGTH - 1; i >= 0; i--) {
    secret[i] = Number(value & 255n);
    value >>= 8n;
  }
  return enrollmentCodeFromSecret(secret);
}

export function enrollmentUrl(baseUrl, code) {
  const m = /^(https?):\/\/([^/?#]+)/.exec(baseUrl);
  if (!m) throw new Error(`portal URL ${baseUrl} must be an absolute http(s) URL`);
  if (baseUrl.includes("#")) throw new Error(`portal URL ${baseUrl} must not have a fragment`);
  return `${baseUrl}#${URL_FRAGMENT_KEY}=${code.compact}`;
}

export async function deriveEnrollment(code) {
  return {
    lookupId: toHex(await hkdfSha256(code.secret, { info: LOOKUP_ID_LABEL, length: 16 })),
    bindingKey: await hkdfSha256(code.secret, { info: BINDING_KEY_LABEL, length: 32 }),
    pinKey: await hkdfSha256(code.secret, { info: PIN_KEY_LABEL, length: 32 }),
  };
}

export async function pinTag(code, pharmacyPublicKey) {
  if (pharmacyPublicKey.length !== 32) throw new Error("a pharmacy public key is 32 bytes");
  return hmacSha256((await deriveEnrollment(code)).pinKey, concat(PIN_TAG_LABEL, pharmacyPublicKey));
}

/** Check the server's pharmacy key against the code's pin tag before trusting (pinning) it. */
export async function verifyPinTag(code, pharmacyPublicKey, tag) {
  if (pharmacyPublicKey.length !== 32 || !equalBytes(await pinTag(code, pharmacyPublicKey), tag))
    throw new PinTagInvalid("the pharmacy key does not match this enrollment code");
}

export async function bindingMac(bindingKey, handle, patientPublicKey) {
  checkHandle(handle);
  if (bindingKey.length !== 32) throw new Error("a binding key is 32 bytes");
  if (patientPublicKey.length !== 32) throw new Error("a patient public key is 32 bytes");
  return hmacSha256(bindingKey, concat(BINDING_MAC_LABEL, ascii(handle), patientPublicKey));
}

export async function verifyBinding(bindingKey, handle, patientPublicKey, mac) {
  if (patientPublicKey.length !== 32 || !equalBytes(await bindingMac(bindingKey, handle, patientPublicKey), mac))
    throw new BindingInvalid("the patient key is not bound to this enrollment and handle");
}
