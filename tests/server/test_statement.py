"""Sync statements: accepted only when their root is the one of the server's records, stored with
a snapshot of the leaves, and served with the patient's inclusion proof, on every database."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.server import _statement as server_statement
from rxvault.server._models import AuditEntry, PharmacyStatement, StatementLeaves

from .conftest import PharmacySide, b64, unb64

PASSWORD = "correct horse battery staple"


def _code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def _leaves(pharmacy: Any, deleted: set[str]) -> list[fmt.Leaf]:
    """The leaves of what the pharmacy uploaded (its versions), sorted by handle."""
    return sorted(
        (fmt.Leaf(h, v, h in deleted) for h, v in pharmacy.versions.items()),
        key=lambda leaf: leaf.handle,
    )


def _statement(pharmacy: Any, seq: int, leaves: list[fmt.Leaf], key: Any = None) -> bytes:
    return fmt.make_statement(
        pharmacy_key=key or pharmacy.key,
        seq=seq,
        as_of=pharmacy.server.clock.now(),
        leaves=leaves,
    )


def _post(pharmacy: Any, data: bytes) -> Any:
    return pharmacy.http.post("/api/v1/agent/statement", json={"statement": b64(data)})


def _stored(server: Any) -> list[tuple[int, bytes]]:
    with server.admin() as admin:
        return [
            (r.seq, r.statement)
            for r in admin.session.execute(sa.select(PharmacyStatement)).scalars()
        ]


def _audit(server: Any) -> list[tuple[str, str]]:
    with server.admin() as admin:
        rows = admin.session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == "agent.statement")
        ).scalars()
        return [(r.outcome, r.target) for r in rows]


@pytest.fixture
def uploaded(server, pharmacy, patient_client) -> tuple[Any, Any, set[str]]:
    """A pharmacy with one registered patient's block (version 2) and two deletions; returns
    the pharmacy, the patient's client and the deleted handles."""
    alice = patient_client()
    alice.register(pharmacy.enroll("P1"), "alice", PASSWORD)
    pharmacy.block("P1", b'{"v": 1}')  # version 1, never sent: the server sees version 2
    tombstones = [pharmacy.tombstone("P7"), pharmacy.tombstone("P8")]
    batch_id, data = pharmacy.batch([pharmacy.block("P1", b'{"v": 2}')], tombstones)
    r = pharmacy.upload(batch_id, data)
    assert r.status_code == 200, r.text
    return pharmacy, alice, {pharmacy.handle("P7"), pharmacy.handle("P8")}


def _check_answer(block: dict[str, Any], pharmacy: Any, handle: str) -> fmt.Leaf:
    """Verify a /me/block answer's statement and proof as a client does; return the leaf."""
    statement = fmt.verify_statement(unb64(block["statement"]), pharmacy.key.public_bytes())
    proof = block["proof"]
    leaf = fmt.Leaf(handle, proof["version"], proof["deleted"])
    fmt.verify_inclusion(statement, leaf, proof["index"], [bytes.fromhex(p) for p in proof["path"]])
    return leaf


def test_a_matching_statement_is_stored_and_served_with_a_proof(server, uploaded) -> None:
    pharmacy, alice, deleted = uploaded
    leaves = _leaves(pharmacy, deleted)
    assert [leaf.version for leaf in leaves if leaf.handle == pharmacy.handle("P1")] == [2]
    data = _statement(pharmacy, 1, leaves)
    r = _post(pharmacy, data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["seq"], body["size"], body["root"]) == (1, 3, fmt.merkle_root(leaves).hex())
    assert pharmacy.http.get("/api/v1/agent/statement").json() == body
    assert _stored(server) == [(1, data)]
    # the same bytes again (a retry after a lost answer) get the same answer
    again = _post(pharmacy, data)
    assert again.status_code == 200
    assert again.json() == body
    assert _audit(server) == [("ok", "seq:1"), ("replayed", "seq:1")]

    block = alice.http.get("/api/v1/me/block").json()
    assert block["state"] == "live"
    assert unb64(block["statement"]) == data
    handle = pharmacy.handle("P1")
    assert _check_answer(block, pharmacy, handle) == fmt.Leaf(handle, 2, False)
    assert block["proof"]["index"] == [leaf.handle for leaf in leaves].index(handle)
    # the process's cache of built trees is only a cache: the same answer without it
    server_statement._cache.clear()
    assert alice.http.get("/api/v1/me/block").json() == block
    assert alice.fetch().version == 2


