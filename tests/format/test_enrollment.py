"""Enrollment codes, their derived values, bindings and pin tags; patient handles and ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault import format as fmt
from rxvault.format._enrollment import CODE_ALPHABET

from .strategies import keys32

secrets = st.binary(min_size=16, max_size=16)


@settings(max_examples=200)
@given(secrets)
def test_code_text_round_trips_in_every_typed_form(secret: bytes) -> None:
    code = fmt.enrollment_code_from_secret(secret)
    text = code.text
    assert len(text) == 34
    assert [len(group) for group in text.split("-")] == [4] * 7
    assert text[0] == "1"
    assert set(text.replace("-", "")) <= set(CODE_ALPHABET)
    for typed in (text, text.lower(), text.replace("-", " "), code.compact, f"  {text}\n"):
        assert fmt.parse_enrollment_code(typed) == code
    looks = code.compact.replace("0", "o").replace("1", "l")
    assert fmt.parse_enrollment_code(looks) == code


@settings(max_examples=100)
@given(secrets, st.integers(0, 27), st.sampled_from(CODE_ALPHABET))
def test_any_single_mistyped_symbol_is_refused(secret: bytes, position: int, symbol: str) -> None:
    compact = fmt.enrollment_code_from_secret(secret).compact
    if compact[position] == symbol:
        return
    typo = compact[:position] + symbol + compact[position + 1 :]
    with pytest.raises(fmt.InvalidEnrollmentCode):
        fmt.parse_enrollment_code(typo)


@settings(max_examples=100)
@given(secrets, st.integers(1, 26))
def test_adjacent_swaps_are_refused_except_the_documented_blind_spot(
    secret: bytes, position: int
) -> None:
    compact = fmt.enrollment_code_from_secret(secret).compact
    a, b = compact[position], compact[position + 1]
    if a == b or {a, b} == {"0", "Z"}:
        return
    swapped = compact[:position] + b + a + compact[position + 2 :]
    with pytest.raises(fmt.InvalidEnrollmentCode):
        fmt.parse_enrollment_code(swapped)


def test_new_codes_are_random() -> None:
    codes = {fmt.new_enrollment_code().secret for _ in range(50)}
    assert len(codes) == 50
    assert "secret" not in repr(fmt.new_enrollment_code()).replace("<secret>", "")


def test_url_carries_the_code_in_the_fragment_only() -> None:
    code = fmt.enrollment_code_from_secret(bytes(range(16)))
    url = fmt.enrollment_url("https://portal.example/register", code)
    assert url == f"https://portal.example/register#enroll={code.compact}"
    for bad in ("portal.example/register", "ftp://portal.example/", "https://p.example/#x"):
        with pytest.raises(ValueError, match="portal URL"):
            fmt.enrollment_url(bad, code)


@settings(max_examples=50)
@given(secrets, secrets)
def test_derived_values_are_distinct_and_bound_to_the_code(first: bytes, second: bytes) -> None:
    a = fmt.derive_enrollment(fmt.enrollment_code_from_secret(first))
    b = fmt.derive_enrollment(fmt.enrollment_code_from_secret(second))
    assert len({a.binding_key, a.pin_key}) == 2
    assert len(a.lookup_id) == 32
    assert (a.lookup_id == b.lookup_id) == (first == second)
    assert a.binding_key.hex() not in repr(a)


@settings(max_examples=50)
@given(secrets, keys32, keys32)
def test_binding_verifies_only_for_its_key_and_handle(
    secret: bytes, key_a: bytes, key_b: bytes
) -> None:
    binding_key = fmt.derive_enrollment(fmt.enrollment_code_from_secret(secret)).binding_key
    handle, other_handle = "aa" * 16, "bb" * 16
    mac = fmt.binding_mac(binding_key, handle, key_a)
    fmt.verify_binding(binding_key, handle, key_a, mac)
    if key_b != key_a:
        with pytest.raises(fmt.BindingInvalid):
            fmt.verify_binding(binding_key, handle, key_b, mac)
    with pytest.raises(fmt.BindingInvalid):
        fmt.verify_binding(binding_key, other_handle, key_a, mac)
    with pytest.raises(fmt.BindingInvalid):
        fmt.verify_binding(binding_key, handle, key_a, mac[:-1])


@settings(max_examples=50)
@given(secrets, keys32, keys32)
def test_pin_tag_verifies_only_for_its_pharmacy_key(
    secret: bytes, key_a: bytes, key_b: bytes
) -> None:
    code = fmt.enrollment_code_from_secret(secret)
    tag = fmt.pin_tag(code, key_a)
    fmt.verify_pin_tag(code, key_a, tag)
    if key_b != key_a:
        with pytest.raises(fmt.PinTagInvalid):
            fmt.verify_pin_tag(code, key_b, tag)
    with pytest.raises(fmt.PinTagInvalid):
        fmt.verify_pin_tag(code, key_a[:31], tag)


# --------------------------------------------------------------------------- identifiers


@settings(max_examples=100)
@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30))
def test_handles_are_32_hex_digits_and_keyed(patient_id: str) -> None:
    handle = fmt.patient_handle(b"\x01" * 32, patient_id)
    assert len(handle) == 32
    assert int(handle, 16) >= 0
    assert handle == handle.lower()
    assert handle != fmt.patient_handle(b"\x02" * 32, patient_id)
    assert handle != fmt.patient_handle(b"\x01" * 32, patient_id + " ")


def test_handle_arguments_are_checked() -> None:
    with pytest.raises(UnicodeEncodeError):
        fmt.patient_handle(bytes(32), "lone \ud800 surrogate")
    with pytest.raises(ValueError, match="32 bytes"):
        fmt.patient_handle(b"short", "1")
    with pytest.raises(ValueError, match="empty"):
        fmt.patient_handle(bytes(32), "")
    assert len({fmt.generate_handle_secret() for _ in range(10)}) == 10


def test_pharmacy_keys_round_trip_and_hide_the_private_half() -> None:
    key = fmt.generate_pharmacy_key()
    again = fmt.PharmacyKey.from_private_bytes(key.private_bytes())
    assert again.public_bytes() == key.public_bytes()
    assert again.pharmacy_id == fmt.pharmacy_id(key.public_bytes())
    assert key.private_bytes().hex() not in repr(key)
    private, public = fmt.generate_patient_keypair()
    assert fmt.patient_public_key(private) == public
    with pytest.raises(ValueError, match="32 bytes"):
        fmt.pharmacy_id(b"short")
