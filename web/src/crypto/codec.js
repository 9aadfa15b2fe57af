/** Shared byte-level helpers (mirrors rxvault.format._codec): magics, headers, times, ids. */

import { canonicalJson, parseCanonicalJson, MAX_SAFE_INTEGER } from "./canonical.js";
import { MalformedObject, UnsupportedVersion } from "./errors.js";

export const BLOCK_MAGIC = new Uint8Array([0x52, 0x58, 0x42, 0x01]); // "RXB" 1
export const TOMBSTONE_MAGIC = new Uint8Array([0x52, 0x58, 0x54, 0x01]); // "RXT" 1
export const BATCH_MAGIC = new Uint8Array([0x52, 0x58, 0x55, 0x01]); // "RXU" 1
export const BUNDLE_MAGIC = new Uint8Array([0x52, 0x58, 0x4b, 0x01]); // "RXK" 1
export const STATEMENT_MAGIC = new Uint8Array([0x52, 0x58, 0x53, 0x01]); // "RXS" 1
export const MAX_HEADER_LENGTH = 1024;

const TIME_RE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$/;
const HEX32_RE = /^[0-9a-f]{32}$/;

export function readMagic(data, magic, what) {
  if (data.length < 4) throw new MalformedObject(`${what}: truncated (${data.length} bytes)`);
  if (data[0] !== magic[0] || data[1] !== magic[1] || data[2] !== magic[2])
    throw new MalformedObject(`${what}: not a ${what}`);
  if (data[3] !== magic[3]) throw new UnsupportedVersion(`${what}: unsupported version ${data[3]}`);
}

export function encodeHeader(fields) {
  const body = canonicalJson(fields);
  if (body.length > MAX_HEADER_LENGTH) throw new Error(`header is ${body.length} bytes`);
  const out = new Uint8Array(2 + body.length);
  out[0] = body.length >> 8;
  out[1] = body.length & 0xff;
  out.set(body, 2);
  return out;
}

/** Read `u16 length || canonical JSON object` at offset; return [fields, end]. */
export function decodeHeader(data, offset, keys, what) {
  if (data.length < offset + 2) throw new MalformedObject(`${what}: truncated before the header length`);
  const length = (data[offset] << 8) | data[offset + 1];
  if (length > MAX_HEADER_LENGTH) throw new MalformedObject(`${what}: header length ${length} exceeds ${MAX_HEADER_LENGTH}`);
  const end = offset + 2 + length;
  if (data.length < end) throw new MalformedObject(`${what}: truncated inside the header`);
  const fields = parseCanonicalJson(data.subarray(offset + 2, end));
  if (fields === null || typeof fields !== "object" || Array.isArray(fields))
    throw new MalformedObject(`${what}: header is not a JSON object`);
  const names = Object.keys(fields);
  if (names.length !== keys.length || !keys.every((k) => Object.prototype.hasOwnProperty.call(fields, k)))
    throw new MalformedObject(`${what}: header fields wrong`);
  return [fields, end];
}

export function formatTime(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Parse `2026-01-31T09:30:00Z` (UTC, whole seconds, year >= 1970) into a Date. */
export function parseTime(value, field, what) {
  if (typeof value !== "string" || !TIME_RE.test(value))
    throw new MalformedObject(`${what}: ${field} is not a UTC time like 2026-01-31T09:30:00Z`);
  const [y, mo, d, h, mi, s] = value.match(/\d+/g).map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (
    date.getUTCFullYear() !== y ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== s ||
    y < 1 ||
    h > 23
  )
    throw new MalformedObject(`${what}: ${field} is not a valid date and time`);
  if (y < 1970) throw new MalformedObject(`${what}: ${field} is before 1970`);
  return date;
}

export function checkCounter(value, field, what) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_SAFE_INTEGER)
    throw new MalformedObject(`${what}: ${field} must be an integer from 1 to 2**53 - 1`);
  return value;
}

export function checkHexId(value, field, what) {
  if (typeof value !== "string" || !HEX32_RE.test(value))
    throw new MalformedObject(`${what}: ${field} must be 32 lowercase hex digits`);
  return value;
}

export function checkHandle(value, what = "handle") {
  return checkHexId(value, "handle", what);
}
