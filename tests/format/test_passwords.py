"""Passwords to keys, the server's peppered values, and the key bundle."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault import format as fmt
from rxvault.format import _kdf

from .strategies import keys32

PEPPER = b"\x42" * 32
SALT = bytes(range(16))


def test_floor_derivation_matches_an_independent_argon2id() -> None:
    """One real Argon2id at the floor, against the primitive called directly."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    password = "Cafe\u0301 au lait"
    keys = fmt.derive_client_keys(password, SALT, fmt.DEFAULT_KDF)
    master = Argon2id(salt=SALT, length=32, iterations=3, lanes=1, memory_cost=65536).derive(
        unicodedata.normalize("NFC", password).encode()
    )
    assert keys == _kdf.client_keys_from_master(master)
    assert keys.auth_key != keys.unlock_key
    assert "auth" not in repr(keys)
    assert keys.auth_key.hex() not in repr(keys)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (fmt.KdfParams(65535, 3, 1), fmt.WeakKdfParameters),
        (fmt.KdfParams(65536, 2, 1), fmt.WeakKdfParameters),
        (fmt.KdfParams(65536, 3, 0), fmt.WeakKdfParameters),
        (fmt.KdfParams(2**21, 3, 1), fmt.MalformedObject),
    ],
)
def test_weak_parameters_are_refused_before_any_hashing(
    params: fmt.KdfParams, error: type[Exception]
) -> None:
    with pytest.raises(error):
        fmt.derive_client_keys("password", SALT, params)


@given(m=st.integers(0, 2**22), t=st.integers(0, 40), p=st.integers(0, 10))
def test_parameter_check_is_exactly_the_floor_and_ceiling(m: int, t: int, p: int) -> None:
    params = fmt.KdfParams(memory_kib=m, iterations=t, parallelism=p)
    if m < 65536 or t < 3 or p < 1:
        with pytest.raises(fmt.WeakKdfParameters):
            fmt.check_kdf_params(params)
    elif m > 1048576 or t > 16 or p > 4:
        with pytest.raises(fmt.MalformedObject):
            fmt.check_kdf_params(params)
    else:
        fmt.check_kdf_params(params)
        assert fmt.KdfParams.from_dict(params.to_dict()) == params


def test_salts_are_random_and_sized() -> None:
    salts = {fmt.new_salt() for _ in range(20)}
    assert len(salts) == 20
    assert {len(s) for s in salts} == {16}
    with pytest.raises(ValueError, match="salt"):
        fmt.derive_client_keys("password", b"short", fmt.DEFAULT_KDF)
    with pytest.raises(ValueError, match="empty"):
        fmt.derive_client_keys("", SALT, fmt.DEFAULT_KDF)


@settings(max_examples=50)
@given(auth_key=keys32, other=keys32, salt=st.binary(min_size=16, max_size=16))
def test_verifier_accepts_only_the_right_auth_key(
    auth_key: bytes, other: bytes, salt: bytes
) -> None:
    verifier = fmt.auth_verifier(PEPPER, salt, auth_key)
    assert fmt.check_auth(PEPPER, salt, auth_key, verifier)
    assert fmt.check_auth(PEPPER, salt, other, verifier) == (other == auth_key)
    assert not fmt.check_auth(b"\x43" * 32, salt, auth_key, verifier)
    assert not fmt.check_auth(PEPPER, salt, auth_key[:31], verifier)
    assert verifier != fmt.server_key_share(PEPPER, salt)


def test_pepper_values_are_distinct_and_need_a_long_pepper() -> None:
    share = fmt.server_key_share(PEPPER, SALT)
    assert share != fmt.server_key_share(PEPPER, bytes(16))
    assert share != fmt.server_key_share(b"\x43" * 32, SALT)
    assert fmt.decoy_salt(PEPPER, "nobody") == fmt.decoy_salt(PEPPER, "nobody")
    assert fmt.decoy_salt(PEPPER, "nobody") != fmt.decoy_salt(PEPPER, "somebody")
    assert len(fmt.decoy_salt(PEPPER, "nobody")) == 16
    with pytest.raises(ValueError, match="pepper"):
        fmt.server_key_share(b"short", SALT)
    with pytest.raises(fmt.MalformedObject):
        fmt.auth_verifier(PEPPER, SALT, b"\x00" * 31)


# --------------------------------------------------------------------------- key bundle

_PHARMACY_PUBLIC = fmt.PharmacyKey.from_private_bytes(bytes(range(32))).public_bytes()


@settings(max_examples=50)
@given(
    unlock=keys32,
    share=keys32,
    private=keys32,
    account=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40),
)
def test_bundle_round_trip(unlock: bytes, share: bytes, private: bytes, account: str) -> None:
    bundle = fmt.wrap_key_bundle(
        unlock_key=unlock,
        server_share=share,
        account=account,
        patient_private_key=private,
        pharmacy_public_key=_PHARMACY_PUBLIC,
    )
    assert len(bundle) == 128
    result = fmt.unwrap_key_bundle(bundle, unlock_key=unlock, server_share=share, account=account)
    assert result.patient_private_key == private
    assert result.patient_public_key == fmt.patient_public_key(private)
    assert result.pharmacy_public_key == _PHARMACY_PUBLIC
    assert private.hex() not in repr(result)
    with pytest.raises(fmt.DecryptionFailed):
        fmt.unwrap_key_bundle(bundle, unlock_key=unlock, server_share=share, account=account + "x")


_UNLOCK, _SHARE = b"\x01" * 32, b"\x02" * 32
_BUNDLE = fmt.wrap_key_bundle(
    unlock_key=_UNLOCK,
    server_share=_SHARE,
    account="jane",
    patient_private_key=b"\x77" * 32,
    pharmacy_public_key=_PHARMACY_PUBLIC,
)


@settings(max_examples=100)
@given(position=st.integers(0, len(_BUNDLE) - 1), mask=st.integers(1, 255))
def test_bundle_any_byte_change_is_decryption_failed(position: int, mask: int) -> None:
    mutated = bytearray(_BUNDLE)
    mutated[position] ^= mask
    with pytest.raises(fmt.DecryptionFailed) as info:
        fmt.unwrap_key_bundle(
            bytes(mutated), unlock_key=_UNLOCK, server_share=_SHARE, account="jane"
        )
    assert str(info.value) == "decryption failed"


def test_bundle_needs_both_the_password_and_the_server_share() -> None:
    for unlock, share in ((b"\x03" * 32, _SHARE), (_UNLOCK, b"\x03" * 32)):
        with pytest.raises(fmt.DecryptionFailed):
            fmt.unwrap_key_bundle(_BUNDLE, unlock_key=unlock, server_share=share, account="jane")
    with pytest.raises(fmt.DecryptionFailed):
        fmt.unwrap_key_bundle(_BUNDLE, unlock_key=_UNLOCK[:16], server_share=_SHARE, account="jane")
