"""Harnesses 4 and 9, the patient's side: a malicious server (the real app behind a hostile layer
that rewrites its answers) against the Python client.

The server forges a block with the patient's public key (anyone can encrypt to it; nobody but the
pharmacy can sign), swaps the pharmacy key (at registration, in the key-bundle answer, on a
block), swaps the key bundle or the server share, names another handle, replays older blocks and
deletions (also after the client process ends: the versions shown are kept in a file), and
withholds updates. Each is refused with a clear message. Withholding is refused once the answer
carries the pharmacy's sync statement (a signed Merkle tree head over every record the server
holds, with the patient's inclusion proof); the server can drop the statement, or show an older
one, only to a client that has never seen a newer one. Without any statement the client sees
only the signed as-of time, and warns when it is old (threat model §6.3.1).

The agent's side (a patient key swapped in the key directory) is tested in
``tests/agent/test_keys.py`` and, for a replayed old registration, in
``tests/security/test_key_directory_rollback.py``. The portal's side is
``tests/browser/test_attacks.py`` and ``tests/browser/test_malicious_server.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from rxvault import format as fmt
from rxvault.client import ClientError, PatientClient, SeenVersions
from rxvault.format._hpke import seal_base
from rxvault.format._padding import compress, pad

from .conftest import PASSWORD, PharmacySide, Server, b64, hostile_client


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: what is tested here is the client, whatever database the server uses."""
    from rxvault.server._db import create_db_engine, migrate

    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'server.db'}"
    engine = create_db_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return url


DOC1 = fmt.canonical_json({"name": "Version One", "rx": ["Amoxicillin"]})
DOC2 = fmt.canonical_json({"name": "Version Two", "rx": ["Amoxicillin", "Metformin"]})


def _patient(server: Server, pharmacy: PharmacySide, pid: str, **kwargs):
    client, hostile = hostile_client(server, **kwargs)
    client.register(pharmacy.enroll(pid), f"user-{pid.lower()}", PASSWORD)
    return client, hostile


def _serve(hostile, envelope: bytes | None = None, **fields) -> None:
    def change(body: dict) -> None:
        if envelope is not None:
            body.update(state="live", envelope=b64(envelope))
            body.pop("tombstone", None)
        body.update(fields)

    hostile.rewrite["/api/v1/me/block"] = change


def _refused(client: PatientClient, code: str, *words: str) -> ClientError:
    with pytest.raises(ClientError) as info:
        client.fetch()
    assert info.value.code == code, info.value
    for word in words:
        assert word in info.value.message, info.value.message
    return info.value


def test_forged_blocks_are_refused(server, pharmacy) -> None:
    client, hostile = _patient(server, pharmacy, "F1")
    genuine = pharmacy.block("F1", DOC1)
    pharmacy.upload(*pharmacy.batch([genuine]))
    assert client.fetch().document == DOC1
    public_key = pharmacy.directory()[pharmacy.handle("F1")]
    forged_doc = fmt.canonical_json({"name": "Forged", "rx": ["Fentanyl 100mcg"]})
    # 1. Sealed to the patient's public key (which the server has), signed by a key of its own.
    own_key = fmt.generate_pharmacy_key()
    forged = fmt.seal_block(
        forged_doc,
        pharmacy_key=own_key,
        handle=pharmacy.handle("F1"),
        version=99,
        as_of=server.clock.now(),
        recipient_public_key=public_key,
    )
    _serve(hostile, forged, version=99)
    _refused(client, "block_invalid", "signature")
    # 2. The genuine header and signature around a ciphertext of the server's own, made with the
    # genuine header as HPKE info: the signature covers the ciphertext, so it fails.
    end = 6 + int.from_bytes(genuine[4:6], "big")
    info = genuine[:end]
    enc, ciphertext = seal_base(public_key, info, pad(compress(forged_doc)), os.urandom(32))
    spliced = info + enc + ciphertext + genuine[-64:]
    assert len(spliced) == len(genuine)
    _serve(hostile, spliced)
    _refused(client, "block_invalid", "signature")
    # 3. A tombstone signed by the server's key.
    tomb = fmt.make_tombstone(
        pharmacy_key=own_key,
        handle=pharmacy.handle("F1"),
        version=50,
        deleted_at=server.clock.now(),
    )
    hostile.rewrite["/api/v1/me/block"] = lambda body: {
        "state": "deleted",
        "handle": body["handle"],
        "version": 50,
        "tombstone": b64(tomb),
    }
    _refused(client, "block_invalid", "deletion was refused")
    # Served honestly again, the genuine block opens: nothing was remembered from the forgeries.
    hostile.rewrite.clear()
    assert client.fetch().document == DOC1


