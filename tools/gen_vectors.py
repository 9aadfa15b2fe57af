"""Generate the rxvault test vectors in vectors/ from the deterministic layer of rxvault.format.

Usage: .venv/bin/python tools/gen_vectors.py [--check]

Every input is fixed here (keys are SHA-256 of a label), so the output is byte-for-byte
reproducible; tests/format/test_vectors.py checks that the checked-in files equal a fresh
generation and that every case passes. The file layout is described in vectors/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rxvault import format as fmt  # noqa: E402
from rxvault.format import _bundle, _codec, _enrollment, _envelope, _kdf  # noqa: E402
from rxvault.format._canonical import canonical_json  # noqa: E402
from rxvault.format._padding import pad  # noqa: E402

VECTORS = ROOT / "vectors"
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
LOW_ORDER_POINT = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
Case = dict[str, Any]


def key(label: str) -> bytes:
    return hashlib.sha256(b"rxvault test vector: " + label.encode()).digest()


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def outcome(func: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``func``; record its success output or the name of the FormatError it raised."""
    try:
        return {"result": "success", **func()}
    except fmt.FormatError as exc:
        return {"result": "error", "error": type(exc).__name__}


PHARMACY = fmt.PharmacyKey.from_private_bytes(key("pharmacy"))
OTHER_PHARMACY = fmt.PharmacyKey.from_private_bytes(key("other pharmacy"))
PATIENT_SK = key("patient")
PATIENT_PK = fmt.patient_public_key(PATIENT_SK)
OTHER_SK = key("other patient")
OTHER_PK = fmt.patient_public_key(OTHER_SK)
HANDLE_SECRET = key("handle secret")
HANDLE = fmt.patient_handle(HANDLE_SECRET, "100234")
OTHER_HANDLE = fmt.patient_handle(HANDLE_SECRET, "100235")


def keys_section() -> dict[str, str]:
    return {
        "pharmacy_private_key": PHARMACY.private_bytes().hex(),
        "pharmacy_public_key": PHARMACY.public_bytes().hex(),
        "other_pharmacy_private_key": OTHER_PHARMACY.private_bytes().hex(),
        "other_pharmacy_public_key": OTHER_PHARMACY.public_bytes().hex(),
        "patient_private_key": PATIENT_SK.hex(),
        "patient_public_key": PATIENT_PK.hex(),
        "other_patient_private_key": OTHER_SK.hex(),
        "other_patient_public_key": OTHER_PK.hex(),
        "handle": HANDLE,
        "other_handle": OTHER_HANDLE,
    }


KEY_NAMES = {v: k for k, v in keys_section().items()}


def named(value: bytes | str) -> str:
    """Refer to a well-known key by its name in the file's ``keys`` section."""
    text = value.hex() if isinstance(value, bytes) else value
    return KEY_NAMES[text]


# --------------------------------------------------------------------------- canonical JSON


def canonical_cases() -> dict[str, Any]:
    encode = [
        ("empty object", {}),
        (
            "members sorted, no whitespace",
            {"b": 1, "a": [True, False, None], "c": {"z": 0, "y": -1}},
        ),
        (
            "keys sorted by UTF-16 code units, not code points",
            {"\U0001f600": 1, "\uff61": 2, "a": 3},
        ),
        (
            "escapes: quote, backslash, controls; others literal",
            {"s": '"\\\b\f\n\r\t\x00\x1f\x7f/é€\U0001f600'},
        ),
        ("largest safe integers", [9007199254740991, -9007199254740991, 0]),
        (
            "a patient-like document",
            {"patient": {"name": "Zoë O'Brien"}, "fills": [{"qty": "30.5", "date": "2026-01-02"}]},
        ),
    ]
    cases: list[Case] = [
        {
            "description": description,
            "operation": "encode",
            "value": value,
            "expected": {"result": "success", "canonical": canonical_json(value).decode("utf-8")},
        }
        for description, value in encode
    ]
    decode = [
        ("canonical object is accepted", b'{"a":1,"b":[true,null]}'),
        ("whitespace is refused", b'{"a": 1}'),
        ("unsorted members are refused", b'{"b":1,"a":2}'),
        ("duplicate names are refused", b'{"a":1,"a":1}'),
        ("floats are refused", b'{"a":1.0}'),
        ("exponents are refused", b'{"a":1e3}'),
        ("integers beyond 2**53-1 are refused", b"[9007199254740992]"),
        ("escaped solidus and unnecessary escapes are refused", b'["\\/"]'),
        ("\\u escape of a printable character is refused", b'["\\u0041"]'),
        ("upper-case hex in \\u escapes is refused", b'["\\u001F"]'),
        ("lone surrogate is refused", b'["\\ud800"]'),
        ("invalid UTF-8 is refused", b'["\xff"]'),
        ("NaN is refused", b"[NaN]"),
        ("trailing bytes are refused", b"{}\n"),
        ("byte order mark is refused", b"\xef\xbb\xbf{}"),
        ("negative zero is refused", b"[-0]"),
        ("leading zeros are refused", b"[01]"),
    ]
    for description, data in decode:
        cases.append(
            {
                "description": description,
                "operation": "decode",
                "input_hex": data.hex(),
                "expected": outcome(lambda d=data: {"value": fmt.parse_canonical_json(d)}),
            }
        )
    return {
        "description": "Canonical JSON (docs/spec/canonical-json.md). encode: the exact UTF-8 "
        "text of `value`; decode: parse `input_hex` and require canonical form.",
        "cases": cases,
    }


# --------------------------------------------------------------------------- keys and handles


def identity_cases() -> dict[str, Any]:
    cases: list[Case] = []
    for label in ("pharmacy", "other pharmacy"):
        private = key(label)
        pk = fmt.PharmacyKey.from_private_bytes(private)
        cases.append(
            {
                "description": f"Ed25519 key and pharmacy id ({label})",
                "operation": "pharmacy_id",
                "ed25519_private_key": private.hex(),
                "expected": {
                    "result": "success",
                    "public_key": pk.public_bytes().hex(),
                    "pharmacy_id": pk.pharmacy_id,
                },
            }
        )
    for label in ("patient", "other patient"):
        private = key(label)
        cases.append(
            {
                "description": f"X25519 public key ({label})",
                "operation": "x25519_public_key",
                "x25519_private_key": private.hex(),
                "expected": {
                    "result": "success",
                    "public_key": fmt.patient_public_key(private).hex(),
                },
            }
        )
    for patient_id in ("100234", "100235", "A-77/é", " 100234"):
        cases.append(
            {
                "description": f"patient handle of {patient_id!r} (hashed exactly as given)",
                "operation": "patient_handle",
                "handle_secret": HANDLE_SECRET.hex(),
                "patient_id": patient_id,
                "expected": {
                    "result": "success",
                    "handle": fmt.patient_handle(HANDLE_SECRET, patient_id),
                },
            }
        )
    return {
        "description": "Pharmacy ids, X25519 public keys and patient handles "
        "(docs/spec/format.md, 'Identifiers').",
        "cases": cases,
    }


