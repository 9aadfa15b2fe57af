"""Account rules shared by the routes and the admin commands: usernames and KDF parameters."""

from __future__ import annotations

import re
import unicodedata

from rxvault.server import _crypto
from rxvault.server._errors import ApiError, invalid_request
from rxvault.server._schemas import Kdf

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@+-]{2,127}$")


def normalize_username(raw: str) -> str:
    """The form usernames are stored and compared in: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", raw).strip().casefold()


def validated_username(raw: str) -> str:
    name = normalize_username(raw)
    if not USERNAME_PATTERN.fullmatch(name):
        raise invalid_request(
            "A username is 3 to 128 characters: letters, digits and . _ @ + - "
            "(starting with a letter or digit).",
            details=[{"field": "username", "problem": "invalid"}],
        )
    return name


def kdf_out(params: _crypto.KdfParams) -> Kdf:
    return Kdf(m=params.memory_kib, t=params.iterations, p=params.parallelism)


def kdf_in(kdf: Kdf) -> _crypto.KdfParams:
    try:
        return _crypto.KdfParams.from_dict(kdf.model_dump())
    except _crypto.WeakKdfParameters:
        raise ApiError(
            422, "weak_kdf", "The password hashing parameters are weaker than the minimum."
        ) from None
    except _crypto.FormatError:
        raise ApiError(
            422, "invalid_kdf", "The password hashing parameters are outside the allowed range."
        ) from None