def test_refused_statements_store_nothing(server, uploaded) -> None:
    pharmacy, _, deleted = uploaded
    leaves = _leaves(pharmacy, deleted)
    good = _statement(pharmacy, 5, leaves)
    assert _post(pharmacy, good).status_code == 200

    other_key = fmt.generate_pharmacy_key()
    forged = _statement(pharmacy, 6, leaves, key=other_key)
    r = _post(pharmacy, forged)
    assert (r.status_code, _code(r)) == (422, "signature_invalid")
    tampered = bytearray(_statement(pharmacy, 6, leaves))
    tampered[-1] ^= 1
    r = _post(pharmacy, bytes(tampered))
    assert (r.status_code, _code(r)) == (422, "signature_invalid")

    for seq in (4, 5):
        r = _post(pharmacy, _statement(pharmacy, seq, leaves[:-1]))
        assert (r.status_code, _code(r)) == (409, "statement_stale")
        assert "not greater than the last accepted one (5)" in r.json()["error"]["message"]

    # other versions: same count, other root
    older = [fmt.Leaf(leaf.handle, leaf.version - 1 or 1, leaf.deleted) for leaf in leaves]
    r = _post(pharmacy, _statement(pharmacy, 6, older))
    assert (r.status_code, _code(r)) == (409, "statement_mismatch")
    message = r.json()["error"]["message"]
    assert message == (
        "The statement covers 3 records and the server holds 3 for this pharmacy "
        "(1 live, 2 deleted), with other versions or states."
    )
    # a leaf the server does not hold
    extra = sorted([*leaves, fmt.Leaf("f" * 32, 1, False)], key=lambda leaf: leaf.handle)
    r = _post(pharmacy, _statement(pharmacy, 6, extra))
    assert (r.status_code, _code(r)) == (409, "statement_mismatch")
    assert "covers 4 records but the server holds 3 for" in r.json()["error"]["message"]

    assert _stored(server) == [(5, good)]
    assert pharmacy.http.get("/api/v1/agent/statement").json()["seq"] == 5
    outcomes = [outcome for outcome, _ in _audit(server)]
    assert (
        outcomes
        == ["ok"]
        + ["refused:signature_invalid"] * 2
        + ["refused:statement_stale"] * 2
        + ["refused:statement_mismatch"] * 2
    )


def test_a_newer_statement_replaces_the_older_and_needs_the_upload_scope(server, uploaded):
    pharmacy, alice, deleted = uploaded
    assert pharmacy.http.get("/api/v1/agent/statement").status_code == 404
    assert _post(pharmacy, _statement(pharmacy, 1, _leaves(pharmacy, deleted))).status_code == 200
    batch_id, data = pharmacy.batch([pharmacy.block("P1", b'{"v": 3}')])
    assert pharmacy.upload(batch_id, data).status_code == 200

    # Until the next statement, the answer is the newer block with the older statement's proof.
    block = alice.http.get("/api/v1/me/block").json()
    assert block["version"] == 3
    leaf = _check_answer(block, pharmacy, pharmacy.handle("P1"))
    assert leaf.version == 2
    fmt.check_not_withheld(leaf, block["version"])

    second = _statement(pharmacy, 2, _leaves(pharmacy, deleted))
    assert _post(pharmacy, second).status_code == 200
    assert _stored(server) == [(2, second)]
    block = alice.http.get("/api/v1/me/block").json()
    assert unb64(block["statement"]) == second
    assert _check_answer(block, pharmacy, pharmacy.handle("P1")).version == 3

    with server.admin() as admin:
        read_only, _ = admin.create_token(pharmacy.slug, ("directory",))
    limited = server.client()
    limited.headers["Authorization"] = f"Bearer {read_only}"
    r = limited.post("/api/v1/agent/statement", json={"statement": b64(second)})
    assert (r.status_code, _code(r)) == (403, "insufficient_scope")

    # A key reset drops the statement signed with the old key.
    with server.admin() as admin:
        admin.reset_pharmacy_key(pharmacy.slug)
    assert _stored(server) == []
    assert alice.http.get("/api/v1/me/block").json()["statement"] is None