# --------------------------------------------------------------------------- blocks


def _open_expected(envelope: bytes, params: dict[str, Any]) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        opened = fmt.open_block(
            envelope,
            recipient_private_key=bytes.fromhex(keys_section()[params["recipient_private_key"]]),
            pharmacy_public_key=bytes.fromhex(keys_section()[params["pharmacy_public_key"]]),
            expected_handle=keys_section()[params["expected_handle"]],
            min_version=params["min_version"],
        )
        return {"header": header_dict(opened.header), "document": opened.document.decode("utf-8")}

    return outcome(run)


def _verify_expected(envelope: bytes, pharmacy_key_name: str) -> dict[str, Any]:
    public = bytes.fromhex(keys_section()[pharmacy_key_name])
    return outcome(lambda: {"header": header_dict(fmt.verify_block(envelope, public))})


def header_dict(header: fmt.BlockHeader) -> dict[str, Any]:
    return {
        "pharmacy_id": header.pharmacy_id,
        "handle": header.handle,
        "version": header.version,
        "as_of": _codec.format_time(header.as_of),
        "suite": header.suite,
        "padded_length": header.padded_length,
    }


def mutate(data: bytes, mutation: dict[str, Any]) -> bytes:
    """Apply a mutation descriptor (see vectors/README.md)."""
    if "flip_bit" in mutation:
        bit = mutation["flip_bit"]
        out = bytearray(data)
        out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)
    if "truncate_to" in mutation:
        return data[: mutation["truncate_to"]]
    if "append_hex" in mutation:
        return data + bytes.fromhex(mutation["append_hex"])
    if "replace" in mutation:
        offset = mutation["replace"]["offset"]
        new = bytes.fromhex(mutation["replace"]["hex"])
        return data[:offset] + new + data[offset + len(new) :]
    raise ValueError(mutation)


def stored(data: bytes) -> bytes:
    """A zlib stream at level 0 (stored blocks): the same bytes from every zlib implementation."""
    return zlib.compress(data, 0)


def pinned_deflate(document: bytes) -> bytes:
    """zlib level 9 output for a sealed document, reusing the bytes already checked in.

    Compressors differ (zlib and zlib-ng give different level-9 streams for the same input), and
    the compressed bytes are an input of the seal vectors. So a stream already in
    vectors/block.json is kept as long as it still inflates to the same document; only new
    documents are compressed here.
    """
    path = VECTORS / "block.json"
    if path.is_file():
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            if case.get("operation") == "seal" and case["document"].encode() == document:
                stream = bytes.fromhex(case["compressed_hex"])
                if zlib.decompress(stream) == document:
                    return stream
    return zlib.compress(document, 9)


def raw_deflate(data: bytes) -> bytes:
    """A raw DEFLATE stream (RFC 1951, no zlib header), framed with its length prefix."""
    deflater = zlib.compressobj(0, zlib.DEFLATED, -15)
    raw = deflater.compress(data) + deflater.flush()
    return len(raw).to_bytes(4, "big") + raw


def signed_block_body(
    header_fields: dict[str, Any], rest: bytes, *, raw_header: bytes | None = None
) -> bytes:
    header = raw_header if raw_header is not None else canonical_json(header_fields)
    body = _codec.BLOCK_MAGIC + len(header).to_bytes(2, "big") + header + rest
    return body + PHARMACY.sign(body)


