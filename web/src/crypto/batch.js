/** The upload batch (mirrors rxvault.format._batch); the portal only needs it for the vectors. */

import { BATCH_MAGIC, checkHexId, decodeHeader, encodeHeader, formatTime, parseTime, readMagic } from "./codec.js";
import { verifyBlock } from "./envelope.js";
import { FormatError, MalformedObject, SignatureInvalid } from "./errors.js";
import { SIGNATURE_LENGTH, pharmacyId, verifySignature } from "./keys.js";
import { concat, sha256 } from "./primitives.js";
import { verifyTombstone } from "./tombstone.js";

export const MAX_BATCH_ITEMS = 10000;
const BATCH_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;
const HEADER_KEYS = ["batch_id", "block_count", "created_at", "pharmacy_id", "tombstone_count"];
const WHAT = "batch";

function checkBatchId(value) {
  if (typeof value !== "string" || !BATCH_ID_RE.test(value))
    throw new MalformedObject("batch: batch_id must be 16 to 64 characters of A-Z a-z 0-9 _ -");
  return value;
}

function u32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

export async function makeBatch({ pharmacyKey, batchId, blocks, tombstones, createdAt }) {
  checkBatchId(batchId);
  if (blocks.length + tombstones.length > MAX_BATCH_ITEMS) throw new Error("too many items");
  const parts = [
    BATCH_MAGIC,
    encodeHeader({
      batch_id: batchId,
      block_count: blocks.length,
      created_at: formatTime(createdAt),
      pharmacy_id: pharmacyKey.pharmacyId,
      tombstone_count: tombstones.length,
    }),
  ];
  for (const item of [...blocks, ...tombstones]) parts.push(u32(item.length), item);
  const body = concat(...parts);
  return concat(body, await pharmacyKey.sign(body));
}

function count(value, field) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_BATCH_ITEMS)
    throw new MalformedObject(`batch: ${field} must be an integer from 0 to ${MAX_BATCH_ITEMS}`);
  return value;
}

export async function verifyBatch(data, pharmacyPublicKey) {
  readMagic(data, BATCH_MAGIC, WHAT);
  let [fields, offset] = decodeHeader(data, 4, HEADER_KEYS, WHAT);
  const batchId = checkBatchId(fields.batch_id);
  const blockCount = count(fields.block_count, "block_count");
  const tombstoneCount = count(fields.tombstone_count, "tombstone_count");
  if (blockCount + tombstoneCount > MAX_BATCH_ITEMS) throw new MalformedObject(`batch: more than ${MAX_BATCH_ITEMS} items`);
  const createdAt = parseTime(fields.created_at, "created_at", WHAT);
  const claimedId = checkHexId(fields.pharmacy_id, "pharmacy_id", WHAT);
  const end = data.length - SIGNATURE_LENGTH;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const items = [];
  for (let index = 0; index < blockCount + tombstoneCount; index++) {
    if (offset + 4 > end) throw new MalformedObject(`batch: truncated before item ${index}`);
    const length = view.getUint32(offset);
    offset += 4;
    if (offset + length > end) throw new MalformedObject(`batch: item ${index} is truncated`);
    items.push(data.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== end) throw new MalformedObject("batch: length does not match its items and signature");
  await verifySignature(pharmacyPublicKey, data.subarray(end), data.subarray(0, end), WHAT);
  if (claimedId !== (await pharmacyId(pharmacyPublicKey))) throw new SignatureInvalid("batch: signed for another pharmacy id");
  const blocks = [];
  const tombstones = [];
  const seen = new Set();
  for (const [index, item] of items.entries()) {
    let header;
    try {
      header = index < blockCount ? await verifyBlock(item, pharmacyPublicKey) : await verifyTombstone(item, pharmacyPublicKey);
    } catch (exc) {
      if (exc instanceof FormatError) {
        const again = new exc.constructor(`batch item ${index}: ${exc.message}`);
        throw again;
      }
      throw exc;
    }
    if (seen.has(header.handle)) throw new MalformedObject(`batch: handle ${header.handle} appears twice`);
    seen.add(header.handle);
    (index < blockCount ? blocks : tombstones).push([header, item]);
  }
  return { batchId, pharmacyId: claimedId, createdAt, blocks, tombstones, digest: await sha256(data) };
}
