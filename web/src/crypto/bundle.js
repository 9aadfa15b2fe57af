/**
 * The key bundle (mirrors rxvault.format._bundle): the patient's X25519 key pair and the pinned
 * pharmacy key, AES-256-GCM under HKDF(unlock key || server share), bound to the account.
 * Layout: magic "RXK" 0x01 | nonce (12) | AES-256-GCM(private || public || pharmacy key) (112).
 */

import { BUNDLE_MAGIC } from "./codec.js";
import { DecryptionFailed } from "./errors.js";
import { importPatientPrivateKey, patientPublicKey } from "./keys.js";
import { concat, equalBytes, hkdfSha256, randomBytes, subtle, utf8, wipe } from "./primitives.js";

const BUNDLE_KEY_LABEL = utf8("rxvault/v1/key-bundle");
const NONCE = 12;
export const BUNDLE_LENGTH = 4 + NONCE + 96 + 16;

export async function bundleKey(unlockKey, serverShare) {
  if (unlockKey.length !== 32 || serverShare.length !== 32) throw new Error("the unlock key and the server share are 32 bytes each");
  const ikm = concat(unlockKey, serverShare);
  try {
    return await hkdfSha256(ikm, { info: BUNDLE_KEY_LABEL, length: 32 });
  } finally {
    wipe(ikm);
  }
}

function aad(account) {
  if (!account) throw new Error("the account must not be empty");
  return concat(BUNDLE_MAGIC, utf8(account));
}

async function aesKey(unlockKey, serverShare, usage) {
  const raw = await bundleKey(unlockKey, serverShare);
  try {
    return await subtle.importKey("raw", raw, "AES-GCM", false, [usage]);
  } finally {
    wipe(raw);
  }
}

export async function wrapKeyBundleFromParts({ unlockKey, serverShare, account, patientPrivateKey, pharmacyPublicKey, nonce }) {
  if (nonce.length !== NONCE) throw new Error("the nonce is 12 bytes");
  if (pharmacyPublicKey.length !== 32) throw new Error("a pharmacy public key is 32 bytes");
  const plaintext = concat(patientPrivateKey, await patientPublicKey(patientPrivateKey), pharmacyPublicKey);
  try {
    const key = await aesKey(unlockKey, serverShare, "encrypt");
    const sealed = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad(account) }, key, plaintext));
    return concat(BUNDLE_MAGIC, nonce, sealed);
  } finally {
    wipe(plaintext);
  }
}

export async function wrapKeyBundle(parts) {
  return wrapKeyBundleFromParts({ ...parts, nonce: randomBytes(NONCE) });
}

/**
 * Open a bundle to raw bytes: {patientPrivateKey, patientPublicKey, pharmacyPublicKey}. Any
 * failure is DecryptionFailed. The caller wipes patientPrivateKey after importing it.
 */
export async function unwrapKeyBundleBytes(bundle, { unlockKey, serverShare, account }) {
  if (bundle.length !== BUNDLE_LENGTH || !equalBytes(bundle.subarray(0, 4), BUNDLE_MAGIC)) throw new DecryptionFailed();
  let plaintext;
  try {
    const key = await aesKey(unlockKey, serverShare, "decrypt");
    plaintext = new Uint8Array(
      await subtle.decrypt({ name: "AES-GCM", iv: bundle.subarray(4, 16), additionalData: aad(account) }, key, bundle.subarray(16)),
    );
  } catch {
    throw new DecryptionFailed();
  }
  const result = {
    patientPrivateKey: plaintext.slice(0, 32),
    patientPublicKey: plaintext.slice(32, 64),
    pharmacyPublicKey: plaintext.slice(64, 96),
  };
  wipe(plaintext);
  let derived;
  try {
    derived = await patientPublicKey(result.patientPrivateKey);
  } catch {
    wipe(result.patientPrivateKey);
    throw new DecryptionFailed();
  }
  if (!equalBytes(derived, result.patientPublicKey)) {
    wipe(result.patientPrivateKey);
    throw new DecryptionFailed();
  }
  return result;
}

/**
 * Open a bundle into a non-extractable X25519 CryptoKey: {privateKey, patientPublicKey,
 * pharmacyPublicKey}. The raw private bytes are wiped before this returns.
 */
export async function unwrapKeyBundle(bundle, options) {
  const raw = await unwrapKeyBundleBytes(bundle, options);
  try {
    const privateKey = await importPatientPrivateKey(raw.patientPrivateKey);
    return { privateKey, patientPublicKey: raw.patientPublicKey, pharmacyPublicKey: raw.pharmacyPublicKey };
  } finally {
    wipe(raw.patientPrivateKey);
  }
}

/**
 * Re-wrap a bundle under new keys (a password change): the raw private key exists only inside
 * this function and is wiped before it returns. Any failure to open is DecryptionFailed.
 */
export async function rewrapKeyBundle(bundle, current, next) {
  const raw = await unwrapKeyBundleBytes(bundle, current);
  try {
    return await wrapKeyBundle({
      unlockKey: next.unlockKey,
      serverShare: next.serverShare,
      account: next.account,
      patientPrivateKey: raw.patientPrivateKey,
      pharmacyPublicKey: raw.pharmacyPublicKey,
    });
  } finally {
    wipe(raw.patientPrivateKey);
  }
}
