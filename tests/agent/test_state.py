"""The local state refuses to be used when damaged, and is created owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rxvault.agent._lock import RunLock
from rxvault.agent._state import StateError, open_state


def test_state_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    state = open_state(tmp_path / "state.db")
    try:
        assert state.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert state.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        state.close()
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "state.db").stat().st_mode) == 0o600


def test_damaged_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    state = open_state(path)
    with state.transaction() as c:
        c.executemany(
            "INSERT INTO patients (patient_id, handle) VALUES (?, ?)",
            ((str(i), f"{i:032x}") for i in range(5000)),
        )
    state.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    state.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(2 * page + 100, len(data) - page, 3 * page):
        data[offset : offset + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(StateError) as info:
        open_state(path)
    assert str(path) in info.value.message
    assert info.value.hint


def test_one_run_at_a_time(tmp_path: Path) -> None:
    from rxvault._cli_errors import UserError

    with RunLock(tmp_path / "agent.lock"):
        with pytest.raises(UserError) as info, RunLock(tmp_path / "agent.lock"):
            pass
        assert "another rxvault agent run is in progress" in info.value.message
    with RunLock(tmp_path / "agent.lock"):
        pass