def block_cases() -> dict[str, Any]:
    cases: list[Case] = []
    sealed: dict[str, bytes] = {}
    documents = {
        "seal-small": (
            canonical_json({"patient": {"name": "Jane Example"}, "fills": []}),
            1,
            "2026-12-04T09:30:00Z",
        ),
        "seal-unicode": (
            canonical_json(
                {
                    "patient": {"name": "Zoë Ørsted-Łukasz"},
                    "fills": [{"drug": "Amoxicillin 500 mg"}],
                }
            ),
            7,
            "2026-12-05T23:59:59Z",
        ),
    }
    rng = random.Random(9180)  # noqa: S311 -- seeded: reproducible sample positions, not secrets
    big = canonical_json(
        {"noise": [hashlib.sha256(str(i).encode()).hexdigest() for i in range(400)]}
    )
    documents["seal-second-bucket"] = (big, 3, "2027-01-01T00:00:00Z")
    for index, (name, (document, version, as_of)) in enumerate(documents.items()):
        compressed = pinned_deflate(document)
        ephemeral = key(f"ephemeral {index}")
        handle = OTHER_HANDLE if name == "seal-unicode" else HANDLE
        recipient = OTHER_PK if name == "seal-unicode" else PATIENT_PK
        envelope = fmt.seal_block_from_parts(
            compressed,
            pharmacy_key=PHARMACY,
            handle=handle,
            version=version,
            as_of=when(as_of),
            recipient_public_key=recipient,
            ephemeral_private_key=ephemeral,
        )
        sealed[name] = envelope
        cases.append(
            {
                "id": name,
                "description": (
                    f"seal a {len(document)}-byte document (zlib level 9, {len(compressed)} bytes)"
                ),
                "operation": "seal",
                "document": document.decode("utf-8"),
                "compressed_hex": compressed.hex(),
                "pharmacy_private_key": "pharmacy_private_key",
                "handle": named(handle),
                "version": version,
                "as_of": as_of,
                "recipient_public_key": named(recipient),
                "ephemeral_private_key": ephemeral.hex(),
                "expected": {
                    "result": "success",
                    "envelope_hex": envelope.hex(),
                    "header": header_dict(fmt.verify_block(envelope, PHARMACY.public_bytes())),
                },
            }
        )

    def open_case(
        description: str, envelope_ref: dict[str, Any], envelope: bytes, **params: Any
    ) -> Case:
        full = {
            "recipient_private_key": "patient_private_key",
            "pharmacy_public_key": "pharmacy_public_key",
            "expected_handle": "handle",
            "min_version": 0,
        }
        full.update(params)
        return {
            "description": description,
            "operation": "open",
            "envelope": envelope_ref,
            **full,
            "expected": _open_expected(envelope, full),
        }

    base = sealed["seal-small"]
    ref = {"of_case": "seal-small"}
    cases.append(open_case("open: success", ref, base))
    cases.append(
        open_case("open: success when min_version equals the version", ref, base, min_version=1)
    )
    cases.append(
        open_case(
            "open: second patient's block",
            {"of_case": "seal-unicode"},
            sealed["seal-unicode"],
            recipient_private_key="other_patient_private_key",
            expected_handle="other_handle",
            min_version=7,
        )
    )
    cases.append(
        open_case(
            "open: block in the 16 KiB bucket",
            {"of_case": "seal-second-bucket"},
            sealed["seal-second-bucket"],
        )
    )
    cases.append(
        open_case(
            "open: wrong recipient key",
            ref,
            base,
            recipient_private_key="other_patient_private_key",
        )
    )
    cases.append(
        open_case(
            "open: block moved to another patient's handle",
            ref,
            base,
            expected_handle="other_handle",
        )
    )
    cases.append(
        open_case(
            "open: another patient's block served for this handle",
            {"of_case": "seal-unicode"},
            sealed["seal-unicode"],
        )
    )
    cases.append(open_case("open: lowered version (rollback) is refused", ref, base, min_version=2))
    cases.append(
        open_case(
            "open: signed by another pharmacy key",
            ref,
            base,
            pharmacy_public_key="other_pharmacy_public_key",
        )
    )

    header_end = 6 + int.from_bytes(base[4:6], "big")
    regions = {
        "magic and version": (0, 4),
        "header length": (4, 6),
        "header": (6, header_end),
        "encapsulated key": (header_end, header_end + 32),
        "ciphertext": (header_end + 32, len(base) - 64),
        "signature": (len(base) - 64, len(base)),
    }
    for region, (start, end) in regions.items():
        count = {"magic and version": 3, "header length": 3}.get(region, 6)
        for bit in sorted(rng.sample(range(start * 8, end * 8), count)):
            mutation = {"of_case": "seal-small", "flip_bit": bit}
            cases.append(
                open_case(f"open: bit {bit} flipped ({region})", mutation, mutate(base, mutation))
            )
    for length in (
        0,
        3,
        5,
        6,
        header_end,
        header_end + 32,
        len(base) - 65,
        len(base) - 64,
        len(base) - 1,
    ):
        mutation = {"of_case": "seal-small", "truncate_to": length}
        cases.append(
            open_case(f"open: truncated to {length} bytes", mutation, mutate(base, mutation))
        )
    mutation = {"of_case": "seal-small", "append_hex": "00"}
    cases.append(open_case("open: one trailing byte", mutation, mutate(base, mutation)))
    mutation = {"of_case": "seal-small", "replace": {"offset": 3, "hex": "02"}}
    cases.append(open_case("open: unknown format version 2", mutation, mutate(base, mutation)))
    mutation = {"of_case": "seal-small", "replace": {"offset": len(base) - 64, "hex": "00" * 64}}
    cases.append(open_case("open: signature replaced by zeros", mutation, mutate(base, mutation)))
    s_plus_l = int.from_bytes(base[-32:], "little") + ED25519_ORDER
    mutation = {
        "of_case": "seal-small",
        "replace": {"offset": len(base) - 32, "hex": s_plus_l.to_bytes(32, "little").hex()},
    }
    cases.append(
        open_case(
            "open: signature S replaced by S + L (malleated)", mutation, mutate(base, mutation)
        )
    )

    # Blocks correctly signed by the pharmacy key but wrong in other ways: full envelopes.
    fields = json.loads(base[6:header_end])
    rest = base[header_end:-64]

    def signed_case(description: str, envelope: bytes, **params: Any) -> None:
        cases.append(open_case(description, {"envelope_hex": envelope.hex()}, envelope, **params))

    signed_case(
        "open: unknown suite (signed)",
        signed_block_body({**fields, "suite": "HPKE-X25519-SHA256-A256GCM+Ed25519+zlib"}, rest),
    )
    signed_case(
        "open: header with whitespace, not canonical (signed)",
        signed_block_body(fields, rest, raw_header=json.dumps(fields, sort_keys=True).encode()),
    )
    signed_case(
        "open: header with an unknown field (signed)",
        signed_block_body({**fields, "extra": 1}, rest),
    )
    signed_case(
        "open: header without as_of (signed)",
        signed_block_body({k: v for k, v in fields.items() if k != "as_of"}, rest),
    )
    signed_case("open: version 0 (signed)", signed_block_body({**fields, "version": 0}, rest))
    signed_case(
        "open: as_of not in UTC form (signed)",
        signed_block_body({**fields, "as_of": "2026-12-04T09:30:00+00:00"}, rest),
    )
    signed_case(
        "open: padded_length not a bucket size (signed)",
        signed_block_body({**fields, "padded_length": 8000}, rest),
    )
    signed_case(
        "open: header names another pharmacy id (signed with this pharmacy's key)",
        signed_block_body({**fields, "pharmacy_id": OTHER_PHARMACY.pharmacy_id}, rest),
    )
    flipped_ct = bytearray(rest)
    flipped_ct[100] ^= 0x01
    signed_case(
        "open: ciphertext bit flipped, then re-signed", signed_block_body(fields, bytes(flipped_ct))
    )
    flipped_enc = bytearray(rest)
    flipped_enc[0] ^= 0x80
    signed_case(
        "open: encapsulated key altered, then re-signed",
        signed_block_body(fields, bytes(flipped_enc)),
    )
    for description, point in [
        ("all zeros", bytes(32)),
        ("a point of order 8", bytes.fromhex(LOW_ORDER_POINT)),
    ]:
        signed_case(
            f"open: encapsulated key is {description} (low order), re-signed",
            signed_block_body(fields, point + rest[32:]),
        )
    signed_case(
        "open: header version raised and re-signed (header is bound in HPKE info)",
        signed_block_body({**fields, "version": 2}, rest),
    )
    sealed_args = {
        "pharmacy_key": PHARMACY,
        "handle": HANDLE,
        "version": 1,
        "as_of": when("2026-12-04T09:30:00Z"),
        "recipient_public_key": PATIENT_PK,
        "ephemeral_private_key": key("ephemeral bad plaintext"),
    }
    good = pad(stored(b'{"fills":[]}'))
    bad_plaintexts = {
        "non-zero padding byte": good[:-1] + b"\x01",
        "length prefix beyond the plaintext": (len(good)).to_bytes(4, "big") + good[4:],
        "corrupt zlib stream": good[:4] + b"\x78\xda\xff\xff" + good[8:],
        "trailing bytes after the zlib stream": (
            (len(stored(b"{}")) + 1).to_bytes(4, "big") + stored(b"{}") + b"\x01"
        ).ljust(8192, b"\x00"),
        "raw deflate instead of zlib": raw_deflate(b"{}").ljust(8192, b"\x00"),
    }
    for description, plaintext in bad_plaintexts.items():
        envelope = _envelope.seal_padded_from_parts(plaintext, **sealed_args)  # type: ignore[arg-type]
        signed_case(f"open: {description} inside a valid signed block", envelope)

    for description, envelope, key_name in [
        ("verify: success", base, "pharmacy_public_key"),
        ("verify: another pharmacy's key", base, "other_pharmacy_public_key"),
    ]:
        cases.append(
            {
                "description": description,
                "operation": "verify",
                "envelope": ref,
                "pharmacy_public_key": key_name,
                "expected": _verify_expected(envelope, key_name),
            }
        )
    for bit in (60 * 8 + 1, (len(base) - 200) * 8):
        mutation = {"of_case": "seal-small", "flip_bit": bit}
        cases.append(
            {
                "description": f"verify: bit {bit} flipped",
                "operation": "verify",
                "envelope": mutation,
                "pharmacy_public_key": "pharmacy_public_key",
                "expected": _verify_expected(mutate(base, mutation), "pharmacy_public_key"),
            }
        )
    return {
        "description": "Blocks (docs/spec/format.md, 'The block'). seal: deterministic sealing "
        "from compressed_hex and ephemeral_private_key; open: the browser's checks; verify: "
        "the server's checks (signature only). Key fields name entries of `keys`.",
        "keys": keys_section(),
        "cases": cases,
    }


