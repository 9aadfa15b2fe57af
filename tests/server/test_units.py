"""Small pure pieces of the server: addresses behind proxies, usernames, tokens, base64url."""

from __future__ import annotations

import pytest

from rxvault.server._accounts import normalize_username
from rxvault.server._errors import ApiError
from rxvault.server._http import client_address, content_security_policy
from rxvault.server._schemas import b64decode, b64encode
from rxvault.server._tokens import hash_secret, new_api_token, new_session_token, parse_scopes


def _scope(peer: str, forwarded: str | None = None) -> dict:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 1234), "headers": headers}


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    assert client_address(_scope("10.0.0.5", "198.51.100.9"), ()) == "10.0.0.5"
    assert client_address(_scope("10.0.0.5", "198.51.100.9"), ("10.0.0.5",)) == "198.51.100.9"
    # The proxy appends the real peer last; earlier entries are the client's own claims.
    assert client_address(_scope("10.0.0.5", "1.2.3.4, 198.51.100.9"), ("10.0.0.5",)) == (
        "198.51.100.9"
    )
    assert client_address(_scope("10.0.0.5", "not-an-ip"), ("10.0.0.5",)) == "10.0.0.5"


def test_usernames_are_compared_in_one_form() -> None:
    assert normalize_username("  Alice.Example ") == "alice.example"
    full_width = "".join(chr(0xFF21 + ord(c) - ord("A")) for c in "ALICE")
    assert normalize_username(full_width) == "alice"  # NFKC folds full-width letters


def test_tokens_are_random_and_stored_hashed() -> None:
    token, token_hash, prefix = new_api_token()
    assert token.startswith("rxvat_")
    assert token.startswith(prefix)
    assert hash_secret(token) == token_hash
    assert token not in token_hash
    assert new_api_token()[0] != token
    session, session_hash, public_id = new_session_token()
    assert len(session) >= 43
    assert len(public_id) == 16
    assert hash_secret(session) == session_hash


def test_scopes_are_checked() -> None:
    assert parse_scopes("upload, directory upload") == ("upload", "directory")
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes("admin")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(" , ")


def test_base64url_round_trip_and_refusals() -> None:
    for value in (b"", b"\0", b"\xff" * 31, bytes(range(256))):
        assert b64decode(b64encode(value)) == value
        assert "=" not in b64encode(value)
    assert b64decode("AAA=") == b"\0\0"
    for bad in ("A", "a+b/", 12):
        with pytest.raises(ValueError, match="base64url"):
            b64decode(bad)


def test_csp_has_no_inline_script() -> None:
    csp = content_security_policy("'none'")
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp.replace("'wasm-unsafe-eval'", "")
    assert isinstance(ApiError(400, "x", "y"), Exception)
