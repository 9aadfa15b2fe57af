"""Errors raised by :mod:`rxvault.format`.

Every error is a :class:`FormatError`; callers that only need "this object is not acceptable"
catch that. The tree::

    FormatError
    ├── DecryptionFailed        a secret-bearing object did not authenticate or decode
    ├── SignatureInvalid        a pharmacy signature does not verify (or is for another pharmacy)
    ├── MalformedObject         a public object cannot be parsed
    ├── UnsupportedVersion      an object's version is not one this code knows
    │   └── UnsupportedSuite    a block names an algorithm suite this code does not implement
    ├── WeakKdfParameters       Argon2id parameters below the floor
    ├── InvalidEnrollmentCode   a typed or scanned enrollment code is wrong (check character, ...)
    ├── BindingInvalid          a patient key binding does not verify
    ├── PinTagInvalid           a pin tag does not match the pharmacy key
    ├── HandleMismatch          a block or tombstone is for another patient handle
    ├── RollbackRefused         a block's version (or a statement's seq) is lower than one seen
    ├── InclusionInvalid        an inclusion proof does not lead to a sync statement's root
    ├── WithholdingDetected     the server serves an older version than its statement proves
    └── DocumentTooLarge        a document does not fit the largest padding bucket

``DecryptionFailed`` deliberately carries no detail: a wrong key, a flipped bit, bad padding and
a corrupt compressed stream all look the same to the caller (and to an attacker).
"""

from __future__ import annotations

__all__ = [
    "BindingInvalid",
    "DecryptionFailed",
    "DocumentTooLarge",
    "FormatError",
    "HandleMismatch",
    "InclusionInvalid",
    "InvalidEnrollmentCode",
    "MalformedObject",
    "PinTagInvalid",
    "RollbackRefused",
    "SignatureInvalid",
    "UnsupportedSuite",
    "UnsupportedVersion",
    "WeakKdfParameters",
    "WithholdingDetected",
]


class FormatError(Exception):
    """Base class of every error raised by :mod:`rxvault.format`."""


class DecryptionFailed(FormatError):
    """A sealed block or key bundle failed to authenticate or decode. Carries no detail."""

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class SignatureInvalid(FormatError):
    """A pharmacy signature does not verify with the expected pharmacy key."""


class MalformedObject(FormatError):
    """A public object (header, tombstone, batch, parameters) cannot be parsed."""


class UnsupportedVersion(FormatError):
    """An object starts with a version (or kind) this implementation does not know."""


class UnsupportedSuite(UnsupportedVersion):
    """A block header names an algorithm suite this implementation does not implement."""


class WeakKdfParameters(FormatError):
    """Argon2id parameters are below the floor (m = 64 MiB, t = 3, p = 1)."""


class InvalidEnrollmentCode(FormatError):
    """An enrollment code has the wrong length, a bad symbol, version or check character."""


class BindingInvalid(FormatError):
    """A binding MAC over a patient's public key and handle does not verify."""


class PinTagInvalid(FormatError):
    """A pin tag does not match the pharmacy public key it is supposed to pin."""


class HandleMismatch(FormatError):
    """A correctly signed object is for another patient handle than the one expected."""


class RollbackRefused(FormatError):
    """A block's version counter is lower than one already seen for that handle."""


class InclusionInvalid(FormatError):
    """An inclusion proof does not show the leaf in the tree a sync statement signs."""


class WithholdingDetected(FormatError):
    """A signed sync statement proves a newer version than the one the server serves."""


class DocumentTooLarge(FormatError):
    """A document does not fit in the largest padding bucket even after compression."""
