"""Sync statements: the Merkle tree against a naive RFC 9162 reading, proofs, and refusals."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault import format as fmt
from rxvault.format._canonical import canonical_json

from .strategies import counters, moments, whole_seconds

PHARMACY = fmt.PharmacyKey.from_private_bytes(bytes(range(32)))
OTHER = fmt.PharmacyKey.from_private_bytes(bytes(range(1, 33)))
WHEN = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def leaves(n: int) -> list[fmt.Leaf]:
    """``n`` sorted leaves with varied versions and states."""
    handles = sorted(hashlib.sha256(b"leaf %d" % i).hexdigest()[:32] for i in range(n))
    return [fmt.Leaf(h, 1 + (i * 7) % 5, i % 3 == 2) for i, h in enumerate(handles)]


# ------------------------------------------------------------------ an independent reading


def naive_leaf(leaf: fmt.Leaf) -> bytes:
    state = b"\x02" if leaf.deleted else b"\x01"
    data = leaf.handle.encode() + leaf.version.to_bytes(8, "big") + state
    return hashlib.sha256(b"\x00" + data).digest()


def naive_mth(hashes: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1, recursively, over leaf hashes."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(hashes[:k]) + naive_mth(hashes[k:])).digest()


def naive_path(m: int, hashes: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf-side first."""
    n = len(hashes)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, hashes[:k]), naive_mth(hashes[k:])]
    return [*naive_path(m - k, hashes[k:]), naive_mth(hashes[:k])]


def statement_for(items: list[fmt.Leaf], seq: int = 1) -> fmt.Statement:
    data = fmt.make_statement(pharmacy_key=PHARMACY, seq=seq, as_of=WHEN, leaves=items)
    return fmt.verify_statement(data, PHARMACY.public_bytes())


# ------------------------------------------------------------------ tree


def test_leaf_encoding_is_fixed() -> None:
    leaf = fmt.Leaf("ab" * 16, 258, False)
    expected = hashlib.sha256(b"\x00" + b"ab" * 16 + bytes(6) + b"\x01\x02" + b"\x01").digest()
    assert fmt.leaf_hash(leaf) == expected
    assert fmt.leaf_hash(fmt.Leaf("ab" * 16, 258, True)) != expected


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert fmt.merkle_root([]) == hashlib.sha256(b"").digest()
    assert fmt.merkle_tree([]).size == 0


@pytest.mark.parametrize("n", [*range(0, 70), 127, 128, 129, 255, 256, 257, 1000, 1025])
def test_root_and_paths_equal_the_naive_definition(n: int) -> None:
    items = leaves(n)
    hashes = [naive_leaf(leaf) for leaf in items]
    tree = fmt.merkle_tree(items)
    assert tree.root == naive_mth(hashes) == fmt.merkle_root(items)
    assert tree.size == n
    step = 1 if n <= 70 else 37
    for index in range(0, n, step):
        assert tree.proof(index) == naive_path(index, hashes)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 8, 9, 100, 1025])
def test_the_tree_of_packed_leaves_is_the_same_tree(n: int) -> None:
    items = leaves(n)
    packed = fmt.pack_leaves(items)
    assert len(packed) == 41 * n
    assert packed == b"".join(
        leaf.handle.encode()
        + leaf.version.to_bytes(8, "big")
        + (b"\x02" if leaf.deleted else b"\x01")
        for leaf in items
    )
    tree, fast = fmt.merkle_tree(items), fmt.merkle_tree_packed(packed)
    assert fast.root == tree.root == naive_mth([naive_leaf(leaf) for leaf in items])
    assert fast.size == n
    assert [fast.proof(i) for i in range(n)] == [tree.proof(i) for i in range(n)]


def _packed_with(index: int, start: int, replacement: bytes) -> bytes:
    packed = bytearray(fmt.pack_leaves(leaves(5)))
    at = 41 * index + start
    packed[at : at + len(replacement)] = replacement
    return bytes(packed)


