/**
 * The block (mirrors rxvault.format._envelope):
 *
 *     magic "RXB" 0x01 | u16 header length | header (canonical JSON) | enc (32) |
 *     ciphertext (padded_length + 16) | Ed25519 signature (64)
 *
 * The HPKE info is every byte from the magic to the end of the header; the signature covers
 * every byte before it.
 */

import { BLOCK_MAGIC, checkCounter, checkHandle, checkHexId, decodeHeader, encodeHeader, formatTime, parseTime, readMagic } from "./codec.js";
import { HandleMismatch, MalformedObject, RollbackRefused, SignatureInvalid, UnsupportedSuite } from "./errors.js";
import { ENC_LENGTH, TAG_LENGTH, openBase, sealBase } from "./hpke.js";
import { SIGNATURE_LENGTH, pharmacyId, verifySignature } from "./keys.js";
import { decompress, isValidPaddedLength, pad, unpad } from "./padding.js";
import { concat } from "./primitives.js";

export const BLOCK_SUITE = "HPKE-X25519-SHA256-A128GCM+Ed25519+zlib";
const HEADER_KEYS = ["as_of", "handle", "padded_length", "pharmacy_id", "suite", "version"];
const WHAT = "block";

function parse(envelope) {
  readMagic(envelope, BLOCK_MAGIC, WHAT);
  const [fields, end] = decodeHeader(envelope, 4, HEADER_KEYS, WHAT);
  if (fields.suite !== BLOCK_SUITE) throw new UnsupportedSuite(`block: unsupported suite ${JSON.stringify(fields.suite)}`);
  const padded = fields.padded_length;
  if (typeof padded !== "number" || !isValidPaddedLength(padded))
    throw new MalformedObject("block: padded_length is not a valid bucket size");
  const header = {
    pharmacy_id: checkHexId(fields.pharmacy_id, "pharmacy_id", WHAT),
    handle: checkHandle(fields.handle, WHAT),
    version: checkCounter(fields.version, "version", WHAT),
    as_of: parseTime(fields.as_of, "as_of", WHAT),
    suite: BLOCK_SUITE,
    padded_length: padded,
  };
  const expected = end + ENC_LENGTH + padded + TAG_LENGTH + SIGNATURE_LENGTH;
  if (envelope.length !== expected)
    throw new MalformedObject(`block: ${envelope.length} bytes, but its header implies exactly ${expected}`);
  return [header, end];
}

/** Check the structure and the pharmacy signature (no decryption); return the header. */
export async function verifyBlock(envelope, pharmacyPublicKey) {
  const [header] = parse(envelope);
  const body = envelope.subarray(0, envelope.length - SIGNATURE_LENGTH);
  await verifySignature(pharmacyPublicKey, envelope.subarray(envelope.length - SIGNATURE_LENGTH), body, WHAT);
  if (header.pharmacy_id !== (await pharmacyId(pharmacyPublicKey))) throw new SignatureInvalid("block: signed for another pharmacy id");
  return header;
}

/**
 * Verify, check handle and version, then decrypt and decompress. `recipient` is a key pair from
 * hpke.recipientKeyPair (the private half a non-extractable CryptoKey).
 */
export async function openBlock(envelope, { recipient, pharmacyPublicKey, expectedHandle, minVersion = 0 }) {
  const header = await verifyBlock(envelope, pharmacyPublicKey);
  if (header.handle !== expectedHandle) throw new HandleMismatch("block: for another patient handle");
  if (header.version < minVersion)
    throw new RollbackRefused(`block: version ${header.version} is older than version ${minVersion} already seen`);
  const [, end] = parse(envelope);
  const info = envelope.subarray(0, end);
  const enc = envelope.subarray(end, end + ENC_LENGTH);
  const ciphertext = envelope.subarray(end + ENC_LENGTH, envelope.length - SIGNATURE_LENGTH);
  const plaintext = await openBase(recipient, enc, info, ciphertext);
  const document = await decompress(unpad(plaintext));
  plaintext.fill(0);
  return { header, document };
}

/** Deterministic sealing of an already compressed document (the agent's job; for the vectors). */
export async function sealBlockFromParts(compressed, { pharmacyKey, handle, version, asOf, recipientPublicKey, ephemeralPrivateKey }) {
  checkHandle(handle);
  checkCounter(version, "version", WHAT);
  const plaintext = pad(compressed);
  const header = encodeHeader({
    as_of: formatTime(asOf),
    handle,
    padded_length: plaintext.length,
    pharmacy_id: pharmacyKey.pharmacyId,
    suite: BLOCK_SUITE,
    version,
  });
  const info = concat(BLOCK_MAGIC, header);
  const [enc, ciphertext] = await sealBase(recipientPublicKey, info, plaintext, ephemeralPrivateKey);
  const body = concat(info, enc, ciphertext);
  return concat(body, await pharmacyKey.sign(body));
}
