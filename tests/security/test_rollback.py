"""Harness 4, the server's side: older, validly signed blocks, tombstones and batches re-sent
after newer ones are never applied.

A seeded random walk over two registered patients: new blocks (versions step by one or jump),
deletions, genuine older blocks and tombstones re-sent in new batches, whole earlier batches
re-sent under their own id (answered from the stored result), an earlier id with other bytes
(refused), batches mixing an old item for one patient and a new one for the other. After every
step the server's version and stored object for each handle are those of a model that keeps the
highest version, and a patient client following along accepts what is served (it never sees
the server go back).

Short form: 30 steps per database in ``make test``. Long form (``pytest -m long``): steps set by
``RXVAULT_ROLLBACK_STEPS`` (default 3000) and seeds by ``RXVAULT_ROLLBACK_SEEDS`` (default 5).
The spot checks that exist already: ``tests/server/test_flow.py`` (a replayed batch, an older
block, an old deletion replayed), ``tests/server/test_concurrency.py`` (the same batch at once).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest

from rxvault import format as fmt
from rxvault.client import ClientError

from .conftest import PASSWORD, PharmacySide, Server, unb64


@dataclass
class Model:
    version: int = 0
    kind: str = "pending"  # live, deleted or pending
    current: bytes | None = None
    history: list[tuple[int, str, bytes]] = field(default_factory=list)


def _walk(server: Server, pharmacy: PharmacySide, patient_client, steps: int, seed: int) -> dict:
    rng = random.Random(seed)
    pids = [f"RB{seed}-{i}" for i in range(2)]
    clients = {}
    for pid in pids:
        clients[pid] = patient_client()
        clients[pid].register(pharmacy.enroll(pid), f"rb{seed}-{pid[-1]}", PASSWORD)
    keys = pharmacy.directory()
    models = {pid: Model() for pid in pids}
    batches: list[tuple[str, bytes, dict]] = []
    counts = {"applied": 0, "stale": 0, "replayed": 0, "conflict": 0}

    def new_item(pid: str) -> tuple[int, str, bytes]:
        m = models[pid]
        version = m.version + rng.choice([1, 1, 1, 2, 7])
        handle = pharmacy.handle(pid)
        if rng.random() < 0.2:
            data = fmt.make_tombstone(
                pharmacy_key=pharmacy.key,
                handle=handle,
                version=version,
                deleted_at=server.clock.now(),
            )
            return version, "deleted", data
        doc = fmt.canonical_json({"pid": pid, "version": version, "n": str(rng.random())})
        data = fmt.seal_block(
            doc,
            pharmacy_key=pharmacy.key,
            handle=handle,
            version=version,
            as_of=server.clock.now(),
            recipient_public_key=keys[handle],
        )
        return version, "live", data

    def upload(items: list[tuple[str, tuple[int, str, bytes]]]) -> dict:
        blocks = [d for _, (_, k, d) in items if k == "live"]
        tombs = [d for _, (_, k, d) in items if k == "deleted"]
        bid, data = pharmacy.batch(blocks, tombs)
        r = pharmacy.upload(bid, data)
        assert r.status_code == 200, r.text
        result = r.json()
        batches.append((bid, data, result))
        return result

    for step in range(steps):
        server.clock.advance(minutes=rng.randint(1, 3))  # sessions stay within the idle limit
        op = rng.random()
        pid = rng.choice(pids)
        m = models[pid]
        if op < 0.4 or not m.history:
            item = new_item(pid)
            result = upload([(pid, item)])
            assert not result["stale"], result
            m.version, m.kind, m.current = item
            m.history.append(item)
            counts["applied"] += 1
        elif op < 0.65:
            old = rng.choice(m.history)  # genuine, validly signed, not newer than the current
            result = upload([(pid, old)])
            assert result["applied"] == [], result
            assert result["deleted"] == [], result
            assert [s["version"] for s in result["stale"]] == [old[0]]
            assert result["stale"][0]["current_version"] == m.version
            counts["stale"] += 1
        elif op < 0.8 and batches:
            bid, data, stored = rng.choice(batches)
            r = pharmacy.upload(bid, data)  # the same bytes again: the stored answer
            assert r.status_code == 200
            assert r.json() == stored
            counts["replayed"] += 1
        elif op < 0.87 and batches:
            bid, _, _ = rng.choice(batches)
            _, other = pharmacy.batch([], [], batch_id=bid)
            r = pharmacy.upload(bid, other)
            assert r.status_code == 409
            assert r.json()["error"]["code"] == "batch_conflict"
            counts["conflict"] += 1
        else:
            other_pid = next(p for p in pids if p != pid)
            old = rng.choice(m.history)
            item = new_item(other_pid)
            result = upload([(pid, old), (other_pid, item)])
            assert [s["handle"] for s in result["stale"]] == [pharmacy.handle(pid)]
            o = models[other_pid]
            o.version, o.kind, o.current = item
            o.history.append(item)
            counts["applied"] += 1
            counts["stale"] += 1
        for p in pids:
            _check(server, pharmacy, clients[p], p, models[p], full=step % 4 == 0)
    return counts


def _check(server: Server, pharmacy: PharmacySide, client, pid: str, m: Model, full: bool) -> None:
    handle = pharmacy.handle(pid)
    r = pharmacy.http.get(f"/api/v1/agent/records/{handle}")
    if m.kind == "pending":
        return
    assert r.status_code == 200, r.text
    state = r.json()
    assert (state["state"], state["version"]) == (m.kind, m.version), (state, m.version)
    if not full:
        return
    try:
        records = client.fetch()  # the client's own never-older check passes on an honest server
    except ClientError as exc:
        if exc.code != "not_authenticated":  # the 12-hour session limit, in long walks
            raise
        client.login(client.unlocked.username, PASSWORD)
        records = client.fetch()
    assert (records.state, records.version) == (m.kind, m.version)
    served = client.http.get("/api/v1/me/block").json()
    assert m.current is not None
    assert unb64(served["envelope" if m.kind == "live" else "tombstone"]) == m.current


def test_older_objects_are_never_applied(server, pharmacy, patient_client) -> None:
    counts = _walk(server, pharmacy, patient_client, steps=30, seed=1)
    assert all(counts[k] > 0 for k in counts), counts


@pytest.mark.long
@pytest.mark.parametrize("seed", range(int(os.environ.get("RXVAULT_ROLLBACK_SEEDS", "5"))))
def test_older_objects_are_never_applied_long(server, pharmacy, patient_client, seed) -> None:
    steps = int(os.environ.get("RXVAULT_ROLLBACK_STEPS", "3000"))
    counts = _walk(server, pharmacy, patient_client, steps=steps, seed=100 + seed)
    print(f"seed {seed}: {counts}")
    assert all(counts[k] > 0 for k in counts), counts