@pytest.mark.parametrize(
    ("packed", "index"),
    [
        (_packed_with(2, 0, b"A"), 2),  # uppercase hex
        (_packed_with(3, 31, b"g"), 3),  # not hex
        (_packed_with(1, 32, bytes(8)), 1),  # version 0
        (_packed_with(4, 32, (2**53).to_bytes(8, "big")), 4),  # version past 2**53 - 1
        (_packed_with(0, 40, b"\x00"), 0),  # no state
        (_packed_with(2, 40, b"\x03"), 2),  # unknown state
        (_packed_with(2, 0, fmt.pack_leaves(leaves(5))[41:73]), 2),  # same handle twice
        (_packed_with(1, 0, b"f" * 32), 2),  # out of order
    ],
)
def test_malformed_packed_leaves_are_refused(packed: bytes, index: int) -> None:
    with pytest.raises(
        ValueError, match=f"packed leaf {index} is malformed or out of handle order"
    ):
        fmt.merkle_tree_packed(packed)


def test_packed_leaves_of_a_partial_leaf_are_refused() -> None:
    with pytest.raises(ValueError, match="41 bytes each"):
        fmt.merkle_tree_packed(fmt.pack_leaves(leaves(3))[:-1])


@pytest.mark.parametrize("n", range(1, 40))
def test_every_proof_of_small_trees_verifies(n: int) -> None:
    items = leaves(n)
    tree = fmt.merkle_tree(items)
    statement = statement_for(items)
    for index, leaf in enumerate(items):
        fmt.verify_inclusion(statement, leaf, index, tree.proof(index))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_any_change_to_a_proof_fails(n: int) -> None:
    items = leaves(n)
    tree = fmt.merkle_tree(items)
    statement = statement_for(items)
    for index, leaf in enumerate(items):
        path = tree.proof(index)
        for other in range(-1, n + 2):
            if other != index:
                with pytest.raises(fmt.InclusionInvalid):
                    fmt.verify_inclusion(statement, leaf, other, path)
        for size in range(n + 3):
            # The size is signed; a changed size whose path has another shape must fail.
            if index >= size or len(naive_path(index, [bytes(32)] * size)) != len(path):
                resized = fmt.Statement(statement.pharmacy_id, 1, WHEN, size, statement.root)
                with pytest.raises(fmt.InclusionInvalid):
                    fmt.verify_inclusion(resized, leaf, index, path)
        for position, node in enumerate(path):
            for byte in range(32):
                changed = bytearray(node)
                changed[byte] ^= 0x01
                bad = [*path[:position], bytes(changed), *path[position + 1 :]]
                with pytest.raises(fmt.InclusionInvalid):
                    fmt.verify_inclusion(statement, leaf, index, bad)
        with pytest.raises(fmt.InclusionInvalid):
            fmt.verify_inclusion(statement, leaf, index, [*path, bytes(32)])
        if path:
            with pytest.raises(fmt.InclusionInvalid):
                fmt.verify_inclusion(statement, leaf, index, path[:-1])
            with pytest.raises(fmt.MalformedObject):
                fmt.verify_inclusion(statement, leaf, index, [path[0][:31], *path[1:]])
        for changed_leaf in (
            fmt.Leaf(leaf.handle, leaf.version + 1, leaf.deleted),
            fmt.Leaf(leaf.handle, leaf.version, not leaf.deleted),
            fmt.Leaf(leaf.handle[:-1] + ("0" if leaf.handle[-1] != "0" else "1"), 1, False),
        ):
            with pytest.raises(fmt.InclusionInvalid):
                fmt.verify_inclusion(statement, changed_leaf, index, path)
        other_root = fmt.Statement(statement.pharmacy_id, 1, WHEN, n, bytes(32))
        with pytest.raises(fmt.InclusionInvalid):
            fmt.verify_inclusion(other_root, leaf, index, path)


def test_nothing_is_included_in_the_empty_tree() -> None:
    with pytest.raises(fmt.InclusionInvalid):
        fmt.verify_inclusion(statement_for([]), fmt.Leaf("ab" * 16, 1, False), 0, [])