def test_a_handle_outside_the_snapshot_gets_the_statement_without_a_proof(
    server, pharmacy, patient_client
) -> None:
    alice = patient_client()
    alice.register(pharmacy.enroll("P1"), "alice", PASSWORD)
    assert alice.http.get("/api/v1/me/block").json()["statement"] is None
    data = _statement(pharmacy, 1, [])
    assert _post(pharmacy, data).status_code == 200
    block = alice.http.get("/api/v1/me/block").json()
    assert (block["state"], block["proof"]) == ("pending", None)
    assert fmt.verify_statement(unb64(block["statement"]), pharmacy.key.public_bytes()).size == 0


def test_a_statement_needs_the_pharmacy_key(server) -> None:
    from .conftest import PharmacySide

    side = PharmacySide(server, "no-key")
    r = _post(side, _statement(side, 1, []))
    assert (r.status_code, _code(r)) == (409, "pharmacy_key_missing")


def test_packed_leaves_are_the_format_leaf_bytes() -> None:
    leaves = [
        fmt.Leaf("0" * 32, 1, False),
        fmt.Leaf("0a" * 16, 2**40 + 3, True),
        fmt.Leaf("f" * 32, 7, False),
    ]
    packed = server_statement.pack_leaves(leaves)
    assert len(packed) == 41 * 3
    for i, leaf in enumerate(leaves):
        assert hashlib.sha256(b"\x00" + packed[41 * i : 41 * i + 41]).digest() == fmt.leaf_hash(
            leaf
        )
    assert server_statement.unpack_leaves(packed) == leaves
    snapshot = server_statement._Snapshot(1, b"", packed, fmt.merkle_tree(leaves))
    assert [snapshot.index_of(leaf.handle) for leaf in leaves] == [0, 1, 2]
    assert snapshot.index_of("1" * 32) is None
    assert snapshot.index_of("f" * 31 + "e") is None
    assert server_statement._Snapshot(1, b"", b"", fmt.merkle_tree([])).index_of("0" * 32) is None


def _snapshot(tag: bytes, n: int, pharmacy: int = 1) -> Any:
    leaves = [fmt.Leaf(f"{i:032x}", 1, False) for i in range(n)]
    packed = server_statement.pack_leaves(leaves)
    return server_statement._Snapshot(pharmacy, tag, packed, fmt.merkle_tree(leaves))


def test_the_cache_keeps_trees_within_its_leaf_budget() -> None:
    cache = server_statement._Cache(10)
    a, b, c = _snapshot(b"a", 4, 1), _snapshot(b"b", 5, 2), _snapshot(b"c", 12, 3)
    cache.put(a)
    cache.put(b)
    cache.put(a)  # again: counted once, and now the most recent
    assert (cache.get(b"a"), cache.get(b"b"), cache.leaves) == (a, b, 9)
    cache.put(c)  # over the budget alone: the most recent is always kept
    assert (cache.get(b"a"), cache.get(b"b"), cache.get(b"c"), cache.leaves) == (None, None, c, 12)


def test_a_pharmacys_newer_statement_replaces_its_older_tree() -> None:
    cache = server_statement._Cache(1_000)
    old, other, new = _snapshot(b"old", 4, 1), _snapshot(b"other", 5, 2), _snapshot(b"new", 6, 1)
    cache.put(old)
    cache.put(other)
    cache.put(new)
    assert (cache.get(b"old"), cache.get(b"other"), cache.get(b"new")) == (None, other, new)
    assert cache.leaves == 11


def test_the_migration_round_trips(engine) -> None:
    # a downgrade of the new revision drops the table, the upgrade brings it back
    from rxvault.server._db import migrate

    with engine.begin() as conn:
        from alembic import command

        from rxvault.server._db import _alembic_config

        command.downgrade(_alembic_config(conn), "0001")
        assert "pharmacy_statements" not in sa.inspect(conn).get_table_names()
    migrate(engine)
    assert "pharmacy_statements" in sa.inspect(engine).get_table_names()


