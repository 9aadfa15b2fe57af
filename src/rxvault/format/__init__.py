"""rxvault's format: everything that crosses between the agent, the server and the browser.

Pure: bytes in, bytes out; no file, network or database I/O. The byte-level specification is
docs/spec/; the test vectors in vectors/ are generated from the deterministic
``*_from_parts`` functions. This package is the only place in rxvault that uses
``cryptography``'s hazmat layer.
"""

from __future__ import annotations

from rxvault.format._batch import MAX_BATCH_ITEMS, Batch, make_batch, new_batch_id, verify_batch
from rxvault.format._bundle import (
    KeyBundle,
    unwrap_key_bundle,
    wrap_key_bundle,
    wrap_key_bundle_from_parts,
)
from rxvault.format._canonical import canonical_json, parse_canonical_json, parse_json
from rxvault.format._enrollment import (
    EnrollmentCode,
    EnrollmentSecrets,
    binding_mac,
    derive_enrollment,
    enrollment_code_from_secret,
    enrollment_url,
    new_enrollment_code,
    parse_enrollment_code,
    pin_tag,
    verify_binding,
    verify_pin_tag,
)
from rxvault.format._envelope import (
    BLOCK_SUITE,
    BlockHeader,
    OpenedBlock,
    open_block,
    seal_block,
    seal_block_from_parts,
    verify_block,
)
from rxvault.format._errors import (
    BindingInvalid,
    DecryptionFailed,
    DocumentTooLarge,
    FormatError,
    HandleMismatch,
    InvalidEnrollmentCode,
    MalformedObject,
    PinTagInvalid,
    RollbackRefused,
    SignatureInvalid,
    UnsupportedSuite,
    UnsupportedVersion,
    WeakKdfParameters,
)
from rxvault.format._handle import generate_handle_secret, patient_handle
from rxvault.format._kdf import (
    DEFAULT_KDF,
    KDF_CEILING,
    KDF_FLOOR,
    ClientKeys,
    KdfParams,
    auth_verifier,
    check_auth,
    check_kdf_params,
    decoy_salt,
    derive_client_keys,
    new_salt,
    server_key_share,
)
from rxvault.format._keys import (
    PharmacyKey,
    generate_patient_keypair,
    generate_pharmacy_key,
    patient_public_key,
    pharmacy_id,
)
from rxvault.format._tombstone import TombstoneHeader, make_tombstone, verify_tombstone

__all__ = [
    "BLOCK_SUITE",
    "DEFAULT_KDF",
    "KDF_CEILING",
    "KDF_FLOOR",
    "MAX_BATCH_ITEMS",
    "Batch",
    "BindingInvalid",
    "BlockHeader",
    "ClientKeys",
    "DecryptionFailed",
    "DocumentTooLarge",
    "EnrollmentCode",
    "EnrollmentSecrets",
    "FormatError",
    "HandleMismatch",
    "InvalidEnrollmentCode",
    "KdfParams",
    "KeyBundle",
    "MalformedObject",
    "OpenedBlock",
    "PharmacyKey",
    "PinTagInvalid",
    "RollbackRefused",
    "SignatureInvalid",
    "TombstoneHeader",
    "UnsupportedSuite",
    "UnsupportedVersion",
    "WeakKdfParameters",
    "auth_verifier",
    "binding_mac",
    "canonical_json",
    "check_auth",
    "check_kdf_params",
    "decoy_salt",
    "derive_client_keys",
    "derive_enrollment",
    "enrollment_code_from_secret",
    "enrollment_url",
    "generate_handle_secret",
    "generate_patient_keypair",
    "generate_pharmacy_key",
    "make_batch",
    "make_tombstone",
    "new_batch_id",
    "new_enrollment_code",
    "new_salt",
    "open_block",
    "parse_canonical_json",
    "parse_enrollment_code",
    "parse_json",
    "patient_handle",
    "patient_public_key",
    "pharmacy_id",
    "pin_tag",
    "seal_block",
    "seal_block_from_parts",
    "server_key_share",
    "unwrap_key_bundle",
    "verify_batch",
    "verify_binding",
    "verify_block",
    "verify_pin_tag",
    "verify_tombstone",
    "wrap_key_bundle",
    "wrap_key_bundle_from_parts",
]
