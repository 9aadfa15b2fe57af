"""Opaque secrets handed to clients (API tokens, session ids): random, stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets

API_TOKEN_PREFIX = "rxvat_"  # noqa: S105 - a public marker, not a secret
#: What an agent token may do. ``rxvault server tokens create`` grants all of them by default.
SCOPES = ("pharmacy-key", "enroll", "directory", "upload")


def hash_secret(text: str) -> str:
    """SHA-256 of a high-entropy secret (256 random bits: no pepper or slow hash is needed)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_api_token() -> tuple[str, str, str]:
    """A new agent API token: (the token, shown once; its hash; a display prefix)."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_secret(token), token[: len(API_TOKEN_PREFIX) + 6]


def new_session_token() -> tuple[str, str, str]:
    """A new session: (the cookie value, 256 random bits; its hash; a public id for listing)."""
    token = secrets.token_urlsafe(32)
    return token, hash_secret(token), secrets.token_hex(8)


def parse_scopes(text: str) -> tuple[str, ...]:
    """Scopes from a comma- or space-separated list; raises ValueError naming an unknown one."""
    scopes = tuple(dict.fromkeys(s for s in text.replace(",", " ").split() if s))
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r} (known: {', '.join(SCOPES)})")
    if not scopes:
        raise ValueError("at least one scope is needed")
    return scopes
