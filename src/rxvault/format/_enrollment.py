"""Enrollment codes and everything derived from them.

A code is 128 random bits written for typing: a version symbol ``1``, 26 symbols of Crockford
base32 (the secret as a big-endian integer), and one Luhn mod 32 check symbol, shown as seven
groups of four (``1ABC-DEFG-...``). From the secret, HKDF-SHA256 with distinct labels gives the
lookup id (sent to the server), the binding key (kept by the agent) and the pin key (gives the
tag over the pharmacy's public key that the browser checks).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from rxvault.format._codec import check_handle
from rxvault.format._errors import BindingInvalid, InvalidEnrollmentCode, PinTagInvalid
from rxvault.format._primitives import hkdf_sha256, hmac_sha256, random_bytes

__all__ = [
    "CODE_ALPHABET",
    "EnrollmentCode",
    "EnrollmentSecrets",
    "binding_mac",
    "derive_enrollment",
    "enrollment_code_from_secret",
    "enrollment_url",
    "new_enrollment_code",
    "parse_enrollment_code",
    "pin_tag",
    "verify_binding",
    "verify_pin_tag",
]

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_VERSION = "1"
SECRET_LENGTH = 16
_DATA_SYMBOLS = 26
_CODE_SYMBOLS = 1 + _DATA_SYMBOLS + 1
_GROUP = 4
_LOOKALIKES = {"O": "0", "I": "1", "L": "1"}
_IGNORED = " -\t\r\n"
URL_FRAGMENT_KEY = "enroll"

LOOKUP_ID_LABEL = b"rxvault/v1/enrollment/lookup-id"
BINDING_KEY_LABEL = b"rxvault/v1/enrollment/binding-key"
PIN_KEY_LABEL = b"rxvault/v1/enrollment/pin-key"
BINDING_MAC_LABEL = b"rxvault/v1/binding\x00"
PIN_TAG_LABEL = b"rxvault/v1/pin-tag\x00"


def _check_symbol(symbols: str) -> str:
    """Luhn mod 32 over ``symbols`` (version and data): the symbol that makes the sum 0."""
    total = 0
    factor = 2
    for symbol in reversed(symbols):
        addend = factor * CODE_ALPHABET.index(symbol)
        total += addend // 32 + addend % 32
        factor = 3 - factor
    return CODE_ALPHABET[(32 - total % 32) % 32]


@dataclass(frozen=True, repr=False)
class EnrollmentCode:
    """An enrollment code; ``secret`` is the 16 random bytes everything is derived from."""

    secret: bytes

    @property
    def compact(self) -> str:
        """The 28 symbols without separators (used in the URL fragment)."""
        value = int.from_bytes(self.secret, "big")
        data = "".join(
            CODE_ALPHABET[(value >> (5 * (_DATA_SYMBOLS - 1 - i))) & 31]
            for i in range(_DATA_SYMBOLS)
        )
        body = CODE_VERSION + data
        return body + _check_symbol(body)

    @property
    def text(self) -> str:
        """Grouped for typing: seven groups of four symbols joined by ``-``."""
        compact = self.compact
        return "-".join(compact[i : i + _GROUP] for i in range(0, len(compact), _GROUP))

    def __repr__(self) -> str:
        return "EnrollmentCode(<secret>)"


def enrollment_code_from_secret(secret: bytes) -> EnrollmentCode:
    if len(secret) != SECRET_LENGTH:
        raise ValueError(f"an enrollment secret is {SECRET_LENGTH} bytes")
    return EnrollmentCode(secret=bytes(secret))


def new_enrollment_code() -> EnrollmentCode:
    return enrollment_code_from_secret(random_bytes(SECRET_LENGTH))


def parse_enrollment_code(text: str) -> EnrollmentCode:
    """Parse a typed or scanned code: case, spaces, dashes and O/I/L look-alikes forgiven.

    A pasted QR URL is accepted too: only what follows ``#enroll=`` is parsed.
    """
    marker = f"#{URL_FRAGMENT_KEY}="
    if marker in text:
        text = text.split(marker, 1)[1]
    symbols = []
    for typed in text.upper():
        if typed in _IGNORED:
            continue
        symbol = _LOOKALIKES.get(typed, typed)
        if symbol not in CODE_ALPHABET:
            raise InvalidEnrollmentCode(f"enrollment code: {typed!r} is not a code symbol")
        symbols.append(symbol)
    compact = "".join(symbols)
    if len(compact) != _CODE_SYMBOLS:
        raise InvalidEnrollmentCode(
            f"enrollment code: {len(compact)} symbols, expected {_CODE_SYMBOLS}"
        )
    if compact[0] != CODE_VERSION:
        raise InvalidEnrollmentCode(f"enrollment code: unknown code version {compact[0]!r}")
    if _check_symbol(compact[:-1]) != compact[-1]:
        raise InvalidEnrollmentCode("enrollment code: check symbol does not match (a typo?)")
    value = 0
    for symbol in compact[1:-1]:
        value = value * 32 + CODE_ALPHABET.index(symbol)
    if value >> (8 * SECRET_LENGTH):
        raise InvalidEnrollmentCode("enrollment code: value out of range")
    return EnrollmentCode(secret=value.to_bytes(SECRET_LENGTH, "big"))


def enrollment_url(base_url: str, code: EnrollmentCode) -> str:
    """The QR payload: ``base_url`` + ``#enroll=`` + the compact code (never sent in requests)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"portal URL {base_url!r} must be an absolute http(s) URL")
    if parts.fragment or base_url.endswith("#"):
        raise ValueError(f"portal URL {base_url!r} must not have a fragment")
    return f"{base_url}#{URL_FRAGMENT_KEY}={code.compact}"


