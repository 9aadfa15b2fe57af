"""The outbox: a batch is on disk (file, then row) before it is sent; an acknowledgement applies
exactly what the server answered, in one local transaction, then removes the batch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxvault.agent._outbox import Outbox, OutboxItem
from rxvault.agent._state import State, open_state


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    s = open_state(tmp_path / "state.db")
    with s.transaction() as c:
        c.executemany(
            "INSERT INTO patients (patient_id, handle, version, server_state, sent_digest) "
            "VALUES (?, ?, ?, ?, ?)",
            [(f"P{i}", f"{i:032x}", 3, "live", 100 + i) for i in range(6)],
        )
    yield s
    s.close()


def rows(state: State) -> dict[str, tuple[object, ...]]:
    return {
        r[0]: tuple(r[1:])
        for r in state.conn.execute(
            "SELECT patient_id, sent_digest, sent_key, version, server_state, in_source "
            "FROM patients"
        )
    }


def test_write_then_acknowledge_applies_what_the_server_answered(
    state: State, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox", state)
    key = os.urandom(32)
    items = [
        OutboxItem("P0", f"{0:032x}", 4, "block", 7, key),  # applied
        OutboxItem("P1", f"{1:032x}", 4, "block", 8, key),  # stale: the server has 9
        OutboxItem("P2", f"{2:032x}", 4, "block", 9, key),  # not answered at all
        OutboxItem("P3", f"{3:032x}", 4, "block", 10, key),  # applied
        OutboxItem("P4", f"{4:032x}", 4, "tombstone"),  # deleted
        OutboxItem("P5", f"{5:032x}", 2, "block", 11, key),  # applied, older than the local
    ]
    data = os.urandom(100_000)
    outbox.write("b1", data, items)
    assert (tmp_path / "outbox" / "b1.batch").read_bytes() == data
    ((batch_id, got, pending),) = list(outbox.pending())
    assert (batch_id, got, pending) == ("b1", data, items)
    before = rows(state)
    result = {
        "applied": [{"handle": f"{i:032x}", "version": v} for i, v in ((0, 4), (3, 4), (5, 2))],
        "deleted": [{"handle": f"{4:032x}", "version": 4}],
        "stale": [{"handle": f"{1:032x}", "current_version": 9}],
    }
    ack = outbox.acknowledge("b1", items, result)
    assert (ack.applied, ack.deleted, ack.stale) == (3, 1, ["P1"])
    after = rows(state)
    assert after["P0"] == (7, key, 4, "live", 1)
    assert after["P1"] == (*before["P1"][:2], 9, "live", 1)
    assert after["P2"] == before["P2"]
    assert after["P3"] == (10, key, 4, "live", 1)
    assert after["P4"] == (None, None, 4, "deleted", 0)
    assert after["P5"] == (11, key, 3, "live", 1)  # the version never goes back
    assert state.outbox() == []
    assert list((tmp_path / "outbox").iterdir()) == []


def test_a_file_without_its_row_is_an_orphan(state: State, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox", state)
    (tmp_path / "outbox" / "lost.batch").write_bytes(b"x")
    outbox.write("kept", b"y", [OutboxItem("P0", f"{0:032x}", 4, "tombstone")])
    outbox.clean_orphans()
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["kept.batch"]
