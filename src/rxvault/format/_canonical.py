"""Canonical JSON (spec: docs/spec/canonical-json.md).

A strict subset of RFC 8785 (JCS): UTF-8, no insignificant whitespace, object members sorted by
the UTF-16 code units of their names, integers only (|n| <= 2**53 - 1), no floats, no duplicate
names, no lone surrogates. Because only integers are allowed, the output is byte-identical to
JCS and to ``JSON.stringify`` on sorted objects in a browser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rxvault.format._errors import MalformedObject

__all__ = ["MAX_SAFE_INTEGER", "canonical_json", "parse_canonical_json", "parse_json"]

MAX_SAFE_INTEGER = 2**53 - 1
_MAX_DEPTH = 64

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _string(value: str, out: list[str]) -> None:
    out.append('"')
    for ch in value:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError("canonical JSON: string contains a lone surrogate")
        else:
            out.append(ch)
    out.append('"')


def _value(value: object, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError("canonical JSON: nesting deeper than 64 levels")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"canonical JSON: integer {value} outside +-(2**53 - 1)")
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise ValueError("canonical JSON: floats are not allowed (use a decimal string)")
    elif isinstance(value, str):
        _string(value, out)
    elif isinstance(value, Mapping):
        for name in value:
            if not isinstance(name, str):
                raise ValueError("canonical JSON: object names must be strings")
        out.append("{")
        for index, name in enumerate(sorted(value, key=_utf16_key)):
            if index:
                out.append(",")
            _string(name, out)
            out.append(":")
            _value(value[name], out, depth + 1)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _value(item, out, depth + 1)
        out.append("]")
    else:
        raise ValueError(f"canonical JSON: cannot encode {type(value).__name__}")


def canonical_json(obj: object) -> bytes:
    """Encode ``obj`` (dicts, lists/tuples, str, int, bool, None) as canonical JSON bytes.

    Raises ``ValueError`` for anything outside the subset (floats, big integers, non-string
    names, lone surrogates, nesting deeper than 64).
    """
    out: list[str] = []
    _value(obj, out, 0)
    return "".join(out).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise MalformedObject(f"JSON object has the member {name!r} twice")
        result[name] = value
    return result


def _no_float(text: str) -> Any:
    raise MalformedObject(f"JSON number {text} is not an integer")


def _no_constant(text: str) -> Any:
    raise MalformedObject(f"JSON constant {text} is not allowed")


def parse_json(data: bytes) -> Any:
    """Parse strict JSON (UTF-8, no duplicate names, integers only) without requiring it to be
    canonical. Raises :class:`MalformedObject`."""
    try:
        text = data.decode("utf-8")
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except MalformedObject:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedObject(f"not valid JSON: {exc}") from None


def parse_canonical_json(data: bytes) -> Any:
    """Parse ``data`` and require it to be exactly the canonical encoding of its value.

    Raises :class:`MalformedObject` for invalid or non-canonical JSON.
    """
    value = parse_json(data)
    try:
        again = canonical_json(value)
    except ValueError as exc:
        raise MalformedObject(str(exc)) from None
    if again != data:
        raise MalformedObject("JSON is not in canonical form")
    return value