@dataclass(frozen=True, repr=False)
class EnrollmentSecrets:
    lookup_id: str
    binding_key: bytes
    pin_key: bytes

    def __repr__(self) -> str:
        return f"EnrollmentSecrets(lookup_id={self.lookup_id!r})"


def derive_enrollment(code: EnrollmentCode) -> EnrollmentSecrets:
    return EnrollmentSecrets(
        lookup_id=hkdf_sha256(code.secret, info=LOOKUP_ID_LABEL, length=16).hex(),
        binding_key=hkdf_sha256(code.secret, info=BINDING_KEY_LABEL, length=32),
        pin_key=hkdf_sha256(code.secret, info=PIN_KEY_LABEL, length=32),
    )


def pin_tag(code: EnrollmentCode, pharmacy_public_key: bytes) -> bytes:
    """HMAC(pin key, label || pharmacy public key): lets the browser check the key it pins."""
    if len(pharmacy_public_key) != 32:
        raise ValueError("a pharmacy public key is 32 bytes")
    return hmac_sha256(derive_enrollment(code).pin_key, PIN_TAG_LABEL + pharmacy_public_key)


def verify_pin_tag(code: EnrollmentCode, pharmacy_public_key: bytes, tag: bytes) -> None:
    if len(pharmacy_public_key) != 32 or not hmac.compare_digest(
        pin_tag(code, pharmacy_public_key), tag
    ):
        raise PinTagInvalid("the pharmacy key does not match this enrollment code")


def binding_mac(binding_key: bytes, handle: str, patient_public_key: bytes) -> bytes:
    """HMAC(binding key, label || handle (32 ASCII) || patient X25519 public key (32))."""
    check_handle(handle)
    if len(binding_key) != 32:
        raise ValueError("a binding key is 32 bytes")
    if len(patient_public_key) != 32:
        raise ValueError("a patient public key is 32 bytes")
    return hmac_sha256(binding_key, BINDING_MAC_LABEL + handle.encode("ascii") + patient_public_key)


def verify_binding(binding_key: bytes, handle: str, patient_public_key: bytes, mac: bytes) -> None:
    if len(patient_public_key) != 32 or not hmac.compare_digest(
        binding_mac(binding_key, handle, patient_public_key), mac
    ):
        raise BindingInvalid("the patient key is not bound to this enrollment and handle")