def test_swapped_pharmacy_keys_are_refused(server, pharmacy) -> None:
    attacker = fmt.generate_pharmacy_key()
    # At registration: the pin tag (from the enrollment code) does not match the swapped key.
    client, hostile = hostile_client(server)

    def swap_start(body: dict) -> None:
        body["pharmacy"]["public_key"] = b64(attacker.public_bytes())

    hostile.rewrite["/api/v1/registration/start"] = swap_start
    code = pharmacy.enroll("K1")
    with pytest.raises(ClientError) as info:
        client.register(code, "user-k1", PASSWORD)
    assert info.value.code == "pin_tag_invalid"
    assert "does not match the enrollment code" in info.value.message
    assert "/api/v1/registration" not in hostile.seen  # nothing was registered
    # The genuine registration goes through; then the key-bundle answer names the attacker's
    # key: the client uses the key pinned inside the bundle, so the attacker's block is refused.
    hostile.rewrite.clear()
    client.register(code, "user-k1", PASSWORD)
    pharmacy.upload(*pharmacy.batch([pharmacy.block("K1", DOC1)]))

    def swap_bundle(body: dict) -> None:
        body["pharmacy_public_key"] = b64(attacker.public_bytes())

    hostile.rewrite["/api/v1/me/key-bundle"] = swap_bundle
    client.login("user-k1", PASSWORD)
    assert client.unlocked is not None
    assert client.unlocked.pharmacy_public_key == pharmacy.key.public_bytes()
    forged = fmt.seal_block(
        b'{"forged": true}',
        pharmacy_key=attacker,
        handle=pharmacy.handle("K1"),
        version=5,
        as_of=server.clock.now(),
        recipient_public_key=pharmacy.directory()[pharmacy.handle("K1")],
    )
    _serve(hostile, forged, version=5)
    _refused(client, "block_invalid", "signature")


def test_swapped_key_bundles_and_handles_are_refused(server, pharmacy) -> None:
    a, hostile = _patient(server, pharmacy, "B1")
    b, b_hostile = _patient(server, pharmacy, "B2")
    pharmacy.upload(
        *pharmacy.batch([pharmacy.block("B1", DOC1), pharmacy.block("B2", b'{"b": 2}')])
    )
    b.login("user-b2", PASSWORD)
    b_bundle = b_hostile.seen["/api/v1/me/key-bundle"]
    # Another patient's bundle (account name in the AEAD data, another wrapping key).
    hostile.rewrite["/api/v1/me/key-bundle"] = lambda body: {
        **body,
        "key_bundle": b_bundle["key_bundle"],
    }
    with pytest.raises(ClientError) as info:
        a.login("user-b1", PASSWORD)
    assert (info.value.code, info.value.message) == (
        "bundle_invalid",
        "The key bundle does not open.",
    )
    # Its own bundle with another server share, or under another account name.
    for field, value in (("server_share", b64(os.urandom(32))), ("username", "user-b2")):
        hostile.rewrite["/api/v1/me/key-bundle"] = lambda body, f=field, v=value: {**body, f: v}
        with pytest.raises(ClientError, match="bundle_invalid"):
            a.login("user-b1", PASSWORD)
    # The other patient's handle and block together: the block is not sealed to this key.
    hostile.rewrite["/api/v1/me/key-bundle"] = lambda body: {**body, "handle": b_bundle["handle"]}
    a.login("user-b1", PASSWORD)
    other_block = b_hostile.seen.get("/api/v1/me/block") or b.http.get("/api/v1/me/block").json()
    hostile.rewrite["/api/v1/me/block"] = lambda body: other_block
    _refused(a, "block_invalid", "refused")
    # Its own handle, the other patient's block: the handle does not match.
    hostile.rewrite.clear()
    a.login("user-b1", PASSWORD)
    hostile.rewrite["/api/v1/me/block"] = lambda body: {**other_block, "handle": body["handle"]}
    _refused(a, "block_invalid", "another patient handle")


