"""Shared byte-level helpers: object magics, timestamps, identifiers, strict readers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from rxvault.format._canonical import MAX_SAFE_INTEGER, canonical_json, parse_canonical_json
from rxvault.format._errors import MalformedObject, UnsupportedVersion

__all__ = [
    "BATCH_MAGIC",
    "BLOCK_MAGIC",
    "BUNDLE_MAGIC",
    "MAX_HEADER_LENGTH",
    "STATEMENT_MAGIC",
    "TOMBSTONE_MAGIC",
    "check_counter",
    "check_handle",
    "check_hex_id",
    "decode_header",
    "encode_header",
    "format_time",
    "parse_time",
    "read_magic",
]

# Every serialized object starts with 3 ASCII bytes naming its kind and one version byte.
BLOCK_MAGIC = b"RXB\x01"
TOMBSTONE_MAGIC = b"RXT\x01"
BATCH_MAGIC = b"RXU\x01"
BUNDLE_MAGIC = b"RXK\x01"
STATEMENT_MAGIC = b"RXS\x01"
MAX_HEADER_LENGTH = 1024

_TIME_RE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
_HEX32_RE = re.compile(r"\A[0-9a-f]{32}\Z")

# The C encoder of the json module, set to the form canonical JSON takes for a flat object whose
# names and string values are ASCII and whose other values are integers (see _flat_canonical).
_flat_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), check_circular=False
)


def read_magic(data: bytes, magic: bytes, what: str) -> None:
    """Check that ``data`` starts with ``magic``; name the problem precisely otherwise."""
    if len(data) < 4:
        raise MalformedObject(f"{what}: truncated ({len(data)} bytes)")
    if data[:3] != magic[:3]:
        raise MalformedObject(f"{what}: not a {what} (starts with {data[:3]!r})")
    if data[3] != magic[3]:
        raise UnsupportedVersion(f"{what}: unsupported version {data[3]}")


def _flat_canonical(fields: dict[str, object]) -> str | None:
    r"""The canonical JSON of a flat header, by the json module's C encoder; ``None`` if the
    object is not one this shortcut covers (then the caller takes the general path).

    Covered: names ASCII; values ASCII strings or integers (not booleans) within +-(2**53 - 1).
    For such an object the C encoder's output is exactly :func:`canonical_json`'s: ASCII names
    sort the same by code point as by UTF-16 code unit; both escape ``"``, ``\\``, ``\b``,
    ``\f``, ``\n``, ``\r``, ``\t`` short and every other control character as a lowercase
    ``\u00xx``; ASCII holds no surrogate; integers print in decimal.
    """
    for name, value in fields.items():
        if not name.isascii():
            return None
        if type(value) is str:
            if not value.isascii():
                return None
        elif type(value) is not int or not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return None
    return _flat_encoder.encode(fields)


def encode_header(fields: dict[str, object]) -> bytes:
    flat = _flat_canonical(fields)
    body = flat.encode("ascii") if flat is not None else canonical_json(fields)
    if len(body) > MAX_HEADER_LENGTH:
        raise ValueError(f"header is {len(body)} bytes, more than {MAX_HEADER_LENGTH}")
    return len(body).to_bytes(2, "big") + body


def decode_header(
    data: bytes, offset: int, keys: frozenset[str], what: str
) -> tuple[dict[str, object], int]:
    """Read ``u16 length || canonical JSON object`` at ``offset``; return (fields, end)."""
    if len(data) < offset + 2:
        raise MalformedObject(f"{what}: truncated before the header length")
    length = int.from_bytes(data[offset : offset + 2], "big")
    if length > MAX_HEADER_LENGTH:
        raise MalformedObject(f"{what}: header length {length} exceeds {MAX_HEADER_LENGTH}")
    end = offset + 2 + length
    if len(data) < end:
        raise MalformedObject(f"{what}: truncated inside the header")
    fields = _parse_header(data[offset + 2 : end])
    if not isinstance(fields, dict):
        raise MalformedObject(f"{what}: header is not a JSON object")
    if set(fields) != keys:
        missing = sorted(keys - set(fields))
        extra = sorted(set(fields) - keys)
        raise MalformedObject(f"{what}: header fields wrong (missing {missing}, unknown {extra})")
    return fields, end


def _parse_header(body: bytes) -> object:
    """:func:`parse_canonical_json`, with a shortcut for the usual header.

    The shortcut parses with the json module's C decoder and hooks nothing, then accepts only
    if the result is a flat object :func:`_flat_canonical` covers and its canonical encoding is
    exactly ``body``. Anything it does not accept goes the general way, which gives the same
    value or the precise error: a duplicate name, a float or a constant cannot pass the
    shortcut (the re-encoding would lose the member, or the value is not an integer), so both
    ways accept exactly the same bytes with the same value.
    """
    if body.isascii():
        try:
            text = body.decode("ascii")
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if type(value) is dict and _flat_canonical(value) == text:
            return value
    return parse_canonical_json(body)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with whole seconds: ``2026-12-04T16:00:00Z`` (sub-seconds dropped)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware datetimes")
    utc = moment.astimezone(UTC)
    if utc.year < 1970:
        raise ValueError("timestamps before 1970 are not allowed")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, field: str, what: str) -> datetime:
    if not isinstance(value, str) or not _TIME_RE.match(value):
        raise MalformedObject(f"{what}: {field} is not a UTC time like 2026-01-31T09:30:00Z")
    try:
        # the pattern has matched: every field is its digits, and datetime checks the ranges
        # (month, day of that month, hour, minute, second) as strptime did
        moment = datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=UTC,
        )
    except ValueError:
        raise MalformedObject(f"{what}: {field} is not a valid date and time") from None
    if moment.year < 1970:
        raise MalformedObject(f"{what}: {field} is before 1970")
    return moment


def check_counter(value: object, field: str, what: str) -> int:
    if type(value) is not int or not 1 <= value <= MAX_SAFE_INTEGER:
        raise MalformedObject(f"{what}: {field} must be an integer from 1 to 2**53 - 1")
    return value


def check_hex_id(value: object, field: str, what: str) -> str:
    if not isinstance(value, str) or not _HEX32_RE.match(value):
        raise MalformedObject(f"{what}: {field} must be 32 lowercase hex digits")
    return value


def check_handle(value: object, what: str = "handle") -> str:
    return check_hex_id(value, "handle", what)