# --------------------------------------------------------------------------- tombstones


def tombstone_cases() -> dict[str, Any]:
    cases: list[Case] = []
    made: dict[str, bytes] = {}
    for name, handle, version, deleted_at in [
        ("tombstone-1", HANDLE, 2, "2026-12-06T04:00:00Z"),
        ("tombstone-2", OTHER_HANDLE, 9007199254740991, "2030-01-01T00:00:00Z"),
    ]:
        data = fmt.make_tombstone(
            pharmacy_key=PHARMACY, handle=handle, version=version, deleted_at=when(deleted_at)
        )
        made[name] = data
        cases.append(
            {
                "id": name,
                "description": f"make a tombstone (version {version})",
                "operation": "make",
                "pharmacy_private_key": "pharmacy_private_key",
                "handle": named(handle),
                "version": version,
                "deleted_at": deleted_at,
                "expected": {"result": "success", "tombstone_hex": data.hex()},
            }
        )
    base = made["tombstone-1"]

    def verify_case(
        description: str, ref: dict[str, Any], data: bytes, key_name: str = "pharmacy_public_key"
    ) -> Case:
        public = bytes.fromhex(keys_section()[key_name])

        def run() -> dict[str, Any]:
            header = fmt.verify_tombstone(data, public)
            return {
                "pharmacy_id": header.pharmacy_id,
                "handle": header.handle,
                "version": header.version,
                "deleted_at": _codec.format_time(header.deleted_at),
            }

        return {
            "description": description,
            "operation": "verify",
            "tombstone": ref,
            "pharmacy_public_key": key_name,
            "expected": outcome(run),
        }

    ref = {"of_case": "tombstone-1"}
    cases.append(verify_case("verify: success", ref, base))
    cases.append(
        verify_case("verify: another pharmacy's key", ref, base, "other_pharmacy_public_key")
    )
    rng = random.Random(1)  # noqa: S311 -- seeded: reproducible sample positions, not secrets
    for bit in sorted(rng.sample(range(len(base) * 8), 12)):
        mutation = {"of_case": "tombstone-1", "flip_bit": bit}
        cases.append(verify_case(f"verify: bit {bit} flipped", mutation, mutate(base, mutation)))
    for length in (0, 4, 10, len(base) - 64, len(base) - 1):
        mutation = {"of_case": "tombstone-1", "truncate_to": length}
        cases.append(
            verify_case(f"verify: truncated to {length} bytes", mutation, mutate(base, mutation))
        )
    mutation = {"of_case": "tombstone-1", "append_hex": "00"}
    cases.append(verify_case("verify: one trailing byte", mutation, mutate(base, mutation)))
    mutation = {"of_case": "tombstone-1", "replace": {"offset": 3, "hex": "02"}}
    cases.append(verify_case("verify: unknown version 2", mutation, mutate(base, mutation)))
    mutation = {"of_case": "tombstone-1", "replace": {"offset": 0, "hex": "52584201"}}
    cases.append(
        verify_case("verify: a block magic on a tombstone", mutation, mutate(base, mutation))
    )
    header_end = 6 + int.from_bytes(base[4:6], "big")
    fields = json.loads(base[6:header_end])
    for description, new_fields in [
        ("version 0 (signed)", {**fields, "version": 0}),
        ("version above 2**53-1 as a string (signed)", {**fields, "version": "9007199254740992"}),
        ("handle in upper case (signed)", {**fields, "handle": fields["handle"].upper()}),
    ]:
        header = canonical_json(new_fields)
        body = _codec.TOMBSTONE_MAGIC + len(header).to_bytes(2, "big") + header
        data = body + PHARMACY.sign(body)
        cases.append(verify_case(f"verify: {description}", {"tombstone_hex": data.hex()}, data))
    return {
        "description": "Tombstones, the signed deletion of a patient's block "
        "(docs/spec/format.md, 'The tombstone').",
        "keys": keys_section(),
        "cases": cases,
    }


# --------------------------------------------------------------------------- batches