def test_replayed_older_blocks_and_deletions_are_refused(server, pharmacy) -> None:
    """Harness 4 (client): never older than shown, blocks and deletions in any order."""
    client, hostile = _patient(server, pharmacy, "R1")
    v1 = pharmacy.block("R1", DOC1)
    pharmacy.upload(*pharmacy.batch([v1]))
    assert client.fetch().version == 1
    pharmacy.upload(*pharmacy.batch([pharmacy.block("R1", DOC2)]))
    assert (client.fetch().version, client.fetch().document) == (2, DOC2)
    _serve(hostile, v1, version=1)
    error = _refused(client, "rollback_refused", "older copy", "version 1", "version 2")
    assert "call your pharmacy" in error.message
    # A deletion (v3) shown, then the genuine older block v2 replayed: refused.
    hostile.rewrite.clear()
    tomb3 = pharmacy.tombstone("R1")
    pharmacy.upload(*pharmacy.batch([], [tomb3]))
    assert (client.fetch().state, client.fetch().version) == ("deleted", 3)
    v2 = _genuine_v2(pharmacy, server, DOC2)
    _serve(hostile, v2, version=2)
    _refused(client, "rollback_refused", "version 2", "deletion (version 3)")
    # The replayed object is genuine: a client without that history opens it.
    fresh, fresh_hostile = hostile_client(server)
    fresh.login("user-r1", PASSWORD)
    _serve(fresh_hostile, v2, version=2)
    assert fresh.fetch().document == DOC2


def _genuine_v2(pharmacy: PharmacySide, server: Server, doc: bytes) -> bytes:
    """A genuine, validly signed block at version 2 (what the server stored before)."""
    saved = dict(pharmacy.versions)
    try:
        return pharmacy.block("R1", doc, version=2)
    finally:
        pharmacy.versions = saved


def test_versions_shown_survive_the_process(server, pharmacy, tmp_path: Path) -> None:
    """The high-water mark is kept per server and handle in a file: a new process (a later
    ``rxvault patient fetch``) refuses what an earlier one had already superseded."""
    path = tmp_path / "state" / "patient-versions.json"
    client, _ = _patient(server, pharmacy, "S1", seen=SeenVersions(path))
    v1 = pharmacy.block("S1", DOC1)
    pharmacy.upload(*pharmacy.batch([v1]))
    pharmacy.upload(*pharmacy.batch([pharmacy.block("S1", DOC2)]))
    assert client.fetch().version == 2
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    stored = json.loads(path.read_text())
    assert list(stored.values()) == [{"block": 2, "deletion": 0}]
    assert "S1" not in path.read_text()
    assert "Version" not in path.read_text()
    later, later_hostile = hostile_client(server, seen=SeenVersions(path))
    later.login("user-s1", PASSWORD)
    _serve(later_hostile, v1, version=1)
    _refused(later, "rollback_refused", "version 1", "version 2")
    # Without the file (a new computer) the old block is accepted: the documented limit.
    elsewhere, elsewhere_hostile = hostile_client(server)
    elsewhere.login("user-s1", PASSWORD)
    _serve(elsewhere_hostile, v1, version=1)
    assert elsewhere.fetch().version == 1
    # A damaged file is an error naming it, never a silent reset.
    path.write_text("{not json")
    with pytest.raises(ClientError) as info:
        SeenVersions(path)
    assert info.value.code == "seen_versions_unreadable"
    assert str(path) in info.value.message


