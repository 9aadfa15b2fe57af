"""The shortcuts of the header codec give exactly what the general canonical JSON path gives:
the same bytes when encoding, the same value or a refusal when decoding, the same times."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rxvault import format as fmt
from rxvault.format import _codec
from rxvault.format._canonical import MAX_SAFE_INTEGER

from .strategies import json_text, json_values

_ascii = st.text(st.characters(max_codepoint=0x7F), max_size=12)
_flat_values = (
    _ascii
    | json_text
    | st.integers(-(2**60), 2**60)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_flat = st.dictionaries(_ascii | json_text, _flat_values, max_size=7)

HEADER = {
    "as_of": "2026-12-04T09:30:00Z",
    "handle": "eed20bd4c165e2b7f4e09e4b44b43d1f",
    "padded_length": 8192,
    "pharmacy_id": "3805eb973f508b0240c6631912e2bdb4",
    "suite": "HPKE-X25519-SHA256-A128GCM+Ed25519+zlib",
    "version": 1,
}


def _general(body: bytes) -> tuple[str, object]:
    try:
        return "ok", fmt.parse_canonical_json(body)
    except fmt.MalformedObject:
        return "refused", None


def _shortcut(body: bytes) -> tuple[str, object]:
    try:
        return "ok", _codec._parse_header(body)
    except fmt.MalformedObject:
        return "refused", None


@settings(max_examples=300)
@given(_flat)
@example(HEADER)
@example({"a": '\x00\x1f\x7f"\\\b\f\n\r\t/', "b": -(2**53) + 1, "c": 2**53 - 1})
def test_encode_header_is_canonical_json(fields: dict[str, object]) -> None:
    try:
        expected = fmt.canonical_json(fields)
    except ValueError:
        with pytest.raises(ValueError, match="canonical JSON"):
            _codec.encode_header(fields)
        return
    if len(expected) > _codec.MAX_HEADER_LENGTH:
        return
    assert _codec.encode_header(fields) == len(expected).to_bytes(2, "big") + expected


def _variants(fields: dict[str, object]) -> list[bytes]:
    """The canonical bytes and near misses: spacing, escapes, duplicates, floats, order."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    out = [body.encode("utf-8", "surrogatepass")]
    out.append(json.dumps(fields, sort_keys=True).encode("utf-8", "surrogatepass"))
    out.append(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    out.append(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if len(body) > 2:
        first = body[1:].split(",", 1)[0]
        out.append(("{" + first + "," + body[1:]).encode("utf-8"))  # a duplicate member
        out.append(body.replace(":1,", ":1.0,").replace(":1}", ":1e0}").encode("utf-8"))
        out.append(body.replace('"', "'", 2).encode("utf-8"))
    return out


@settings(max_examples=300)
@given(_flat.filter(lambda d: all(type(v) in (str, int) for v in d.values())))
@example(HEADER)
@example({"a": 1, "b": "x"})
def test_parse_header_agrees_with_the_general_path(fields: dict[str, object]) -> None:
    for body in _variants(fields):
        assert _shortcut(body) == _general(body), body


@settings(max_examples=200)
@given(json_values)
def test_parse_header_agrees_on_any_json(value: object) -> None:
    body = fmt.canonical_json(value)
    assert _shortcut(body) == _general(body)
    result = _shortcut(body)[1]
    assert fmt.canonical_json(result) == body  # booleans stay booleans, not 1 and 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"a":1}',
        b'{"a":1.0}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":true}',
        b'{"a":"\\u0041"}',
        b'{"a":"\\u001f"}',
        b'{"a":"\\ud800"}',
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'{"a":9007199254740992}',
        b'{"a":-0}',
        b'{"a":01}',
        b"[" * 1024,
        b"[" * 500 + b"]" * 500,
        b'{"a":1}\n',
        b"\xef\xbb\xbf{}",
        b"",
    ],
)
def test_parse_header_refuses_what_the_general_path_refuses(body: bytes) -> None:
    assert _shortcut(body) == _general(body)


@settings(max_examples=200)
@given(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z"))
@example("2024-02-29T23:59:59Z")
@example("2023-02-29T00:00:00Z")
@example("2026-12-04T09:30:60Z")
@example("0000-01-01T00:00:00Z")
@example("1969-12-31T23:59:59Z")
def test_parse_time_agrees_with_strptime(text: str) -> None:
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        expected: datetime | None = moment if moment.year >= 1970 else None
    except ValueError:
        expected = None
    try:
        got: datetime | None = _codec.parse_time(text, "as_of", "block")
    except fmt.MalformedObject:
        got = None
    assert got == expected


def test_parse_time_values() -> None:
    assert _codec.parse_time("2026-12-04T09:30:05Z", "t", "x") == datetime(
        2026, 12, 4, 9, 30, 5, tzinfo=UTC
    )
    for bad in ("2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z"):
        with pytest.raises(fmt.MalformedObject, match="not a valid date"):
            _codec.parse_time(bad, "t", "x")


def test_counters_at_the_limits_take_the_shortcut_and_beyond_do_not() -> None:
    assert _codec._flat_canonical({"v": MAX_SAFE_INTEGER}) == '{"v":9007199254740991}'
    assert _codec._flat_canonical({"v": MAX_SAFE_INTEGER + 1}) is None
    assert _codec._flat_canonical({"v": True}) is None
    assert _codec._flat_canonical({"v": "é"}) is None