def batch_cases(blocks: dict[str, Any], tombstones: dict[str, Any]) -> dict[str, Any]:
    block_hex = {
        c["id"]: c["expected"]["envelope_hex"]
        for c in blocks["cases"]
        if c.get("operation") == "seal"
    }
    tomb_hex = {
        c["id"]: c["expected"]["tombstone_hex"]
        for c in tombstones["cases"]
        if c.get("operation") == "make"
    }
    cases: list[Case] = []
    made: dict[str, bytes] = {}
    for name, batch_id, block_ids, tomb_ids, created in [
        (
            "batch-1",
            "Zk3n0Qm8RqGxYb2W-a_9fA",
            ["seal-small", "seal-unicode"],
            [],
            "2026-12-04T09:31:00Z",
        ),
        (
            "batch-2",
            "batch-0000000000000002",
            [],
            ["tombstone-1", "tombstone-2"],
            "2026-12-06T04:00:01Z",
        ),
        ("batch-empty", "batch-0000000000000003", [], [], "2026-12-07T04:00:00Z"),
    ]:
        data = fmt.make_batch(
            pharmacy_key=PHARMACY,
            batch_id=batch_id,
            blocks=[bytes.fromhex(block_hex[i]) for i in block_ids],
            tombstones=[bytes.fromhex(tomb_hex[i]) for i in tomb_ids],
            created_at=when(created),
        )
        made[name] = data
        cases.append(
            {
                "id": name,
                "description": (
                    f"make a batch of {len(block_ids)} blocks and {len(tomb_ids)} tombstones"
                ),
                "operation": "make",
                "pharmacy_private_key": "pharmacy_private_key",
                "batch_id": batch_id,
                "blocks": [{"of_case": i, "file": "block.json"} for i in block_ids],
                "tombstones": [{"of_case": i, "file": "tombstone.json"} for i in tomb_ids],
                "created_at": created,
                "expected": {"result": "success", "batch_hex": data.hex()},
            }
        )

    def verify_case(
        description: str, ref: dict[str, Any], data: bytes, key_name: str = "pharmacy_public_key"
    ) -> Case:
        public = bytes.fromhex(keys_section()[key_name])

        def run() -> dict[str, Any]:
            batch = fmt.verify_batch(data, public)
            return {
                "batch_id": batch.batch_id,
                "pharmacy_id": batch.pharmacy_id,
                "created_at": _codec.format_time(batch.created_at),
                "block_handles": [h.handle for h, _ in batch.blocks],
                "tombstone_handles": [h.handle for h, _ in batch.tombstones],
                "digest": batch.digest.hex(),
            }

        return {
            "description": description,
            "operation": "verify",
            "batch": ref,
            "pharmacy_public_key": key_name,
            "expected": outcome(run),
        }

    for name, data in made.items():
        cases.append(verify_case(f"verify: {name}", {"of_case": name}, data))
    base = made["batch-1"]
    cases.append(
        verify_case(
            "verify: another pharmacy's key",
            {"of_case": "batch-1"},
            base,
            "other_pharmacy_public_key",
        )
    )
    header_end = 6 + int.from_bytes(base[4:6], "big")
    rng = random.Random(2)  # noqa: S311 -- seeded: reproducible sample positions, not secrets
    for region, (start, end) in {
        "header": (0, header_end),
        "items": (header_end, len(base) - 64),
        "signature": (len(base) - 64, len(base)),
    }.items():
        for bit in sorted(rng.sample(range(start * 8, end * 8), 4)):
            mutation = {"of_case": "batch-1", "flip_bit": bit}
            cases.append(
                verify_case(
                    f"verify: bit {bit} flipped ({region})", mutation, mutate(base, mutation)
                )
            )
    for length in (0, 7, header_end + 2, len(base) - 64, len(base) - 1):
        mutation = {"of_case": "batch-1", "truncate_to": length}
        cases.append(
            verify_case(f"verify: truncated to {length} bytes", mutation, mutate(base, mutation))
        )
    mutation = {"of_case": "batch-1", "replace": {"offset": 3, "hex": "02"}}
    cases.append(verify_case("verify: unknown version 2", mutation, mutate(base, mutation)))

    small = bytes.fromhex(block_hex["seal-small"])
    duplicate = fmt.make_batch(
        pharmacy_key=PHARMACY,
        batch_id="batch-duplicate-handle",
        blocks=[small],
        tombstones=[bytes.fromhex(tomb_hex["tombstone-1"])],
        created_at=when("2026-12-04T09:31:00Z"),
    )
    cases.append(
        verify_case(
            "verify: the same handle twice (signed)", {"batch_hex": duplicate.hex()}, duplicate
        )
    )
    foreign_block = fmt.seal_block_from_parts(
        stored(b"{}"),
        pharmacy_key=OTHER_PHARMACY,
        handle=HANDLE,
        version=1,
        as_of=when("2026-12-04T09:30:00Z"),
        recipient_public_key=PATIENT_PK,
        ephemeral_private_key=key("ephemeral foreign"),
    )
    foreign = fmt.make_batch(
        pharmacy_key=PHARMACY,
        batch_id="batch-foreign-item-0001",
        blocks=[foreign_block],
        tombstones=[],
        created_at=when("2026-12-04T09:31:00Z"),
    )
    cases.append(
        verify_case(
            "verify: a block signed by another pharmacy inside (signed)",
            {"batch_hex": foreign.hex()},
            foreign,
        )
    )
    swapped = fmt.make_batch(
        pharmacy_key=PHARMACY,
        batch_id="batch-tombstone-as-block",
        blocks=[bytes.fromhex(tomb_hex["tombstone-2"])],
        tombstones=[],
        created_at=when("2026-12-04T09:31:00Z"),
    )
    cases.append(
        verify_case(
            "verify: a tombstone in the blocks section (signed)",
            {"batch_hex": swapped.hex()},
            swapped,
        )
    )
    fields = {
        "batch_id": "batch-count-mismatch-01",
        "block_count": 2,
        "created_at": "2026-12-04T09:31:00Z",
        "pharmacy_id": PHARMACY.pharmacy_id,
        "tombstone_count": 0,
    }
    header = canonical_json(fields)
    body = (
        _codec.BATCH_MAGIC
        + len(header).to_bytes(2, "big")
        + header
        + len(small).to_bytes(4, "big")
        + small
    )
    mismatch = body + PHARMACY.sign(body)
    cases.append(
        verify_case(
            "verify: block_count larger than the items present (signed)",
            {"batch_hex": mismatch.hex()},
            mismatch,
        )
    )
    for bad_id in ("short", "has space in it 0000", "x" * 65):
        fields_bad = {**fields, "batch_id": bad_id, "block_count": 0}
        header = canonical_json(fields_bad)
        body = _codec.BATCH_MAGIC + len(header).to_bytes(2, "big") + header
        data = body + PHARMACY.sign(body)
        cases.append(
            verify_case(
                f"verify: invalid batch id {bad_id!r} (signed)", {"batch_hex": data.hex()}, data
            )
        )
    return {
        "description": "Batches (docs/spec/format.md, 'The batch'). Items referenced by "
        "{of_case, file} are the expected outputs of those cases in the named files.",
        "keys": keys_section(),
        "cases": cases,
    }


# --------------------------------------------------------------------------- statements


def statement_leaves(n: int) -> list[fmt.Leaf]:
    """``n`` leaves sorted by handle: varied versions (up to 2**53 - 1) and states."""
    handles = sorted(fmt.patient_handle(HANDLE_SECRET, str(200000 + i)) for i in range(n))
    versions = [1, 2, 255, 256, 9007199254740991, 3, 70000, 1, 4294967296, 12, 5, 1, 8]
    return [
        fmt.Leaf(handle, versions[i % len(versions)], i % 4 == 3)
        for i, handle in enumerate(handles)
    ]


def leaf_dict(leaf: fmt.Leaf) -> dict[str, Any]:
    return {"handle": leaf.handle, "version": leaf.version, "deleted": leaf.deleted}


def statement_dict(statement: fmt.Statement) -> dict[str, Any]:
    return {
        "pharmacy_id": statement.pharmacy_id,
        "seq": statement.seq,
        "as_of": _codec.format_time(statement.as_of),
        "size": statement.size,
        "root": statement.root.hex(),
    }


