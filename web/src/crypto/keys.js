/** Pharmacy keys (Ed25519), patient keys (X25519) and pharmacy ids (mirrors _keys.py). */

import { SignatureInvalid } from "./errors.js";
import { b64decode, concat, sha256, subtle, toHex } from "./primitives.js";

export const SIGNATURE_LENGTH = 64;
const ED25519_PKCS8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const X25519_PKCS8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const X25519_BASE_POINT = new Uint8Array(32);
X25519_BASE_POINT[0] = 9;

/** The pharmacy's id: the first 16 bytes of SHA-256(public key), lowercase hex. */
export async function pharmacyId(publicKey) {
  if (publicKey.length !== 32) throw new Error("a pharmacy public key is 32 bytes");
  return toHex((await sha256(publicKey)).subarray(0, 16));
}

/** Verify an Ed25519 signature; throw SignatureInvalid naming `what`. */
export async function verifySignature(publicKey, signature, message, what) {
  if (publicKey.length !== 32) throw new Error("a pharmacy public key is 32 bytes");
  let ok = false;
  try {
    const key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    ok = signature.length === SIGNATURE_LENGTH && (await subtle.verify({ name: "Ed25519" }, key, signature, message));
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureInvalid(`${what}: pharmacy signature does not verify`);
}

/** A pharmacy signing key from its 32 raw private bytes (the agent's side; used by the vectors). */
export async function importPharmacyKey(privateBytes) {
  if (privateBytes.length !== 32) throw new Error("an Ed25519 private key is 32 bytes");
  const key = await subtle.importKey("pkcs8", concat(ED25519_PKCS8, privateBytes), { name: "Ed25519" }, true, ["sign"]);
  const jwk = await subtle.exportKey("jwk", key);
  const publicKey = b64decode(jwk.x);
  return {
    publicKey,
    pharmacyId: await pharmacyId(publicKey),
    sign: async (message) => new Uint8Array(await subtle.sign({ name: "Ed25519" }, key, message)),
  };
}

/** Import a patient's X25519 private key as a non-extractable CryptoKey. */
export async function importPatientPrivateKey(privateBytes) {
  if (privateBytes.length !== 32) throw new Error("an X25519 private key is 32 bytes");
  return subtle.importKey("pkcs8", concat(X25519_PKCS8, privateBytes), { name: "X25519" }, false, ["deriveBits"]);
}

export async function importX25519PublicKey(publicBytes) {
  return subtle.importKey("raw", publicBytes, { name: "X25519" }, true, []);
}

/** The X25519 public key of a private key (raw bytes or CryptoKey): X25519(k, 9). */
export async function patientPublicKey(privateKey) {
  const key = privateKey instanceof CryptoKey ? privateKey : await importPatientPrivateKey(privateKey);
  const base = await subtle.importKey("raw", X25519_BASE_POINT, { name: "X25519" }, false, []);
  return new Uint8Array(await subtle.deriveBits({ name: "X25519", public: base }, key, 256));
}
