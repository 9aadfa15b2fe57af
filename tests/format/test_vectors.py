"""Run every case of every file in vectors/ against rxvault.format, and check that the
checked-in files are exactly what tools/gen_vectors.py generates today."""

from __future__ import annotations

import importlib.util
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rxvault import format as fmt
from rxvault.format import _bundle, _hpke, _kdf

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"
FILES = [
    "canonical_json.json",
    "identifiers.json",
    "block.json",
    "tombstone.json",
    "batch.json",
    "password.json",
    "key_bundle.json",
    "enrollment.json",
    "statement.json",
]


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def cases_of(name: str) -> list[Any]:
    data = load(name)
    return [
        pytest.param(data, case, id=f"{index}-{case['description'][:60]}")
        for index, case in enumerate(data["cases"])
    ]


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check(expected: dict[str, Any], func: Callable[[], dict[str, Any]]) -> None:
    """Compare a case's expected outcome with what the implementation does."""
    if expected["result"] == "success":
        got = func()
        wanted = {k: v for k, v in expected.items() if k != "result"}
        assert got == wanted
    else:
        assert expected["result"] == "error"
        with pytest.raises(fmt.FormatError) as info:
            func()
        assert type(info.value).__name__ == expected["error"]


def resolve(ref: dict[str, Any], data: dict[str, Any], output: str) -> bytes:
    """An object given as hex, or as a mutation of another case's output (vectors/README.md)."""
    if "envelope_hex" in ref or f"{output}_hex" in ref:
        return bytes.fromhex(ref.get("envelope_hex") or ref[f"{output}_hex"])
    if "file" in ref:
        data = load(ref["file"])
    source = next(c for c in data["cases"] if c.get("id") == ref["of_case"])
    base = bytes.fromhex(source["expected"][f"{output}_hex"])
    if "flip_bit" in ref:
        out = bytearray(base)
        out[ref["flip_bit"] // 8] ^= 1 << (ref["flip_bit"] % 8)
        return bytes(out)
    if "truncate_to" in ref:
        return base[: ref["truncate_to"]]
    if "append_hex" in ref:
        return base + bytes.fromhex(ref["append_hex"])
    if "replace" in ref:
        offset, new = ref["replace"]["offset"], bytes.fromhex(ref["replace"]["hex"])
        return base[:offset] + new + base[offset + len(new) :]
    return base


def key(data: dict[str, Any], name: str) -> bytes:
    return bytes.fromhex(data["keys"][name])


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(("data", "case"), cases_of("canonical_json.json"))
def test_canonical_json(data: dict[str, Any], case: dict[str, Any]) -> None:
    if case["operation"] == "encode":
        check(case["expected"], lambda: {"canonical": fmt.canonical_json(case["value"]).decode()})
    else:
        raw = bytes.fromhex(case["input_hex"])
        check(case["expected"], lambda: {"value": fmt.parse_canonical_json(raw)})


@pytest.mark.parametrize(("data", "case"), cases_of("identifiers.json"))
def test_identifiers(data: dict[str, Any], case: dict[str, Any]) -> None:
    operation = case["operation"]
    if operation == "pharmacy_id":
        pk = fmt.PharmacyKey.from_private_bytes(bytes.fromhex(case["ed25519_private_key"]))
        check(
            case["expected"],
            lambda: {
                "public_key": pk.public_bytes().hex(),
                "pharmacy_id": fmt.pharmacy_id(pk.public_bytes()),
            },
        )
    elif operation == "x25519_public_key":
        private = bytes.fromhex(case["x25519_private_key"])
        check(case["expected"], lambda: {"public_key": fmt.patient_public_key(private).hex()})
    else:
        secret = bytes.fromhex(case["handle_secret"])
        check(case["expected"], lambda: {"handle": fmt.patient_handle(secret, case["patient_id"])})


def block_header(header: fmt.BlockHeader) -> dict[str, Any]:
    return {
        "pharmacy_id": header.pharmacy_id,
        "handle": header.handle,
        "version": header.version,
        "as_of": stamp(header.as_of),
        "suite": header.suite,
        "padded_length": header.padded_length,
    }


@pytest.mark.parametrize(("data", "case"), cases_of("block.json"))
def test_block(data: dict[str, Any], case: dict[str, Any]) -> None:
    operation = case["operation"]
    if operation == "seal":
        compressed = bytes.fromhex(case["compressed_hex"])
        assert zlib.decompress(compressed) == case["document"].encode()

        def seal() -> dict[str, Any]:
            envelope = fmt.seal_block_from_parts(
                compressed,
                pharmacy_key=fmt.PharmacyKey.from_private_bytes(
                    key(data, case["pharmacy_private_key"])
                ),
                handle=data["keys"][case["handle"]],
                version=case["version"],
                as_of=when(case["as_of"]),
                recipient_public_key=key(data, case["recipient_public_key"]),
                ephemeral_private_key=bytes.fromhex(case["ephemeral_private_key"]),
            )
            header = fmt.verify_block(envelope, key(data, "pharmacy_public_key"))
            return {"envelope_hex": envelope.hex(), "header": block_header(header)}

        check(case["expected"], seal)
    elif operation == "open":
        envelope = resolve(case["envelope"], data, "envelope")

        def open_() -> dict[str, Any]:
            opened = fmt.open_block(
                envelope,
                recipient_private_key=key(data, case["recipient_private_key"]),
                pharmacy_public_key=key(data, case["pharmacy_public_key"]),
                expected_handle=data["keys"][case["expected_handle"]],
                min_version=case["min_version"],
            )
            return {"header": block_header(opened.header), "document": opened.document.decode()}

        check(case["expected"], open_)
    else:
        envelope = resolve(case["envelope"], data, "envelope")
        public = key(data, case["pharmacy_public_key"])
        check(
            case["expected"], lambda: {"header": block_header(fmt.verify_block(envelope, public))}
        )


@pytest.mark.parametrize(("data", "case"), cases_of("tombstone.json"))
def test_tombstone(data: dict[str, Any], case: dict[str, Any]) -> None:
    if case["operation"] == "make":
        pharmacy = fmt.PharmacyKey.from_private_bytes(key(data, case["pharmacy_private_key"]))
        check(
            case["expected"],
            lambda: {
                "tombstone_hex": fmt.make_tombstone(
                    pharmacy_key=pharmacy,
                    handle=data["keys"][case["handle"]],
                    version=case["version"],
                    deleted_at=when(case["deleted_at"]),
                ).hex()
            },
        )
        return
    tombstone = resolve(case["tombstone"], data, "tombstone")
    public = key(data, case["pharmacy_public_key"])

    def verify() -> dict[str, Any]:
        header = fmt.verify_tombstone(tombstone, public)
        return {
            "pharmacy_id": header.pharmacy_id,
            "handle": header.handle,
            "version": header.version,
            "deleted_at": stamp(header.deleted_at),
        }

    check(case["expected"], verify)


@pytest.mark.parametrize(("data", "case"), cases_of("batch.json"))
def test_batch(data: dict[str, Any], case: dict[str, Any]) -> None:
    if case["operation"] == "make":
        pharmacy = fmt.PharmacyKey.from_private_bytes(key(data, case["pharmacy_private_key"]))
        blocks = [resolve(ref, data, "envelope") for ref in case["blocks"]]
        tombstones = [resolve(ref, data, "tombstone") for ref in case["tombstones"]]
        check(
            case["expected"],
            lambda: {
                "batch_hex": fmt.make_batch(
                    pharmacy_key=pharmacy,
                    batch_id=case["batch_id"],
                    blocks=blocks,
                    tombstones=tombstones,
                    created_at=when(case["created_at"]),
                ).hex()
            },
        )
        return
    batch_bytes = resolve(case["batch"], data, "batch")
    public = key(data, case["pharmacy_public_key"])

    def verify() -> dict[str, Any]:
        batch = fmt.verify_batch(batch_bytes, public)
        assert all(fmt.verify_block(raw, public) == header for header, raw in batch.blocks)
        return {
            "batch_id": batch.batch_id,
            "pharmacy_id": batch.pharmacy_id,
            "created_at": stamp(batch.created_at),
            "block_handles": [header.handle for header, _ in batch.blocks],
            "tombstone_handles": [header.handle for header, _ in batch.tombstones],
            "digest": batch.digest.hex(),
        }

    check(case["expected"], verify)


@pytest.mark.parametrize(("data", "case"), cases_of("password.json"))
def test_password(data: dict[str, Any], case: dict[str, Any]) -> None:
    operation = case["operation"]
    if operation == "derive_client_keys":
        params = fmt.KdfParams.from_dict(case["params"])
        salt = bytes.fromhex(case["salt"])

        def derive() -> dict[str, Any]:
            master = _kdf.derive_master_key(case["password"], salt, params)
            keys = fmt.derive_client_keys(case["password"], salt, params)
            return {
                "master_key": master.hex(),
                "auth_key": keys.auth_key.hex(),
                "unlock_key": keys.unlock_key.hex(),
            }

        check(case["expected"], derive)
    elif operation == "check_params":
        check(
            case["expected"], lambda: {"params": fmt.KdfParams.from_dict(case["params"]).to_dict()}
        )
    elif operation == "server_derivations":
        pepper, salt, auth_key = (bytes.fromhex(case[k]) for k in ("pepper", "salt", "auth_key"))

        def server() -> dict[str, Any]:
            verifier = fmt.auth_verifier(pepper, salt, auth_key)
            assert fmt.check_auth(pepper, salt, auth_key, verifier)
            assert not fmt.check_auth(pepper, salt, bytes(32), verifier)
            return {
                "auth_verifier": verifier.hex(),
                "server_key_share": fmt.server_key_share(pepper, salt).hex(),
            }

        check(case["expected"], server)
    else:
        pepper = bytes.fromhex(case["pepper"])
        check(case["expected"], lambda: {"salt": fmt.decoy_salt(pepper, case["username"]).hex()})


@pytest.mark.parametrize(("data", "case"), cases_of("key_bundle.json"))
def test_key_bundle(data: dict[str, Any], case: dict[str, Any]) -> None:
    unlock, share = bytes.fromhex(case["unlock_key"]), bytes.fromhex(case["server_share"])
    if case["operation"] == "wrap":
        check(
            case["expected"],
            lambda: {
                "wrapping_key": _bundle.bundle_key(unlock, share).hex(),
                "bundle_hex": fmt.wrap_key_bundle_from_parts(
                    unlock_key=unlock,
                    server_share=share,
                    account=case["account"],
                    patient_private_key=bytes.fromhex(case["patient_private_key"]),
                    pharmacy_public_key=bytes.fromhex(case["pharmacy_public_key"]),
                    nonce=bytes.fromhex(case["nonce"]),
                ).hex(),
            },
        )
        return
    bundle = resolve(case["bundle"], data, "bundle")

    def unwrap() -> dict[str, Any]:
        result = fmt.unwrap_key_bundle(
            bundle, unlock_key=unlock, server_share=share, account=case["account"]
        )
        return {
            "patient_private_key": result.patient_private_key.hex(),
            "patient_public_key": result.patient_public_key.hex(),
            "pharmacy_public_key": result.pharmacy_public_key.hex(),
        }

    check(case["expected"], unwrap)


@pytest.mark.parametrize(("data", "case"), cases_of("enrollment.json"))
def test_enrollment(data: dict[str, Any], case: dict[str, Any]) -> None:
    operation = case["operation"]
    if operation == "derive":
        code = fmt.enrollment_code_from_secret(bytes.fromhex(case["secret"]))

        def derive() -> dict[str, Any]:
            derived = fmt.derive_enrollment(code)
            assert fmt.parse_enrollment_code(code.text) == code
            return {
                "text": code.text,
                "compact": code.compact,
                "url": fmt.enrollment_url(case["base_url"], code),
                "lookup_id": derived.lookup_id,
                "binding_key": derived.binding_key.hex(),
                "pin_key": derived.pin_key.hex(),
                "pin_tag": fmt.pin_tag(code, key(data, case["pharmacy_public_key"])).hex(),
                "binding_mac": fmt.binding_mac(
                    derived.binding_key,
                    data["keys"][case["handle"]],
                    key(data, case["patient_public_key"]),
                ).hex(),
            }

        check(case["expected"], derive)
        return
    if operation == "parse":
        check(
            case["expected"],
            lambda: {"secret": fmt.parse_enrollment_code(case["input"]).secret.hex()},
        )
        return
    source = next(c for c in data["cases"] if c.get("id") == case["of_case"])
    code = fmt.enrollment_code_from_secret(bytes.fromhex(source["secret"]))
    if operation == "verify_binding":
        binding_key = fmt.derive_enrollment(code).binding_key

        def verify_binding() -> dict[str, Any]:
            fmt.verify_binding(
                binding_key,
                data["keys"][case["handle"]],
                key(data, case["patient_public_key"]),
                bytes.fromhex(case["mac"]),
            )
            return {}

        check(case["expected"], verify_binding)
    else:

        def verify_pin() -> dict[str, Any]:
            fmt.verify_pin_tag(
                code, key(data, case["pharmacy_public_key"]), bytes.fromhex(case["tag"])
            )
            return {}

        check(case["expected"], verify_pin)


def leaf_of(value: dict[str, Any]) -> fmt.Leaf:
    return fmt.Leaf(value["handle"], value["version"], value["deleted"])


def leaves_of(ref: dict[str, Any], data: dict[str, Any]) -> list[fmt.Leaf]:
    source = next(c for c in data["cases"] if c.get("id") == ref["of_case"])
    return [leaf_of(value) for value in source["leaves"]]


@pytest.mark.parametrize(("data", "case"), cases_of("statement.json"))
def test_statement(data: dict[str, Any], case: dict[str, Any]) -> None:
    operation = case["operation"]
    if operation == "tree":
        leaves = [leaf_of(value) for value in case["leaves"]]

        def tree() -> dict[str, Any]:
            built = fmt.merkle_tree(leaves)
            assert fmt.merkle_root(leaves) == built.root
            return {
                "leaf_hashes": [fmt.leaf_hash(leaf).hex() for leaf in leaves],
                "root": built.root.hex(),
                "paths": [[node.hex() for node in built.proof(i)] for i in range(len(leaves))],
            }

        check(case["expected"], tree)
    elif operation == "make":
        pharmacy = fmt.PharmacyKey.from_private_bytes(key(data, case["pharmacy_private_key"]))
        leaves = leaves_of(case["leaves"], data)
        check(
            case["expected"],
            lambda: {
                "statement_hex": fmt.make_statement(
                    pharmacy_key=pharmacy, seq=case["seq"], as_of=when(case["as_of"]), leaves=leaves
                ).hex()
            },
        )
    elif operation == "verify":
        raw = resolve(case["statement"], data, "statement")
        public = key(data, case["pharmacy_public_key"])

        def verify() -> dict[str, Any]:
            statement = fmt.verify_statement(raw, public)
            return {
                "pharmacy_id": statement.pharmacy_id,
                "seq": statement.seq,
                "as_of": stamp(statement.as_of),
                "size": statement.size,
                "root": statement.root.hex(),
            }

        check(case["expected"], verify)
    elif operation == "verify_inclusion":
        raw = resolve(case["statement"], data, "statement")
        statement = fmt.verify_statement(raw, key(data, "pharmacy_public_key"))
        path = [bytes.fromhex(node) for node in case["path"]]

        def include() -> dict[str, Any]:
            fmt.verify_inclusion(statement, leaf_of(case["leaf"]), case["index"], path)
            return {}

        check(case["expected"], include)
    else:
        assert operation == "check_served"

        def served() -> dict[str, Any]:
            fmt.check_not_withheld(leaf_of(case["leaf"]), case["served_version"])
            return {}

        check(case["expected"], served)


# --------------------------------------------------------------------------- RFC 9180


RFC = json.loads((VECTORS / "rfc9180.json").read_text(encoding="utf-8"))["vectors"]


@pytest.mark.parametrize("vector", RFC)
def test_rfc9180_key_schedule(vector: dict[str, Any]) -> None:
    assert (vector["mode"], vector["kem_id"], vector["kdf_id"], vector["aead_id"]) == (
        0,
        _hpke.KEM_ID,
        _hpke.KDF_ID,
        _hpke.AEAD_ID,
    )
    x = bytes.fromhex
    assert _hpke.derive_key_pair(x(vector["ikmE"])) == (x(vector["skEm"]), x(vector["pkEm"]))
    assert _hpke.derive_key_pair(x(vector["ikmR"])) == (x(vector["skRm"]), x(vector["pkRm"]))
    shared, enc = _hpke.encap(x(vector["pkRm"]), x(vector["skEm"]))
    assert (shared.hex(), enc.hex()) == (vector["shared_secret"], vector["enc"])
    assert _hpke.decap(enc, x(vector["skRm"])) == shared
    key_, nonce, exporter = _hpke.key_schedule(shared, x(vector["info"]))
    assert (key_.hex(), nonce.hex(), exporter.hex()) == (
        vector["key"],
        vector["base_nonce"],
        vector["exporter_secret"],
    )
    for export in vector["exports"]:
        value = _hpke.labeled_expand(exporter, b"sec", x(export["exporter_context"]), export["L"])
        assert value.hex() == export["exported_value"]


@pytest.mark.parametrize("vector", RFC)
def test_rfc9180_encryptions(vector: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    x = bytes.fromhex
    for encryption in vector["encryptions"]:
        seq = encryption["sequence_number"]
        nonce = (int(vector["base_nonce"], 16) ^ seq).to_bytes(12, "big")
        assert nonce.hex() == encryption["nonce"]
        sealed = AESGCM(x(vector["key"])).encrypt(
            nonce, x(encryption["plaintext"]), x(encryption["aad"])
        )
        assert sealed.hex() == encryption["ciphertext"]
    first = vector["encryptions"][0]
    assert first["sequence_number"] == 0
    enc, ciphertext = _hpke.seal_base(
        x(vector["pkRm"]),
        x(vector["info"]),
        x(first["plaintext"]),
        x(vector["skEm"]),
        aad=x(first["aad"]),
    )
    assert (enc.hex(), ciphertext.hex()) == (vector["enc"], first["ciphertext"])
    opened = _hpke.open_base(
        x(vector["skRm"]), enc, x(vector["info"]), ciphertext, aad=x(first["aad"])
    )
    assert opened.hex() == first["plaintext"]
    with pytest.raises(fmt.DecryptionFailed):
        _hpke.open_base(x(vector["skRm"]), enc, x(vector["info"]), ciphertext, aad=b"")


# --------------------------------------------------------------------------- regeneration


def test_checked_in_vectors_equal_a_fresh_generation() -> None:
    spec = importlib.util.spec_from_file_location("gen_vectors", ROOT / "tools" / "gen_vectors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.generate()
    assert sorted(generated) == sorted(FILES)
    for name, content in generated.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == module.render(content), name


def test_every_vector_file_is_run() -> None:
    on_disk = sorted(p.name for p in VECTORS.glob("*.json"))
    assert on_disk == sorted([*FILES, "rfc9180.json"])