def test_withholding_is_visible_only_through_the_signed_time(server, pharmacy, tmp_path) -> None:
    """The server keeps serving the genuine v1 after v2 was uploaded, and no sync statement (as
    for a pharmacy whose agent never sent one; with a statement the client refuses, see
    test_withholding_proven_by_a_statement_is_refused). A client that never saw v2 cannot tell;
    it sees the as-of time, and the command line warns once it is over 48 hours old. A client
    that saw v2 refuses v1 (above); one told 'pending' after it showed records says so."""
    client, hostile = _patient(server, pharmacy, "W1")
    old_time = server.clock.now()
    v1 = pharmacy.block("W1", DOC1)
    pharmacy.upload(*pharmacy.batch([v1]))
    server.clock.advance(days=3)
    pharmacy.upload(*pharmacy.batch([pharmacy.block("W1", DOC2)]))
    _serve(hostile, v1, version=1)
    client.login("user-w1", PASSWORD)  # the session timed out over the three days
    records = client.fetch()
    assert records.version == 1  # withheld, and undetectable from the block alone
    assert records.as_of == old_time
    now = old_time + dt.timedelta(days=3)
    age = records.age_hours(now)
    assert age is not None
    assert age > 48

    # The command line says how old the records are, and warns.
    from rxvault.cli import main
    from rxvault.client import cli

    state = tmp_path / "versions.json"
    made: list[PatientClient] = []

    def fake_client(url: str, state_file: Path | None = None) -> PatientClient:
        c, h = hostile_client(server, seen=SeenVersions(state_file))
        h.rewrite.update(hostile.rewrite)
        made.append(c)
        return c

    runner = CliRunner()
    env = {"RXVAULT_PASSWORD": PASSWORD}
    args = ["--server", "https://portal.test", "--username", "user-w1", "--state-file", str(state)]
    original = cli._client
    cli._client = fake_client  # type: ignore[assignment]
    try:
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code == 0, result.output
        assert "records as of" in result.stderr
        assert "may be out of date" in result.stderr
        # Served honestly: version 2, remembered in the file.
        hostile.rewrite.clear()
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == json.loads(DOC2)
        # The old block again, in a later run: refused with a clear message.
        _serve(hostile, v1, version=1)
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code != 0
        assert "older copy of your records" in result.output
        assert "Traceback" not in result.output
        # "Nothing published" after this computer showed version 2: said plainly.
        hostile.rewrite["/api/v1/me/block"] = lambda body: {
            "state": "pending",
            "handle": body["handle"],
        }
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code != 0
        assert "has shown version 2 before" in result.output
        assert "withholding" in result.output
    finally:
        cli._client = original  # type: ignore[assignment]
    assert len(made) == 4


# --------------------------------------------------------------------------- sync statements


def _statement(
    pharmacy: PharmacySide,
    entries: dict[str, tuple[int, bool]],
    *,
    seq: int,
    as_of: dt.datetime,
    key: fmt.PharmacyKey | None = None,
) -> tuple[bytes, dict[str, dict]]:
    """A statement over ``entries`` (patient id -> version, deleted) plus a few other patients,
    and each listed patient's proof as the server sends it."""
    by_handle = {pharmacy.handle(pid): value for pid, value in entries.items()}
    for n in range(5):
        by_handle.setdefault(pharmacy.handle(f"OTHER-{n}"), (n + 1, n == 3))
    leaves = [fmt.Leaf(h, v, d) for h, (v, d) in sorted(by_handle.items())]
    tree = fmt.merkle_tree(leaves)
    data = fmt.make_statement(pharmacy_key=key or pharmacy.key, seq=seq, as_of=as_of, leaves=leaves)
    proofs = {}
    for pid in entries:
        index = next(i for i, leaf in enumerate(leaves) if leaf.handle == pharmacy.handle(pid))
        proofs[pid] = {
            "index": index,
            "version": leaves[index].version,
            "deleted": leaves[index].deleted,
            "path": [node.hex() for node in tree.proof(index)],
        }
    return data, proofs


def test_withholding_proven_by_a_statement_is_refused(server, pharmacy) -> None:
    """The server keeps serving the genuine v1 after v2 was uploaded, next to the pharmacy's
    statement of that sync: the proof shows the server holds v2, so v1 is refused."""
    client, hostile = _patient(server, pharmacy, "P1")
    v1 = pharmacy.block("P1", DOC1)
    pharmacy.upload(*pharmacy.batch([v1]))
    server.clock.advance(days=1)
    client.login("user-p1", PASSWORD)  # the session timed out over the day
    sync_time = server.clock.now()
    pharmacy.upload(*pharmacy.batch([pharmacy.block("P1", DOC2)]))
    statement, proofs = _statement(pharmacy, {"P1": (2, False)}, seq=7, as_of=sync_time)
    _serve(hostile, v1, version=1, statement=b64(statement), proof=proofs["P1"])
    error = _refused(client, "withholding_detected", "withholding newer records", "version 2")
    assert "version 1" in error.message
    assert "call your pharmacy" in error.message
    assert client.min_version == 0  # nothing of the refused answer was taken up
    # Served honestly: v2 with the same statement opens, and the statement is kept.
    hostile.rewrite.clear()
    _serve(hostile, None, statement=b64(statement), proof=proofs["P1"])
    records = client.fetch()
    assert (records.version, records.document) == (2, DOC2)
    assert records.statement is not None
    assert (records.statement.seq, records.updated_at) == (7, sync_time)
    # A block newer than the statement (uploaded after it was made) is fine with the old proof.
    server.clock.advance(minutes=5)
    v3 = pharmacy.block("P1", DOC1)
    pharmacy.upload(*pharmacy.batch([v3]))
    records = client.fetch()
    assert records.version == 3
    # ... and without a proof, if signed at or after the statement's time; an older block
    # without a proof is refused (a statement covers every record the server held).
    _serve(hostile, v3, version=3, statement=b64(statement), proof=None)
    assert client.fetch().version == 3
    later, later_hostile = hostile_client(server)
    later.login("user-p1", PASSWORD)
    _serve(later_hostile, v1, version=1, statement=b64(statement), proof=None)
    _refused(later, "withholding_detected", "without the proof")
    # A deletion the statement proves, hidden behind the older block: refused too.
    tomb_statement, tomb_proofs = _statement(
        pharmacy, {"P1": (9, True)}, seq=8, as_of=server.clock.now()
    )
    _serve(later_hostile, v3, version=3, statement=b64(tomb_statement), proof=tomb_proofs["P1"])
    _refused(later, "withholding_detected", "proves version 9")