def test_the_leaves_of_the_records_are_served_a_page_at_a_time(
    server, uploaded: tuple[Any, Any, set[str]]
) -> None:
    pharmacy, _, deleted = uploaded
    other = PharmacySide(server, "other-street")
    other.register_key()
    batch_id, data = other.batch([], [other.tombstone("Q1")])
    assert other.upload(batch_id, data).status_code == 200
    expected = fmt.pack_leaves(_leaves(pharmacy, deleted))
    assert len(expected) == 3 * 41
    r = pharmacy.http.get("/api/v1/agent/leaves")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (unb64(body["leaves"]), body["count"], body["more"], body["next_after"]) == (
        expected,
        3,
        False,
        None,
    )
    pages, after = [], ""
    while True:
        page = pharmacy.http.get("/api/v1/agent/leaves", params={"after": after, "limit": 2})
        assert page.status_code == 200, page.text
        body = page.json()
        pages.append(unb64(body["leaves"]))
        if not body["more"]:
            break
        after = body["next_after"]
        assert after == pages[-1][-41:-9].decode()
    assert [len(p) for p in pages] == [82, 41]
    assert b"".join(pages) == expected
    # the other pharmacy sees its own record only
    mine = unb64(other.http.get("/api/v1/agent/leaves").json()["leaves"])
    assert mine == fmt.pack_leaves([fmt.Leaf(other.handle("Q1"), 1, True)])
    for params in ({"after": "G" * 32}, {"after": "0" * 31}, {"limit": 0}, {"limit": 20_001}):
        bad = pharmacy.http.get("/api/v1/agent/leaves", params=params)
        assert bad.status_code == 422, params


def test_the_leaves_need_the_directory_scope(server, uploaded: tuple[Any, Any, set[str]]) -> None:
    with server.admin() as admin:
        upload_only, _ = admin.create_token("main-street", scopes=("upload",))
        reader, _ = admin.create_token("main-street", scopes=("directory",))
    http = server.client()
    assert http.get("/api/v1/agent/leaves").status_code == 401
    http.headers["Authorization"] = f"Bearer {upload_only}"
    assert http.get("/api/v1/agent/leaves").status_code == 403
    http.headers["Authorization"] = f"Bearer {reader}"
    assert http.get("/api/v1/agent/leaves").status_code == 200


def test_a_snapshot_is_stored_in_parts_and_read_back_whole(
    server, uploaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    pharmacy, alice, deleted = uploaded
    monkeypatch.setattr(server_statement, "PART_LEAVES", 2)  # 3 leaves: parts of 2 and 1
    leaves = _leaves(pharmacy, deleted)
    assert _post(pharmacy, _statement(pharmacy, 1, leaves)).status_code == 200
    with server.admin() as admin:
        parts = admin.session.execute(
            sa.select(StatementLeaves.part, StatementLeaves.leaves).order_by(StatementLeaves.part)
        ).all()
    assert [(part, len(data)) for part, data in parts] == [(0, 82), (1, 41)]
    assert b"".join(data for _, data in parts) == fmt.pack_leaves(leaves)
    server_statement._cache.clear()  # the next fetch reads the parts
    block = alice.http.get("/api/v1/me/block").json()
    handle = pharmacy.handle("P1")
    assert _check_answer(block, pharmacy, handle) == fmt.Leaf(handle, 2, False)
    # a newer statement over fewer parts leaves none of the older ones behind
    monkeypatch.setattr(server_statement, "PART_LEAVES", 20_000)
    assert _post(pharmacy, _statement(pharmacy, 2, leaves)).status_code == 200
    with server.admin() as admin:
        count = admin.session.execute(sa.select(sa.func.count()).select_from(StatementLeaves))
        assert count.scalar_one() == 1


def test_the_parts_migration_keeps_a_stored_snapshot(engine) -> None:
    from alembic import command

    from rxvault.server._db import _alembic_config, migrate

    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0003")
        conn.execute(
            sa.text(
                "INSERT INTO pharmacies (id, slug, name, directory_seq, created_at) "
                "VALUES (7, 'old', 'Old', 0, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO pharmacy_statements (pharmacy_id, seq, statement, leaves, "
                "received_at) VALUES (7, 3, :s, :l, CURRENT_TIMESTAMP)"
            ),
            {"s": b"statement", "l": b"L" * 123},
        )
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT pharmacy_id, part, leaves FROM statement_leaves"))
        assert [tuple(r) for r in rows] == [(7, 0, b"L" * 123)]
        columns = {c["name"] for c in sa.inspect(conn).get_columns("pharmacy_statements")}
        assert "leaves" not in columns
