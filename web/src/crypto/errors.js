/**
 * Errors raised by the portal's crypto, one class per class of rxvault.format._errors (the same
 * names, so the test vectors' expected error kinds compare directly):
 *
 *     FormatError
 *     ├── DecryptionFailed        a secret-bearing object did not authenticate or decode
 *     ├── SignatureInvalid        a pharmacy signature does not verify (or is for another pharmacy)
 *     ├── MalformedObject         a public object cannot be parsed
 *     ├── UnsupportedVersion      an object's version is not one this code knows
 *     │   └── UnsupportedSuite    a block names an algorithm suite this code does not implement
 *     ├── WeakKdfParameters       Argon2id parameters below the floor
 *     ├── InvalidEnrollmentCode   a typed or scanned enrollment code is wrong
 *     ├── BindingInvalid          a patient key binding does not verify
 *     ├── PinTagInvalid           a pin tag does not match the pharmacy key
 *     ├── HandleMismatch          a block or tombstone is for another patient handle
 *     ├── RollbackRefused         a block's version (or a statement's seq) is lower than one seen
 *     ├── InclusionInvalid        an inclusion proof does not lead to a sync statement's root
 *     ├── WithholdingDetected     the server serves an older version than its statement proves
 *     └── DocumentTooLarge        a document does not fit the largest padding bucket
 */

export class FormatError extends Error {}

export class DecryptionFailed extends FormatError {
  constructor() {
    super("decryption failed");
  }
}
export class SignatureInvalid extends FormatError {}
export class MalformedObject extends FormatError {}
export class UnsupportedVersion extends FormatError {}
export class UnsupportedSuite extends UnsupportedVersion {}
export class WeakKdfParameters extends FormatError {}
export class InvalidEnrollmentCode extends FormatError {}
export class BindingInvalid extends FormatError {}
export class PinTagInvalid extends FormatError {}
export class HandleMismatch extends FormatError {}
export class RollbackRefused extends FormatError {}
export class InclusionInvalid extends FormatError {}
export class WithholdingDetected extends FormatError {}
export class DocumentTooLarge extends FormatError {}

// The kind of an error is its class's name; set explicitly so that minifying keeps it.
const KINDS = {
  FormatError,
  DecryptionFailed,
  SignatureInvalid,
  MalformedObject,
  UnsupportedVersion,
  UnsupportedSuite,
  WeakKdfParameters,
  InvalidEnrollmentCode,
  BindingInvalid,
  PinTagInvalid,
  HandleMismatch,
  RollbackRefused,
  InclusionInvalid,
  WithholdingDetected,
  DocumentTooLarge,
};
for (const [name, kind] of Object.entries(KINDS)) Object.defineProperty(kind.prototype, "name", { value: name });
