"""Password to keys (client side) and the peppered verifier and key share (server side).

Client: ``master = Argon2id(NFC(password), salt, m, t, p, 32)``; ``auth_key`` and ``unlock_key``
are HKDF-SHA256 expansions of it under distinct labels. Only ``auth_key`` leaves the browser.

Server: the pepper (a secret outside the database) is expanded with HKDF into one key per use;
the verifier is an HMAC of the account salt and ``auth_key``; the key share is an HMAC of the
account salt; decoy salts for unknown usernames are an HMAC of the username.
"""

from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from rxvault.format._errors import MalformedObject, UnsupportedVersion, WeakKdfParameters
from rxvault.format._primitives import hkdf_sha256, hmac_sha256, random_bytes

__all__ = [
    "DEFAULT_KDF",
    "KDF_CEILING",
    "KDF_FLOOR",
    "SALT_LENGTH",
    "ClientKeys",
    "KdfParams",
    "auth_verifier",
    "check_auth",
    "check_kdf_params",
    "decoy_salt",
    "derive_client_keys",
    "derive_master_key",
    "new_salt",
    "server_key_share",
]

SALT_LENGTH = 16
KEY_LENGTH = 32
MIN_PEPPER_LENGTH = 32
AUTH_KEY_LABEL = b"rxvault/v1/auth-key"
UNLOCK_KEY_LABEL = b"rxvault/v1/unlock-key"
VERIFIER_KEY_LABEL = b"rxvault/v1/pepper/auth-verifier"
SHARE_KEY_LABEL = b"rxvault/v1/pepper/key-share"
DECOY_KEY_LABEL = b"rxvault/v1/pepper/decoy-salt"


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters (version 0x13, 32-byte output)."""

    memory_kib: int
    iterations: int
    parallelism: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the server stores and sends: ``{"alg", "m", "p", "t"}``."""
        return {
            "alg": "argon2id",
            "m": self.memory_kib,
            "p": self.parallelism,
            "t": self.iterations,
        }

    @classmethod
    def from_dict(cls, value: object) -> KdfParams:
        """Parse and check (:func:`check_kdf_params`) the JSON form."""
        if not isinstance(value, dict) or set(value) != {"alg", "m", "p", "t"}:
            raise MalformedObject('KDF parameters must be {"alg", "m", "p", "t"}')
        if value["alg"] != "argon2id":
            raise UnsupportedVersion(f"KDF algorithm {value['alg']!r} is not supported")
        for name in ("m", "p", "t"):
            if type(value[name]) is not int:
                raise MalformedObject(f"KDF parameter {name} must be an integer")
        params = cls(memory_kib=value["m"], iterations=value["t"], parallelism=value["p"])
        check_kdf_params(params)
        return params


KDF_FLOOR = KdfParams(memory_kib=65536, iterations=3, parallelism=1)
KDF_CEILING = KdfParams(memory_kib=1048576, iterations=16, parallelism=4)
DEFAULT_KDF = KDF_FLOOR


def check_kdf_params(params: KdfParams) -> None:
    """Refuse parameters below the floor (:class:`WeakKdfParameters`) or above the ceiling
    that keeps a phone's browser usable (:class:`MalformedObject`)."""
    if (
        params.memory_kib < KDF_FLOOR.memory_kib
        or params.iterations < KDF_FLOOR.iterations
        or params.parallelism < KDF_FLOOR.parallelism
    ):
        raise WeakKdfParameters(
            f"Argon2id m={params.memory_kib} KiB, t={params.iterations}, "
            f"p={params.parallelism} is below the floor m=65536 KiB, t=3, p=1"
        )
    if (
        params.memory_kib > KDF_CEILING.memory_kib
        or params.iterations > KDF_CEILING.iterations
        or params.parallelism > KDF_CEILING.parallelism
    ):
        raise MalformedObject(
            f"Argon2id m={params.memory_kib} KiB, t={params.iterations}, "
            f"p={params.parallelism} is above the ceiling m=1048576 KiB, t=16, p=4"
        )


@dataclass(frozen=True, repr=False)
class ClientKeys:
    """Keys derived from the password. ``auth_key`` goes to the server; ``unlock_key`` never."""

    auth_key: bytes
    unlock_key: bytes

    def __repr__(self) -> str:
        return "ClientKeys(<secret>)"


def new_salt() -> bytes:
    return random_bytes(SALT_LENGTH)


def _check_salt(salt: bytes) -> None:
    if len(salt) != SALT_LENGTH:
        raise ValueError(f"an account salt is {SALT_LENGTH} bytes")


def derive_master_key(password: str, salt: bytes, params: KdfParams) -> bytes:
    """Argon2id over the NFC-normalised UTF-8 password (refuses weak parameters)."""
    check_kdf_params(params)
    _check_salt(salt)
    if not password:
        raise ValueError("the password must not be empty")
    kdf = Argon2id(
        salt=salt,
        length=KEY_LENGTH,
        iterations=params.iterations,
        lanes=params.parallelism,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(unicodedata.normalize("NFC", password).encode("utf-8"))


def client_keys_from_master(master_key: bytes) -> ClientKeys:
    return ClientKeys(
        auth_key=hkdf_sha256(master_key, info=AUTH_KEY_LABEL, length=KEY_LENGTH),
        unlock_key=hkdf_sha256(master_key, info=UNLOCK_KEY_LABEL, length=KEY_LENGTH),
    )


def derive_client_keys(password: str, salt: bytes, params: KdfParams) -> ClientKeys:
    return client_keys_from_master(derive_master_key(password, salt, params))


def _pepper_key(pepper: bytes, label: bytes) -> bytes:
    if len(pepper) < MIN_PEPPER_LENGTH:
        raise ValueError(f"the pepper must be at least {MIN_PEPPER_LENGTH} bytes")
    return hkdf_sha256(pepper, info=label, length=KEY_LENGTH)


def auth_verifier(pepper: bytes, account_salt: bytes, auth_key: bytes) -> bytes:
    """The value the server stores: HMAC(pepper verifier key, salt || auth_key)."""
    _check_salt(account_salt)
    if len(auth_key) != KEY_LENGTH:
        raise MalformedObject(f"an auth key is {KEY_LENGTH} bytes")
    return hmac_sha256(_pepper_key(pepper, VERIFIER_KEY_LABEL), account_salt + auth_key)


def check_auth(pepper: bytes, account_salt: bytes, auth_key: bytes, stored_verifier: bytes) -> bool:
    """Constant-time comparison of the recomputed verifier with the stored one."""
    if len(auth_key) != KEY_LENGTH:
        return False
    expected = auth_verifier(pepper, account_salt, auth_key)
    return hmac.compare_digest(expected, stored_verifier)


def server_key_share(pepper: bytes, account_salt: bytes) -> bytes:
    """The server's 32-byte share of the key-bundle key; given only to a logged-in session."""
    _check_salt(account_salt)
    return hmac_sha256(_pepper_key(pepper, SHARE_KEY_LABEL), account_salt)


def decoy_salt(pepper: bytes, username: str) -> bytes:
    """A stable salt for a username with no account, so pre-login answers look alike."""
    return hmac_sha256(_pepper_key(pepper, DECOY_KEY_LABEL), username.encode("utf-8"))[:SALT_LENGTH]