def test_tree_refuses_unsorted_or_repeated_handles_and_bad_leaves() -> None:
    a, b = fmt.Leaf("aa" * 16, 1, False), fmt.Leaf("bb" * 16, 1, False)
    with pytest.raises(ValueError, match="sorted"):
        fmt.merkle_tree([b, a])
    with pytest.raises(ValueError, match="sorted"):
        fmt.merkle_tree([a, a])
    for bad in (fmt.Leaf("AA" * 16, 1, False), fmt.Leaf("aa" * 16, 0, False)):
        with pytest.raises(fmt.MalformedObject):
            fmt.merkle_root([bad])
    with pytest.raises(IndexError):
        fmt.merkle_tree([a]).proof(1)


def test_withholding_check() -> None:
    leaf = fmt.Leaf("ab" * 16, 5, False)
    fmt.check_not_withheld(leaf, 5)
    fmt.check_not_withheld(leaf, 6)
    with pytest.raises(fmt.WithholdingDetected, match="withholding newer records"):
        fmt.check_not_withheld(leaf, 4)


# ------------------------------------------------------------------ the signed object


@settings(max_examples=30, deadline=None)
@given(seq=counters, as_of=moments, n=st.integers(0, 20))
def test_statement_round_trip(seq: int, as_of: datetime, n: int) -> None:
    items = leaves(n)
    data = fmt.make_statement(pharmacy_key=PHARMACY, seq=seq, as_of=as_of, leaves=items)
    assert data[:4] == b"RXS\x01"
    statement = fmt.verify_statement(data, PHARMACY.public_bytes())
    assert statement == fmt.Statement(
        pharmacy_id=PHARMACY.pharmacy_id,
        seq=seq,
        as_of=whole_seconds(as_of),
        size=n,
        root=naive_mth([naive_leaf(leaf) for leaf in items]),
    )
    with pytest.raises(fmt.SignatureInvalid):
        fmt.verify_statement(data, OTHER.public_bytes())


STATEMENT = fmt.make_statement(pharmacy_key=PHARMACY, seq=3, as_of=WHEN, leaves=leaves(5))


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, len(STATEMENT) - 1), mask=st.integers(1, 255))
def test_statement_any_byte_change_is_refused(position: int, mask: int) -> None:
    mutated = bytearray(STATEMENT)
    mutated[position] ^= mask
    with pytest.raises(fmt.FormatError):
        fmt.verify_statement(bytes(mutated), PHARMACY.public_bytes())


def signed(fields: dict[str, object], *, key: fmt.PharmacyKey = PHARMACY) -> bytes:
    header = canonical_json(fields)
    body = b"RXS\x01" + len(header).to_bytes(2, "big") + header
    return body + key.sign(body)


GOOD = {
    "as_of": "2026-12-04T09:30:00Z",
    "pharmacy_id": PHARMACY.pharmacy_id,
    "root": "00" * 32,
    "seq": 1,
    "size": 0,
}


def test_a_hand_built_statement_verifies() -> None:
    statement = fmt.verify_statement(signed(GOOD), PHARMACY.public_bytes())
    assert (statement.seq, statement.size, statement.root) == (1, 0, bytes(32))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"seq": 0}, fmt.MalformedObject),
        ({"seq": "1"}, fmt.MalformedObject),
        ({"seq": True}, fmt.MalformedObject),
        ({"size": -1}, fmt.MalformedObject),
        ({"size": None}, fmt.MalformedObject),
        ({"root": "00" * 31}, fmt.MalformedObject),
        ({"root": "AA" * 32}, fmt.MalformedObject),
        ({"root": "0g" * 32}, fmt.MalformedObject),
        ({"root": 0}, fmt.MalformedObject),
        ({"as_of": "2026-12-04T09:30:00+00:00"}, fmt.MalformedObject),
        ({"as_of": "2026-12-04T09:30:00.5Z"}, fmt.MalformedObject),
        ({"pharmacy_id": "AB" * 16}, fmt.MalformedObject),
        ({"pharmacy_id": OTHER.pharmacy_id}, fmt.SignatureInvalid),
        ({"extra": 1}, fmt.MalformedObject),
        ({"root": None, "size": None}, fmt.MalformedObject),
    ],
)
def test_malformed_headers_are_refused(change: dict[str, object], error: type) -> None:
    fields = {**GOOD, **change}
    fields = {k: v for k, v in fields.items() if v is not None or k not in ("root", "size")}
    with pytest.raises(error):
        fmt.verify_statement(signed(fields), PHARMACY.public_bytes())


