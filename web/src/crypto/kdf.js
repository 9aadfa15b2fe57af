/**
 * Password to keys (mirrors rxvault.format._kdf): master = Argon2id(NFC(password), salt, m, t, p,
 * 32) with hash-wasm; auth key and unlock key are HKDF-SHA256 expansions under distinct labels.
 * Only the auth key leaves the browser. The server-side derivations are here for the vectors.
 */

import { argon2id } from "hash-wasm";
import { MalformedObject, UnsupportedVersion, WeakKdfParameters } from "./errors.js";
import { concat, equalBytes, hkdfSha256, hmacSha256, utf8 } from "./primitives.js";

export const SALT_LENGTH = 16;
const KEY_LENGTH = 32;
const MIN_PEPPER_LENGTH = 32;
const AUTH_KEY_LABEL = utf8("rxvault/v1/auth-key");
const UNLOCK_KEY_LABEL = utf8("rxvault/v1/unlock-key");
const VERIFIER_KEY_LABEL = utf8("rxvault/v1/pepper/auth-verifier");
const SHARE_KEY_LABEL = utf8("rxvault/v1/pepper/key-share");
const DECOY_KEY_LABEL = utf8("rxvault/v1/pepper/decoy-salt");

export const KDF_FLOOR = { memory_kib: 65536, iterations: 3, parallelism: 1 };
export const KDF_CEILING = { memory_kib: 1048576, iterations: 16, parallelism: 4 };

/** Refuse parameters below the floor (WeakKdfParameters) or above the ceiling. */
export function checkKdfParams(p) {
  if (p.memory_kib < KDF_FLOOR.memory_kib || p.iterations < KDF_FLOOR.iterations || p.parallelism < KDF_FLOOR.parallelism)
    throw new WeakKdfParameters(`Argon2id m=${p.memory_kib} KiB, t=${p.iterations}, p=${p.parallelism} is below the floor m=65536 KiB, t=3, p=1`);
  if (p.memory_kib > KDF_CEILING.memory_kib || p.iterations > KDF_CEILING.iterations || p.parallelism > KDF_CEILING.parallelism)
    throw new MalformedObject(`Argon2id m=${p.memory_kib} KiB, t=${p.iterations}, p=${p.parallelism} is above the ceiling`);
  if (p.memory_kib < 8 * p.parallelism) throw new MalformedObject("Argon2id memory must be at least 8 KiB per lane");
}

/** Parse and check the JSON form {"alg", "m", "p", "t"} that the server sends. */
export function kdfParamsFromDict(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new MalformedObject('KDF parameters must be {"alg", "m", "p", "t"}');
  const names = Object.keys(value).sort();
  if (names.join(",") !== "alg,m,p,t") throw new MalformedObject('KDF parameters must be {"alg", "m", "p", "t"}');
  if (value.alg !== "argon2id") throw new UnsupportedVersion(`KDF algorithm ${JSON.stringify(value.alg)} is not supported`);
  for (const name of ["m", "p", "t"])
    if (typeof value[name] !== "number" || !Number.isInteger(value[name])) throw new MalformedObject(`KDF parameter ${name} must be an integer`);
  const params = { memory_kib: value.m, iterations: value.t, parallelism: value.p };
  checkKdfParams(params);
  return params;
}

export function kdfParamsToDict(p) {
  return { alg: "argon2id", m: p.memory_kib, p: p.parallelism, t: p.iterations };
}

/** Argon2id over the NFC-normalised UTF-8 password (refuses weak parameters). */
export async function deriveMasterKey(password, salt, params) {
  checkKdfParams(params);
  if (salt.length !== SALT_LENGTH) throw new Error(`an account salt is ${SALT_LENGTH} bytes`);
  if (!password) throw new Error("the password must not be empty");
  const secret = utf8(password.normalize("NFC"));
  try {
    return await argon2id({
      password: secret,
      salt,
      parallelism: params.parallelism,
      iterations: params.iterations,
      memorySize: params.memory_kib,
      hashLength: KEY_LENGTH,
      outputType: "binary",
    });
  } finally {
    secret.fill(0);
  }
}

export async function clientKeysFromMaster(masterKey) {
  return {
    authKey: await hkdfSha256(masterKey, { info: AUTH_KEY_LABEL, length: KEY_LENGTH }),
    unlockKey: await hkdfSha256(masterKey, { info: UNLOCK_KEY_LABEL, length: KEY_LENGTH }),
  };
}

async function pepperKey(pepper, label) {
  if (pepper.length < MIN_PEPPER_LENGTH) throw new Error("the pepper must be at least 32 bytes");
  return hkdfSha256(pepper, { info: label, length: KEY_LENGTH });
}

export async function authVerifier(pepper, salt, authKey) {
  if (salt.length !== SALT_LENGTH) throw new Error("an account salt is 16 bytes");
  if (authKey.length !== KEY_LENGTH) throw new MalformedObject("an auth key is 32 bytes");
  return hmacSha256(await pepperKey(pepper, VERIFIER_KEY_LABEL), concat(salt, authKey));
}

export async function checkAuth(pepper, salt, authKey, stored) {
  if (authKey.length !== KEY_LENGTH) return false;
  return equalBytes(await authVerifier(pepper, salt, authKey), stored);
}

export async function serverKeyShare(pepper, salt) {
  if (salt.length !== SALT_LENGTH) throw new Error("an account salt is 16 bytes");
  return hmacSha256(await pepperKey(pepper, SHARE_KEY_LABEL), salt);
}

export async function decoySalt(pepper, username) {
  return (await hmacSha256(await pepperKey(pepper, DECOY_KEY_LABEL), utf8(username))).subarray(0, SALT_LENGTH);
}
