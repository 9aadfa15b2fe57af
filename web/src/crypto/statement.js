/**
 * The sync statement: the pharmacy's signed Merkle tree head over every handle the server holds
 * (mirrors rxvault.format._statement). The tree is RFC 9162 §2.1 with SHA-256; a leaf is
 * SHA-256(0x00 || handle (32 ASCII hex) || u64(version) || 0x01 live / 0x02 deleted).
 */

import { MAX_SAFE_INTEGER } from "./canonical.js";
import { STATEMENT_MAGIC, checkCounter, checkHandle, checkHexId, decodeHeader, encodeHeader, formatTime, parseTime, readMagic } from "./codec.js";
import { InclusionInvalid, MalformedObject, SignatureInvalid, WithholdingDetected } from "./errors.js";
import { SIGNATURE_LENGTH, pharmacyId, verifySignature } from "./keys.js";
import { ascii, concat, equalBytes, fromHex, sha256, toHex } from "./primitives.js";

const HEADER_KEYS = ["as_of", "pharmacy_id", "root", "seq", "size"];
const WHAT = "statement";
const ROOT_RE = /^[0-9a-f]{64}$/;

/** The 41 leaf bytes of {handle, version, deleted}. */
export function leafBytes(leaf) {
  checkHandle(leaf.handle, "leaf");
  checkCounter(leaf.version, "version", "leaf");
  const out = new Uint8Array(41);
  out.set(ascii(leaf.handle), 0);
  const view = new DataView(out.buffer);
  view.setUint32(32, Math.floor(leaf.version / 2 ** 32));
  view.setUint32(36, leaf.version % 2 ** 32);
  out[40] = leaf.deleted ? 0x02 : 0x01;
  return out;
}

export async function leafHash(leaf) {
  return sha256(concat(new Uint8Array([0x00]), leafBytes(leaf)));
}

async function node(left, right) {
  return sha256(concat(new Uint8Array([0x01]), left, right));
}

/** Every level of the tree over sorted leaves: {size, root, proof(index)} (used by the vectors). */
export async function merkleTree(leaves) {
  const levels = [await Promise.all(leaves.map(leafHash))];
  while (levels[levels.length - 1].length > 1) {
    const below = levels[levels.length - 1];
    const above = [];
    for (let i = 0; i + 1 < below.length; i += 2) above.push(await node(below[i], below[i + 1]));
    if (below.length % 2) above.push(below[below.length - 1]);
    levels.push(above);
  }
  const size = leaves.length;
  return {
    size,
    root: size ? levels[levels.length - 1][0] : await sha256(new Uint8Array(0)),
    proof(index) {
      const path = [];
      for (const level of levels.slice(0, -1)) {
        const sibling = index ^ 1;
        if (sibling < level.length) path.push(level[sibling]);
        index = Math.floor(index / 2);
      }
      return path;
    },
  };
}

/** Sign a statement (the agent's side; the portal only uses it to run the vectors). */
export async function makeStatement({ pharmacyKey, seq, asOf, leaves }) {
  checkCounter(seq, "seq", WHAT);
  const tree = await merkleTree(leaves);
  const body = concat(
    STATEMENT_MAGIC,
    encodeHeader({ as_of: formatTime(asOf), pharmacy_id: pharmacyKey.pharmacyId, root: toHex(tree.root), seq, size: tree.size }),
  );
  return concat(body, await pharmacyKey.sign(body));
}

/** Verify a statement's form and signature: {pharmacy_id, seq, as_of, size, root}. */
export async function verifyStatement(data, pharmacyPublicKey) {
  readMagic(data, STATEMENT_MAGIC, WHAT);
  const [fields, end] = decodeHeader(data, 4, HEADER_KEYS, WHAT);
  const statement = {
    pharmacy_id: checkHexId(fields.pharmacy_id, "pharmacy_id", WHAT),
    seq: checkCounter(fields.seq, "seq", WHAT),
    as_of: parseTime(fields.as_of, "as_of", WHAT),
    size: fields.size,
    root: fields.root,
  };
  if (typeof statement.size !== "number" || !Number.isInteger(statement.size) || statement.size < 0 || statement.size > MAX_SAFE_INTEGER)
    throw new MalformedObject("statement: size must be an integer from 0 to 2**53 - 1");
  if (typeof statement.root !== "string" || !ROOT_RE.test(statement.root))
    throw new MalformedObject("statement: root must be 64 lowercase hex digits");
  statement.root = fromHex(statement.root);
  if (data.length !== end + SIGNATURE_LENGTH)
    throw new MalformedObject(`statement: ${data.length} bytes, but its header implies exactly ${end + SIGNATURE_LENGTH}`);
  await verifySignature(pharmacyPublicKey, data.subarray(end), data.subarray(0, end), WHAT);
  if (statement.pharmacy_id !== (await pharmacyId(pharmacyPublicKey))) throw new SignatureInvalid("statement: signed for another pharmacy id");
  return statement;
}

/**
 * Check that `leaf` is leaf `index` of the statement's tree (RFC 9162 §2.1.3.2). Throws
 * MalformedObject for a leaf or path element of the wrong form, InclusionInvalid otherwise.
 * Numbers stay below 2**53, so the shifts are divisions (JavaScript's >> is 32-bit).
 */
export async function verifyInclusion(statement, leaf, index, path) {
  let current = await leafHash(leaf);
  if (!path.every((p) => p instanceof Uint8Array && p.length === 32)) throw new MalformedObject("inclusion proof: every path element is 32 bytes");
  if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= statement.size)
    throw new InclusionInvalid(`inclusion proof: index outside a tree of ${statement.size}`);
  const half = (n) => Math.floor(n / 2);
  const odd = (n) => n % 2 === 1;
  let fn = index;
  let sn = statement.size - 1;
  for (const p of path) {
    if (sn === 0) throw new InclusionInvalid("inclusion proof: path is longer than the tree is deep");
    if (odd(fn) || fn === sn) {
      current = await node(p, current);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      current = await node(current, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new InclusionInvalid("inclusion proof: path is shorter than the tree is deep");
  if (!equalBytes(current, statement.root)) throw new InclusionInvalid("inclusion proof: does not lead to the statement's root");
}

/** Refuse a served block or tombstone older than the version the statement proves. */
export function checkNotWithheld(leaf, servedVersion) {
  if (servedVersion < leaf.version)
    throw new WithholdingDetected(
      `the server is withholding newer records: it serves version ${servedVersion}, but the pharmacy's statement proves version ${leaf.version}`,
    );
}
