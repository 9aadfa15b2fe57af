/** The signed deletion of a patient's block (mirrors rxvault.format._tombstone). */

import { TOMBSTONE_MAGIC, checkCounter, checkHandle, checkHexId, decodeHeader, encodeHeader, formatTime, parseTime, readMagic } from "./codec.js";
import { MalformedObject, SignatureInvalid } from "./errors.js";
import { SIGNATURE_LENGTH, pharmacyId, verifySignature } from "./keys.js";
import { concat } from "./primitives.js";

const HEADER_KEYS = ["deleted_at", "handle", "pharmacy_id", "version"];
const WHAT = "tombstone";

export async function makeTombstone({ pharmacyKey, handle, version, deletedAt }) {
  checkHandle(handle);
  checkCounter(version, "version", WHAT);
  const body = concat(
    TOMBSTONE_MAGIC,
    encodeHeader({ deleted_at: formatTime(deletedAt), handle, pharmacy_id: pharmacyKey.pharmacyId, version }),
  );
  return concat(body, await pharmacyKey.sign(body));
}

export async function verifyTombstone(data, pharmacyPublicKey) {
  readMagic(data, TOMBSTONE_MAGIC, WHAT);
  const [fields, end] = decodeHeader(data, 4, HEADER_KEYS, WHAT);
  const header = {
    pharmacy_id: checkHexId(fields.pharmacy_id, "pharmacy_id", WHAT),
    handle: checkHandle(fields.handle, WHAT),
    version: checkCounter(fields.version, "version", WHAT),
    deleted_at: parseTime(fields.deleted_at, "deleted_at", WHAT),
  };
  if (data.length !== end + SIGNATURE_LENGTH)
    throw new MalformedObject(`tombstone: ${data.length} bytes, but its header implies exactly ${end + SIGNATURE_LENGTH}`);
  await verifySignature(pharmacyPublicKey, data.subarray(end), data.subarray(0, end), WHAT);
  if (header.pharmacy_id !== (await pharmacyId(pharmacyPublicKey))) throw new SignatureInvalid("tombstone: signed for another pharmacy id");
  return header;
}
