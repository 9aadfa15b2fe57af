/**
 * The portal's crypto: one folder that mirrors rxvault.format module by module, and the only
 * code in the portal that calls crypto.subtle.
 */

export * from "./errors.js";
export { canonicalJson, parseCanonicalJson, parseJson } from "./canonical.js";
export { b64decode, b64encode, fromHex, randomBytes, toHex, wipe, concat, utf8 } from "./primitives.js";
export { pharmacyId, patientPublicKey, importPatientPrivateKey, importPharmacyKey } from "./keys.js";
export { recipientKeyPair, suite as hpkeSuite } from "./hpke.js";
export { BLOCK_SUITE, openBlock, verifyBlock, sealBlockFromParts } from "./envelope.js";
export { verifyTombstone, makeTombstone } from "./tombstone.js";
export { verifySignature } from "./keys.js";
export { verifyBatch, makeBatch } from "./batch.js";
export { verifyStatement, verifyInclusion, checkNotWithheld } from "./statement.js";
export { kdfParamsFromDict, kdfParamsToDict, checkKdfParams, KDF_FLOOR } from "./kdf.js";
export { deriveClientKeysInWorker, prepareKeyWorker } from "./client-keys.js";
export { wrapKeyBundle, unwrapKeyBundle, rewrapKeyBundle } from "./bundle.js";
export {
  parseEnrollmentCode,
  enrollmentCodeFromSecret,
  deriveEnrollment,
  verifyPinTag,
  bindingMac,
  URL_FRAGMENT_KEY,
} from "./enrollment.js";
export { patientHandle } from "./handle.js";