def test_missing_member_is_refused() -> None:
    fields = {k: v for k, v in GOOD.items() if k != "size"}
    with pytest.raises(fmt.MalformedObject, match="missing"):
        fmt.verify_statement(signed(fields), PHARMACY.public_bytes())


def test_framing_errors_are_refused() -> None:
    good = signed(GOOD)
    public = PHARMACY.public_bytes()
    for data, error in [
        (b"", fmt.MalformedObject),
        (b"RXS", fmt.MalformedObject),
        (b"RXT" + good[3:], fmt.MalformedObject),
        (b"RXS\x02" + good[4:], fmt.UnsupportedVersion),
        (good[:-1], fmt.MalformedObject),
        (good + b"\x00", fmt.MalformedObject),
        (good[:5], fmt.MalformedObject),
        (good[:20], fmt.MalformedObject),
        (signed(GOOD, key=OTHER), fmt.SignatureInvalid),
    ]:
        with pytest.raises(error):
            fmt.verify_statement(data, public)


def test_non_canonical_header_is_refused() -> None:
    header = b'{"as_of": "2026-12-04T09:30:00Z"}'
    body = b"RXS\x01" + len(header).to_bytes(2, "big") + header
    with pytest.raises(fmt.MalformedObject):
        fmt.verify_statement(body + PHARMACY.sign(body), PHARMACY.public_bytes())


def test_other_objects_cannot_pass_as_statements() -> None:
    tombstone = fmt.make_tombstone(
        pharmacy_key=PHARMACY, handle="ab" * 16, version=2, deleted_at=WHEN
    )
    with pytest.raises(fmt.MalformedObject):
        fmt.verify_statement(tombstone, PHARMACY.public_bytes())
    with pytest.raises(fmt.MalformedObject):
        fmt.verify_tombstone(STATEMENT, PHARMACY.public_bytes())


def test_make_statement_refuses_bad_seq() -> None:
    with pytest.raises(fmt.MalformedObject):
        fmt.make_statement(pharmacy_key=PHARMACY, seq=0, as_of=WHEN, leaves=[])


@pytest.mark.parametrize("member", ["seq", "size"])
def test_integers_beyond_2_53_are_refused(member: str) -> None:
    header = canonical_json({**GOOD, member: 7}).replace(
        f'"{member}":7'.encode(), f'"{member}":{2**53}'.encode()
    )
    body = b"RXS\x01" + len(header).to_bytes(2, "big") + header
    with pytest.raises(fmt.MalformedObject):
        fmt.verify_statement(body + PHARMACY.sign(body), PHARMACY.public_bytes())
    largest = fmt.verify_statement(signed({**GOOD, member: 2**53 - 1}), PHARMACY.public_bytes())
    assert getattr(largest, member) == 2**53 - 1


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(-(2**60), 2**60),
    size=st.integers(0, 2**53 - 1),
    path=st.lists(st.binary(min_size=30, max_size=33), max_size=60),
    version=st.integers(-5, 2**64),
)
def test_inclusion_check_raises_only_format_errors(
    index: int, size: int, path: list[bytes], version: int
) -> None:
    statement = fmt.Statement(PHARMACY.pharmacy_id, 1, WHEN, size, bytes(32))
    with pytest.raises(fmt.FormatError):
        fmt.verify_inclusion(statement, fmt.Leaf("ab" * 16, version, False), index, path)