def statement_cases() -> dict[str, Any]:
    cases: list[Case] = []
    trees: dict[int, list[fmt.Leaf]] = {}
    for n in (0, 1, 2, 3, 5, 8, 13):
        leaves = trees[n] = statement_leaves(n)
        tree = fmt.merkle_tree(leaves)
        cases.append(
            {
                "id": f"tree-{n}",
                "description": f"Merkle tree of {n} leaves: leaf hashes, root, every audit path",
                "operation": "tree",
                "leaves": [leaf_dict(leaf) for leaf in leaves],
                "expected": {
                    "result": "success",
                    "leaf_hashes": [fmt.leaf_hash(leaf).hex() for leaf in leaves],
                    "root": tree.root.hex(),
                    "paths": [[node.hex() for node in tree.proof(i)] for i in range(n)],
                },
            }
        )
    made: dict[str, bytes] = {}
    for name, seq, as_of, n in [
        ("statement-13", 42, "2026-12-07T04:00:00Z", 13),
        ("statement-empty", 1, "2026-12-04T09:30:00Z", 0),
        ("statement-5", 9007199254740991, "2030-01-01T00:00:00Z", 5),
    ]:
        data = fmt.make_statement(
            pharmacy_key=PHARMACY, seq=seq, as_of=when(as_of), leaves=trees[n]
        )
        made[name] = data
        cases.append(
            {
                "id": name,
                "description": f"make a statement over the {n} leaves of case tree-{n}",
                "operation": "make",
                "pharmacy_private_key": "pharmacy_private_key",
                "seq": seq,
                "as_of": as_of,
                "leaves": {"of_case": f"tree-{n}"},
                "expected": {"result": "success", "statement_hex": data.hex()},
            }
        )

    def verify_case(
        description: str, ref: dict[str, Any], data: bytes, key_name: str = "pharmacy_public_key"
    ) -> Case:
        public = bytes.fromhex(keys_section()[key_name])
        return {
            "description": description,
            "operation": "verify",
            "statement": ref,
            "pharmacy_public_key": key_name,
            "expected": outcome(lambda: statement_dict(fmt.verify_statement(data, public))),
        }

    for name, data in made.items():
        cases.append(verify_case(f"verify: {name}", {"of_case": name}, data))
    base = made["statement-13"]
    ref = {"of_case": "statement-13"}
    cases.append(
        verify_case("verify: another pharmacy's key", ref, base, "other_pharmacy_public_key")
    )
    rng = random.Random(6962)  # noqa: S311 -- seeded: reproducible sample positions, not secrets
    for bit in sorted(rng.sample(range(len(base) * 8), 12)):
        mutation = {"of_case": "statement-13", "flip_bit": bit}
        cases.append(verify_case(f"verify: bit {bit} flipped", mutation, mutate(base, mutation)))
    for length in (0, 3, 5, len(base) - 64, len(base) - 1):
        mutation = {"of_case": "statement-13", "truncate_to": length}
        cases.append(
            verify_case(f"verify: truncated to {length} bytes", mutation, mutate(base, mutation))
        )
    mutation = {"of_case": "statement-13", "append_hex": "00"}
    cases.append(verify_case("verify: one trailing byte", mutation, mutate(base, mutation)))
    mutation = {"of_case": "statement-13", "replace": {"offset": 3, "hex": "02"}}
    cases.append(verify_case("verify: unknown version 2", mutation, mutate(base, mutation)))
    mutation = {"of_case": "statement-13", "replace": {"offset": 0, "hex": "52585401"}}
    cases.append(
        verify_case("verify: a tombstone magic on a statement", mutation, mutate(base, mutation))
    )
    header_end = 6 + int.from_bytes(base[4:6], "big")
    fields = json.loads(base[6:header_end])
    for description, new_fields in [
        ("seq 0 (signed)", {**fields, "seq": 0}),
        ("size -1 (signed)", {**fields, "size": -1}),
        ("size as a string (signed)", {**fields, "size": "13"}),
        ("root in upper case (signed)", {**fields, "root": fields["root"].upper()}),
        ("root of 31 bytes (signed)", {**fields, "root": fields["root"][:62]}),
        ("as_of with an offset (signed)", {**fields, "as_of": "2026-12-07T04:00:00+00:00"}),
        (
            "member `pharmacy` instead of `pharmacy_id` (signed)",
            {
                **{k: v for k, v in fields.items() if k != "pharmacy_id"},
                "pharmacy": fields["pharmacy_id"],
            },
        ),
        ("an extra member (signed)", {**fields, "note": ""}),
        ("another pharmacy's id (signed)", {**fields, "pharmacy_id": OTHER_PHARMACY.pharmacy_id}),
    ]:
        header = canonical_json(new_fields)
        body = _codec.STATEMENT_MAGIC + len(header).to_bytes(2, "big") + header
        data = body + PHARMACY.sign(body)
        cases.append(verify_case(f"verify: {description}", {"statement_hex": data.hex()}, data))

    def inclusion_case(
        description: str,
        of_case: str,
        leaf: fmt.Leaf,
        index: int,
        path: list[bytes],
    ) -> Case:
        statement = fmt.verify_statement(made[of_case], PHARMACY.public_bytes())
        return {
            "description": f"verify_inclusion: {description}",
            "operation": "verify_inclusion",
            "statement": {"of_case": of_case},
            "leaf": leaf_dict(leaf),
            "index": index,
            "path": [node.hex() for node in path],
            "expected": outcome(lambda: fmt.verify_inclusion(statement, leaf, index, path) or {}),
        }

    leaves = trees[13]
    tree = fmt.merkle_tree(leaves)
    for index in range(13):
        cases.append(
            inclusion_case(
                f"leaf {index} of 13", "statement-13", leaves[index], index, tree.proof(index)
            )
        )
    five = trees[5]
    for index in range(5):
        cases.append(
            inclusion_case(
                f"leaf {index} of 5",
                "statement-5",
                five[index],
                index,
                fmt.merkle_tree(five).proof(index),
            )
        )
    leaf, path = leaves[6], tree.proof(6)
    flipped = bytearray(path[1])
    flipped[7] ^= 0x20
    for description, bad_leaf, index, bad_path in [
        (
            "a newer version than the statement's",
            fmt.Leaf(leaf.handle, leaf.version + 1, False),
            6,
            path,
        ),
        ("the leaf marked deleted", fmt.Leaf(leaf.handle, leaf.version, True), 6, path),
        ("another handle", fmt.Leaf(leaves[7].handle, leaf.version, False), 6, path),
        ("the neighbour's index", leaf, 7, path),
        ("index equal to the size", leaf, 13, path),
        ("index far beyond the size", leaf, 1000, path),
        ("a path element changed", leaf, 6, [path[0], bytes(flipped), *path[2:]]),
        ("a path element dropped", leaf, 6, path[:-1]),
        ("an extra path element", leaf, 6, [*path, bytes(32)]),
        ("an empty path", leaf, 6, []),
        ("a path element of 31 bytes", leaf, 6, [path[0][:31], *path[1:]]),
        ("leaf 12 with the path of leaf 11", leaves[12], 12, tree.proof(11)),
        ("a leaf of the 5-leaf tree", five[2], 2, fmt.merkle_tree(five).proof(2)),
        ("the empty tree", leaf, 0, []),
    ]:
        of_case = "statement-empty" if description == "the empty tree" else "statement-13"
        cases.append(inclusion_case(description, of_case, bad_leaf, index, bad_path))
    for description, leaf_version, served in [
        ("served version equals the statement's", 7, 7),
        ("served version newer than the statement's", 7, 8),
        ("served version older than the statement's", 7, 6),
        ("served version 1 where the statement proves 2**53 - 1", 9007199254740991, 1),
    ]:
        proven = fmt.Leaf(HANDLE, leaf_version, False)
        cases.append(
            {
                "description": f"check_served: {description}",
                "operation": "check_served",
                "leaf": leaf_dict(proven),
                "served_version": served,
                "expected": outcome(lambda p=proven, v=served: fmt.check_not_withheld(p, v) or {}),
            }
        )
    return {
        "description": "Sync statements and their Merkle tree (docs/spec/format.md, "
        "'The sync statement'). tree: leaf hashes, root and the audit path of every leaf; "
        "make/verify: the signed object; verify_inclusion: the proof of `leaf` at `index` in "
        "the statement of case `statement.of_case`; check_served: a served version against "
        "the version a verified leaf proves.",
        "keys": keys_section(),
        "cases": cases,
    }


