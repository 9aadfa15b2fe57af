/**
 * Compression (zlib, RFC 1950, inflated with the browser's DecompressionStream) and padding to
 * power-of-two buckets (mirrors rxvault.format._padding).
 */

import { DecryptionFailed, DocumentTooLarge } from "./errors.js";

export const PADDING_FLOOR = 8192;
export const MAX_PADDED_LENGTH = 16 * 1024 * 1024;
export const MAX_DOCUMENT_LENGTH = 64 * 1024 * 1024;
const LENGTH_PREFIX = 4;

/** Inflate one complete zlib stream; trailing bytes, a truncated stream or too much output fail. */
export async function decompress(stream) {
  const chunks = [];
  let total = 0;
  try {
    const reader = new Blob([stream]).stream().pipeThrough(new DecompressionStream("deflate")).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > MAX_DOCUMENT_LENGTH) {
        await reader.cancel();
        throw new DecryptionFailed();
      }
      chunks.push(value);
    }
  } catch {
    throw new DecryptionFailed();
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

export function paddedLength(contentLength) {
  let size = PADDING_FLOOR;
  while (size < contentLength) size *= 2;
  if (size > MAX_PADDED_LENGTH) throw new DocumentTooLarge(`compressed document needs ${contentLength} bytes`);
  return size;
}

export function isValidPaddedLength(value) {
  return Number.isInteger(value) && value >= PADDING_FLOOR && value <= MAX_PADDED_LENGTH && (value & (value - 1)) === 0;
}

export function pad(compressed) {
  const out = new Uint8Array(paddedLength(LENGTH_PREFIX + compressed.length));
  new DataView(out.buffer).setUint32(0, compressed.length);
  out.set(compressed, LENGTH_PREFIX);
  return out;
}

/** Undo pad(); any inconsistency is DecryptionFailed. */
export function unpad(plaintext) {
  if (plaintext.length < LENGTH_PREFIX) throw new DecryptionFailed();
  const length = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).getUint32(0);
  const end = LENGTH_PREFIX + length;
  if (end > plaintext.length) throw new DecryptionFailed();
  for (let i = end; i < plaintext.length; i++) if (plaintext[i] !== 0) throw new DecryptionFailed();
  return plaintext.subarray(LENGTH_PREFIX, end);
}