def test_statements_are_checked_and_never_go_back(server, pharmacy, tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    client, hostile = _patient(server, pharmacy, "Q1", seen=SeenVersions(path))
    v1 = pharmacy.block("Q1", DOC1)
    pharmacy.upload(*pharmacy.batch([v1]))
    now = server.clock.now()
    s5, p5 = _statement(pharmacy, {"Q1": (1, False)}, seq=5, as_of=now)
    s4, p4 = _statement(pharmacy, {"Q1": (1, False)}, seq=4, as_of=now)
    _serve(hostile, None, statement=b64(s4), proof=p4["Q1"])
    assert client.fetch().statement.seq == 4  # type: ignore[union-attr]
    _serve(hostile, None, statement=b64(s5), proof=p5["Q1"])
    assert client.fetch().statement.seq == 5  # type: ignore[union-attr]
    # Kept per server and pharmacy, next to the versions shown; no record, no patient id.
    stored = json.loads(path.read_text())
    assert sorted(stored.values(), key=len) == [{"statement": 5}, {"block": 1, "deletion": 0}]
    assert any(pharmacy.key.pharmacy_id in key for key in stored)
    assert "Q1" not in path.read_text()
    # An older statement, or none at all, after this computer saw number 5: refused.
    _serve(hostile, None, statement=b64(s4), proof=p4["Q1"])
    _refused(client, "statement_rollback", "number 4", "number 5")
    _serve(hostile, None, statement=None, proof=None)
    _refused(client, "statement_missing", "number 5")
    # ... also in a later process that reads the file.
    later, later_hostile = hostile_client(server, seen=SeenVersions(path))
    later.login("user-q1", PASSWORD)
    _serve(later_hostile, None, statement=None, proof=None)
    _refused(later, "statement_missing", "number 5")
    # A computer that never saw a statement cannot tell (the documented limit).
    fresh, fresh_hostile = hostile_client(server)
    fresh.login("user-q1", PASSWORD)
    _serve(fresh_hostile, None, statement=None, proof=None)
    assert fresh.fetch().version == 1
    # Forged or damaged statements and proofs.
    attacker = fmt.generate_pharmacy_key()
    forged, forged_proofs = _statement(pharmacy, {"Q1": (1, False)}, seq=6, as_of=now, key=attacker)
    _serve(hostile, None, statement=b64(forged), proof=forged_proofs["Q1"])
    _refused(client, "statement_invalid", "signature")
    _serve(hostile, None, statement=b64(s5[:-1]), proof=p5["Q1"])
    _refused(client, "statement_invalid", "sync statement was refused")
    _serve(hostile, None, statement="%%%", proof=p5["Q1"])
    _refused(client, "statement_invalid")
    flipped = dict(p5["Q1"], path=["00" * 32, *p5["Q1"]["path"][1:]])
    for bad_proof in (
        flipped,
        dict(p5["Q1"], index=p5["Q1"]["index"] ^ 1),
        dict(p5["Q1"], version=2),
        dict(p5["Q1"], deleted=True),
        dict(p5["Q1"], deleted="no"),
        dict(p5["Q1"], path=p5["Q1"]["path"][:-1]),
        {"index": 0},
        "not a proof",
    ):
        _serve(hostile, None, statement=b64(s5), proof=bad_proof)
        _refused(client, "statement_invalid", "proof")
    # A pending answer may carry the statement and no proof.
    hostile.rewrite["/api/v1/me/block"] = lambda body: {
        "state": "pending",
        "handle": body["handle"],
        "statement": b64(s5),
        "proof": None,
    }
    records = client.fetch()
    assert (records.state, records.statement.seq) == ("pending", 5)  # type: ignore[union-attr]


def test_the_command_line_dates_records_by_the_statement(server, pharmacy, tmp_path) -> None:
    """A fresh statement: no 48-hour warning even if the block is old; an old statement:
    warned; withholding: a clear refusal."""
    from rxvault.cli import main
    from rxvault.client import cli

    client, hostile = _patient(server, pharmacy, "C1")
    v1 = pharmacy.block("C1", DOC1)  # signed at the fake clock's time, months ago
    pharmacy.upload(*pharmacy.batch([v1]))
    # The command line measures age against this computer's clock.
    fresh_time = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    fresh, fresh_proofs = _statement(pharmacy, {"C1": (1, False)}, seq=3, as_of=fresh_time)
    old, old_proofs = _statement(
        pharmacy, {"C1": (1, False)}, seq=3, as_of=fresh_time - dt.timedelta(days=3)
    )
    state = tmp_path / "versions.json"
    rewrite: dict = {}

    def fake_client(url: str, state_file: Path | None = None) -> PatientClient:
        c, h = hostile_client(server, seen=SeenVersions(state_file))
        h.rewrite.update(rewrite)
        return c

    def serve(envelope: bytes | None = None, **fields) -> None:
        hostile.rewrite.clear()
        _serve(hostile, envelope, **fields)
        rewrite.clear()
        rewrite.update(hostile.rewrite)

    runner = CliRunner()
    env = {"RXVAULT_PASSWORD": PASSWORD}
    args = ["--server", "https://portal.test", "--username", "user-c1", "--state-file", str(state)]
    original = cli._client
    cli._client = fake_client  # type: ignore[assignment]
    try:
        serve(statement=b64(fresh), proof=fresh_proofs["C1"])
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code == 0, result.output
        assert f"last updated the server on {fresh_time.isoformat()}" in result.stderr
        assert "out of date" not in result.stderr
        # A statement three days old: warned, even though it is the newest one.
        serve(statement=b64(old), proof=old_proofs["C1"])
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code == 0, result.output
        assert "last updated the server 3 days ago" in result.stderr
        assert "may be out of date" in result.stderr
        # Withholding, proven by a newer statement: refused, with a hint.
        pharmacy.upload(*pharmacy.batch([pharmacy.block("C1", DOC2)]))
        newer, newer_proofs = _statement(pharmacy, {"C1": (2, False)}, seq=4, as_of=fresh_time)
        serve(v1, version=1, statement=b64(newer), proof=newer_proofs["C1"])
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code != 0
        assert "withholding newer records" in result.output
        assert "hint: call your pharmacy" in result.output
        assert "Traceback" not in result.output
        # Then no statement at all: this computer saw number 3, so that is refused as well.
        serve(statement=None, proof=None)
        result = runner.invoke(main, ["patient", "fetch", *args], env=env)
        assert result.exit_code != 0
        assert "no sync statement" in result.output
        assert client.unlocked is not None
    finally:
        cli._client = original  # type: ignore[assignment]


def test_plain_http_is_refused_except_on_this_computer() -> None:
    """A network attacker (threat model §6.4): the client will not talk to a server over plain
    HTTP, where the auth key and the session would travel in clear; loopback is allowed."""
    for url in ("http://portal.example", "http://192.0.2.1:8000", "ftp://portal.example"):
        with pytest.raises(ValueError, match="must start with https://"):
            PatientClient(url)
    for url in ("https://portal.example", "http://127.0.0.1:8000", "http://localhost"):
        PatientClient(url).close()
    from rxvault.cli import main

    result = CliRunner().invoke(
        main,
        ["patient", "fetch", "--server", "http://portal.example", "--username", "someone"],
        env={"RXVAULT_PASSWORD": "a-password-123"},
    )
    assert result.exit_code != 0
    assert "must start with https://" in result.output
    assert "Traceback" not in result.output