# --------------------------------------------------------------------------- passwords


def kdf_cases() -> dict[str, Any]:
    cases: list[Case] = []
    for description, password, salt_label in [
        ("ASCII password at the floor parameters", "correct horse battery staple", "salt 1"),
        (
            "non-ASCII password, NFC-normalised before hashing (input is NFD)",
            "Cafe\u0301 Ørsted 💊",
            "salt 2",
        ),
        ("the same password in NFC gives the same keys", "Caf\u00e9 Ørsted 💊", "salt 2"),
    ]:
        salt = key(salt_label)[:16]
        params = fmt.DEFAULT_KDF
        master = _kdf.derive_master_key(password, salt, params)
        keys = _kdf.client_keys_from_master(master)
        cases.append(
            {
                "description": description,
                "operation": "derive_client_keys",
                "password": password,
                "salt": salt.hex(),
                "params": params.to_dict(),
                "expected": {
                    "result": "success",
                    "master_key": master.hex(),
                    "auth_key": keys.auth_key.hex(),
                    "unlock_key": keys.unlock_key.hex(),
                },
            }
        )
    for params in [
        {"alg": "argon2id", "m": 65536, "t": 3, "p": 1},
        {"alg": "argon2id", "m": 262144, "t": 4, "p": 4},
        {"alg": "argon2id", "m": 65535, "t": 3, "p": 1},
        {"alg": "argon2id", "m": 65536, "t": 2, "p": 1},
        {"alg": "argon2id", "m": 65536, "t": 3, "p": 0},
        {"alg": "argon2id", "m": 19456, "t": 2, "p": 1},
        {"alg": "argon2id", "m": 2097152, "t": 3, "p": 1},
        {"alg": "argon2id", "m": 65536, "t": 100, "p": 1},
        {"alg": "argon2i", "m": 65536, "t": 3, "p": 1},
        {"alg": "argon2id", "m": 65536, "t": 3},
        {"alg": "argon2id", "m": "65536", "t": 3, "p": 1},
        {"alg": "argon2id", "m": 65536, "t": 3, "p": 1, "v": 19},
    ]:
        cases.append(
            {
                "description": f"check parameters {json.dumps(params, sort_keys=True)}",
                "operation": "check_params",
                "params": params,
                "expected": outcome(
                    lambda p=params: {"params": fmt.KdfParams.from_dict(p).to_dict()}
                ),
            }
        )
    pepper = key("pepper")
    for index in (1, 2):
        salt = key(f"salt {index}")[:16]
        auth_key = key(f"auth key {index}")
        cases.append(
            {
                "description": f"server: verifier and key share (account {index})",
                "operation": "server_derivations",
                "pepper": pepper.hex(),
                "salt": salt.hex(),
                "auth_key": auth_key.hex(),
                "expected": {
                    "result": "success",
                    "auth_verifier": fmt.auth_verifier(pepper, salt, auth_key).hex(),
                    "server_key_share": fmt.server_key_share(pepper, salt).hex(),
                },
            }
        )
    for username in ("nobody", "Zoë"):
        cases.append(
            {
                "description": f"server: decoy salt for the unknown username {username!r}",
                "operation": "decoy_salt",
                "pepper": pepper.hex(),
                "username": username,
                "expected": {"result": "success", "salt": fmt.decoy_salt(pepper, username).hex()},
            }
        )
    return {
        "description": "Password to keys, and the server's peppered derivations "
        "(docs/spec/format.md, 'Passwords'). Argon2id cases use the floor parameters and are slow.",
        "cases": cases,
    }


def bundle_cases() -> dict[str, Any]:
    unlock = key("unlock key")
    share = key("server share")
    account = "jane.example"
    nonce = key("bundle nonce")[:12]
    bundle = fmt.wrap_key_bundle_from_parts(
        unlock_key=unlock,
        server_share=share,
        account=account,
        patient_private_key=PATIENT_SK,
        pharmacy_public_key=PHARMACY.public_bytes(),
        nonce=nonce,
    )
    cases: list[Case] = [
        {
            "id": "wrap-1",
            "description": "wrap the patient's key pair and the pinned pharmacy key",
            "operation": "wrap",
            "unlock_key": unlock.hex(),
            "server_share": share.hex(),
            "account": account,
            "patient_private_key": PATIENT_SK.hex(),
            "pharmacy_public_key": PHARMACY.public_bytes().hex(),
            "nonce": nonce.hex(),
            "expected": {
                "result": "success",
                "wrapping_key": _bundle.bundle_key(unlock, share).hex(),
                "bundle_hex": bundle.hex(),
            },
        }
    ]

    def unwrap_case(description: str, ref: dict[str, Any], data: bytes, **params: Any) -> Case:
        full = {"unlock_key": unlock.hex(), "server_share": share.hex(), "account": account}
        full.update(params)

        def run() -> dict[str, Any]:
            result = fmt.unwrap_key_bundle(
                data,
                unlock_key=bytes.fromhex(full["unlock_key"]),
                server_share=bytes.fromhex(full["server_share"]),
                account=full["account"],
            )
            return {
                "patient_private_key": result.patient_private_key.hex(),
                "patient_public_key": result.patient_public_key.hex(),
                "pharmacy_public_key": result.pharmacy_public_key.hex(),
            }

        return {
            "description": description,
            "operation": "unwrap",
            "bundle": ref,
            **full,
            "expected": outcome(run),
        }

    ref = {"of_case": "wrap-1"}
    cases.append(unwrap_case("unwrap: success", ref, bundle))
    cases.append(
        unwrap_case("unwrap: a bundle for another account", ref, bundle, account="jane.example2")
    )
    cases.append(
        unwrap_case(
            "unwrap: wrong password (unlock key)", ref, bundle, unlock_key=key("wrong unlock").hex()
        )
    )
    cases.append(
        unwrap_case(
            "unwrap: wrong server share (pepper)",
            ref,
            bundle,
            server_share=key("wrong share").hex(),
        )
    )
    for bit in (0, 30, 4 * 8 + 3, 16 * 8 + 100, len(bundle) * 8 - 1):
        mutation = {"of_case": "wrap-1", "flip_bit": bit}
        cases.append(unwrap_case(f"unwrap: bit {bit} flipped", mutation, mutate(bundle, mutation)))
    for length in (0, 4, len(bundle) - 1):
        mutation = {"of_case": "wrap-1", "truncate_to": length}
        cases.append(
            unwrap_case(f"unwrap: truncated to {length} bytes", mutation, mutate(bundle, mutation))
        )
    mutation = {"of_case": "wrap-1", "replace": {"offset": 3, "hex": "02"}}
    cases.append(unwrap_case("unwrap: unknown version 2", mutation, mutate(bundle, mutation)))
    # A bundle whose stored public key does not match its private key (made with the right key).
    wrong_public = PATIENT_SK + OTHER_PK + PHARMACY.public_bytes()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    inconsistent = (
        _codec.BUNDLE_MAGIC
        + nonce
        + AESGCM(_bundle.bundle_key(unlock, share)).encrypt(
            nonce, wrong_public, _codec.BUNDLE_MAGIC + account.encode()
        )
    )
    cases.append(
        unwrap_case(
            "unwrap: public key not matching the private key (authentic)",
            {"bundle_hex": inconsistent.hex()},
            inconsistent,
        )
    )
    return {
        "description": "The key bundle (docs/spec/format.md, 'The key bundle'). "
        "Every failure is DecryptionFailed.",
        "cases": cases,
    }


