/**
 * HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, single shot,
 * through @hpke/core and its WebCrypto X25519 KEM (mirrors rxvault.format._hpke).
 */

import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { DecryptionFailed } from "./errors.js";
import { importX25519PublicKey, importPatientPrivateKey, patientPublicKey } from "./keys.js";

export const ENC_LENGTH = 32;
export const TAG_LENGTH = 16;

export const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes128Gcm(),
});

/**
 * A recipient key pair for opening: the non-extractable private CryptoKey and its public key
 * (the KEM needs pkR for its context; with a pair it never tries to export the private key).
 */
export async function recipientKeyPair(privateKey, publicBytes) {
  return { privateKey, publicKey: await importX25519PublicKey(publicBytes) };
}

/** Single-shot OpenBase. Any failure is DecryptionFailed. */
export async function openBase(recipient, enc, info, ciphertext, aad = new Uint8Array(0)) {
  try {
    return new Uint8Array(await suite.open({ recipientKey: recipient, enc, info }, ciphertext, aad));
  } catch {
    throw new DecryptionFailed();
  }
}

/** An ephemeral key pair from explicit private bytes (deterministic sealing for test vectors). */
export async function ephemeralKeyPair(privateBytes) {
  const publicBytes = await patientPublicKey(privateBytes);
  return {
    privateKey: await importPatientPrivateKey(privateBytes),
    publicKey: await importX25519PublicKey(publicBytes),
  };
}

/** Single-shot SealBase with an explicit ephemeral key: returns [enc, ciphertext]. */
export async function sealBase(recipientPublicKey, info, plaintext, ephemeralPrivateKey, aad = new Uint8Array(0)) {
  const result = await suite.seal(
    {
      recipientPublicKey: await importX25519PublicKey(recipientPublicKey),
      info,
      ekm: await ephemeralKeyPair(ephemeralPrivateKey),
    },
    plaintext,
    aad,
  );
  return [new Uint8Array(result.enc), new Uint8Array(result.ct)];
}
