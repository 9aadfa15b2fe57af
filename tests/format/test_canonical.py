"""Canonical JSON: round trips, agreement with the standard library, and refusals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault import format as fmt

from .strategies import json_text, json_values


@settings(max_examples=100)
@given(json_values)
def test_round_trip(value: object) -> None:
    encoded = fmt.canonical_json(value)
    assert fmt.parse_canonical_json(encoded) == value
    assert fmt.canonical_json(json.loads(encoded)) == encoded


_bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=12)
_bmp_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _bmp_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_bmp_text, children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=100)
@given(st.dictionaries(_bmp_text, _bmp_values, max_size=6))
def test_matches_sorted_compact_json_for_bmp_names(value: dict[str, object]) -> None:
    # For names without astral characters, UTF-16 order is code point order, so the stdlib's
    # sort_keys output (with JCS's escaping rules, which Python's ensure_ascii=False shares)
    # must be identical.
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert fmt.canonical_json(value) == expected.encode("utf-8")


@settings(max_examples=50)
@given(json_values.filter(lambda v: isinstance(v, dict | list) and len(v) > 0))
def test_whitespace_is_refused(value: object) -> None:
    spaced = json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")
    with pytest.raises(fmt.MalformedObject):
        fmt.parse_canonical_json(spaced)


def test_utf16_order_differs_from_code_point_order() -> None:
    assert (
        fmt.canonical_json({"\uff61": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\uff61":1}'.encode()
    )


@pytest.mark.parametrize(
    "value",
    [1.5, float("nan"), 2**53, -(2**53), {1: "x"}, b"bytes", "\ud800", {"a": {1, 2}}],
)
def test_values_outside_the_subset_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="canonical JSON"):
        fmt.canonical_json(value)


def test_depth_limit() -> None:
    deep: object = []
    for _ in range(70):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        fmt.canonical_json(deep)


@given(json_text)
def test_strings_escape_only_what_jcs_escapes(text: str) -> None:
    encoded = fmt.canonical_json(text).decode("utf-8")
    inner = encoded[1:-1]
    assert all(ord(ch) >= 0x20 for ch in inner)
    assert json.loads(encoded) == text