# --------------------------------------------------------------------------- enrollment


def enrollment_cases() -> dict[str, Any]:
    cases: list[Case] = []
    secrets = [key("enrollment 1")[:16], bytes(16), b"\xff" * 16]
    for index, secret in enumerate(secrets):
        code = fmt.enrollment_code_from_secret(secret)
        derived = fmt.derive_enrollment(code)
        cases.append(
            {
                "id": f"code-{index + 1}",
                "description": f"code text and derived values for secret {index + 1}",
                "operation": "derive",
                "secret": secret.hex(),
                "base_url": "https://portal.example-pharmacy.com/register",
                "handle": "handle",
                "patient_public_key": "patient_public_key",
                "pharmacy_public_key": "pharmacy_public_key",
                "expected": {
                    "result": "success",
                    "text": code.text,
                    "compact": code.compact,
                    "url": fmt.enrollment_url("https://portal.example-pharmacy.com/register", code),
                    "lookup_id": derived.lookup_id,
                    "binding_key": derived.binding_key.hex(),
                    "pin_key": derived.pin_key.hex(),
                    "pin_tag": fmt.pin_tag(code, PHARMACY.public_bytes()).hex(),
                    "binding_mac": fmt.binding_mac(derived.binding_key, HANDLE, PATIENT_PK).hex(),
                },
            }
        )
    text = fmt.enrollment_code_from_secret(secrets[0]).text
    compact = text.replace("-", "")
    wrong_check = compact[:-1] + ("0" if compact[-1] != "0" else "1")
    transposed = compact[:5] + compact[6] + compact[5] + compact[7:]
    if transposed == compact:
        transposed = compact[:9] + compact[10] + compact[9] + compact[11:]
    substituted = compact[:10] + ("Z" if compact[10] != "Z" else "Y") + compact[11:]
    lookalike = compact.replace("0", "O").replace("1", "I")
    too_big_body = "1" + "8" + compact[2:-1]
    too_big = too_big_body + _enrollment._check_symbol(too_big_body)
    parse_inputs = [
        ("the grouped text", text),
        ("lower case with spaces", " ".join(compact[i : i + 4] for i in range(0, 28, 4)).lower()),
        ("look-alikes O for 0 and I/L for 1", lookalike),
        ("the whole QR URL pasted", f"https://portal.example/register#enroll={compact}"),
        ("wrong check symbol", wrong_check),
        ("two adjacent symbols swapped", transposed),
        ("one symbol mistyped", substituted),
        ("one symbol missing", compact[:-2] + compact[-1]),
        ("one symbol too many", compact + "0"),
        ("U is not a symbol", compact[:5] + "U" + compact[6:]),
        ("unknown version 2", "2" + compact[1:]),
        ("value of 2**128 or more (first data symbol 8)", too_big),
        ("empty", ""),
    ]
    for description, typed in parse_inputs:
        cases.append(
            {
                "description": f"parse: {description}",
                "operation": "parse",
                "input": typed,
                "expected": outcome(
                    lambda t=typed: {"secret": fmt.parse_enrollment_code(t).secret.hex()}
                ),
            }
        )
    code = fmt.enrollment_code_from_secret(secrets[0])
    derived = fmt.derive_enrollment(code)
    mac = fmt.binding_mac(derived.binding_key, HANDLE, PATIENT_PK)
    tag = fmt.pin_tag(code, PHARMACY.public_bytes())
    for description, handle, public, given in [
        ("binding verifies", HANDLE, PATIENT_PK, mac),
        ("binding for another patient key", HANDLE, OTHER_PK, mac),
        ("binding for another handle", OTHER_HANDLE, PATIENT_PK, mac),
        ("binding truncated", HANDLE, PATIENT_PK, mac[:16]),
    ]:
        cases.append(
            {
                "description": f"verify_binding: {description}",
                "operation": "verify_binding",
                "of_case": "code-1",
                "handle": named(handle),
                "patient_public_key": named(public),
                "mac": given.hex(),
                "expected": outcome(
                    lambda h=handle, p=public, g=given: (
                        fmt.verify_binding(derived.binding_key, h, p, g) or {}
                    )
                ),
            }
        )
    for description, public, given in [
        ("pin tag verifies", PHARMACY.public_bytes(), tag),
        ("pin tag for another pharmacy key", OTHER_PHARMACY.public_bytes(), tag),
        (
            "pin tag from another code",
            PHARMACY.public_bytes(),
            fmt.pin_tag(fmt.enrollment_code_from_secret(secrets[1]), PHARMACY.public_bytes()),
        ),
    ]:
        cases.append(
            {
                "description": f"verify_pin_tag: {description}",
                "operation": "verify_pin_tag",
                "of_case": "code-1",
                "pharmacy_public_key": named(public),
                "tag": given.hex(),
                "expected": outcome(lambda p=public, g=given: fmt.verify_pin_tag(code, p, g) or {}),
            }
        )
    return {
        "description": "Enrollment codes and their derived values "
        "(docs/spec/format.md, 'Enrollment'). "
        "verify_* cases use the code of case `of_case`.",
        "keys": keys_section(),
        "cases": cases,
    }


def generate() -> dict[str, dict[str, Any]]:
    blocks = block_cases()
    tombstones = tombstone_cases()
    files = {
        "canonical_json.json": canonical_cases(),
        "identifiers.json": identity_cases(),
        "block.json": blocks,
        "tombstone.json": tombstones,
        "batch.json": batch_cases(blocks, tombstones),
        "password.json": kdf_cases(),
        "key_bundle.json": bundle_cases(),
        "enrollment.json": enrollment_cases(),
        "statement.json": statement_cases(),
    }
    for name, content in files.items():
        content["format"] = "rxvault test vectors v1"
        content["generated_by"] = "tools/gen_vectors.py"
        files[name] = {
            k: content[k]
            for k in ("format", "description", "generated_by", "keys", "cases")
            if k in content
        }
    return files


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with vectors/")
    args = parser.parse_args()
    stale = []
    for name, content in generate().items():
        path = VECTORS / name
        text = render(content)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)} ({sum(1 for _ in content['cases'])} cases)")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
