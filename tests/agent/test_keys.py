"""The agent encrypts only to keys it can verify: a key swapped on the server is refused,
reported, and never used."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.agent import Reporter, SyncOptions, enroll, run_sync
from rxvault.agent._api import ServerUnavailable, b64
from rxvault.agent._keys import (
    DirectoryFetch,
    _binding_verifies,
    fetch_keys,
    start_directory_fetch,
)
from rxvault.agent._state import State, open_state
from rxvault.agent._status import status_lines
from rxvault.server._models import KeyRegistration, Pharmacy

from .conftest import Agent, Harness
from .test_sync_flow import documents

QUIET = Reporter(interactive=False, quiet=True)


def sync(agent: Agent, **options: object):
    return run_sync(agent.context(), SyncOptions(**options), QUIET)  # type: ignore[arg-type]


def test_swapped_key_is_refused_and_reported(harness: Harness, agent: Agent) -> None:
    ctx = agent.context()
    ids = documents(agent).patient_ids[:3]
    made = {e.patient_id: e for e in enroll(ctx, ids, days=30)}
    for pid in ids:
        harness.register_fast(made[pid].code_text)
    # The server (or whoever controls it) swaps one patient's registered key for its own.
    victim = ctx.handle(ids[1])
    _, attacker_public = fmt.generate_patient_keypair()
    with harness.session() as s:
        row = s.execute(
            sa.select(KeyRegistration).where(KeyRegistration.handle == victim)
        ).scalar_one()
        row.public_key = attacker_public
    summary = sync(agent)
    assert summary.keys_verified == 2
    assert summary.keys_refused == 1
    assert summary.exit_code == 1
    assert any("binding does not verify" in w for w in summary.warnings)
    records = harness.records()
    assert victim not in records
    assert {ctx.handle(ids[0]), ctx.handle(ids[2])} <= set(records)
    assert summary.uploaded == 2
    status = "\n".join(status_lines(agent.home))
    assert "refused (unverifiable) keys: 1" in status
    assert victim in status


def test_new_unverifiable_key_does_not_replace_a_verified_one(
    harness: Harness, agent: Agent
) -> None:
    ctx = agent.context()
    (pid,) = documents(agent).patient_ids[:1]
    (made,) = enroll(ctx, [pid], days=30)
    private = harness.register_fast(made.code_text)
    assert sync(agent).uploaded == 1
    handle = ctx.handle(pid)
    # A later directory entry for the same handle, with a key and binding of the server's own.
    _, attacker_public = fmt.generate_patient_keypair()
    with harness.session() as s:
        pharmacy = s.execute(sa.select(Pharmacy)).scalar_one()
        pharmacy.directory_seq += 1
        s.add(
            KeyRegistration(
                pharmacy_id=pharmacy.id,
                seq=pharmacy.directory_seq,
                handle=handle,
                lookup_id=fmt.derive_enrollment(fmt.new_enrollment_code()).lookup_id,
                public_key=attacker_public,
                binding=bytes(32),
                registered_at=harness.ctx.now(),
            )
        )
    summary = sync(agent)
    assert summary.keys_refused == 1
    assert summary.uploaded == 0
    assert any("no enrollment issued by this pharmacy" in w for w in summary.warnings)
    # The block on the server still opens with the patient's own key only.
    _, _, envelope = harness.records()[handle]
    opened = fmt.open_block(
        envelope,
        recipient_private_key=private,
        pharmacy_public_key=ctx.key.public_bytes(),
        expected_handle=handle,
    )
    assert opened.header.version == 1


# --- the directory checked page by page, without a server --------------------------------


class Directory:
    """A server's key directory as pages (``key_directory_pages``), counting the fetches."""

    def __init__(self, pages: list[list[dict[str, object]]], fail_after: int | None = None):
        self.pages = pages
        self.fail_after = fail_after
        self.fetches: list[int] = []

    def key_directory_pages(self, after: int):
        self.fetches.append(after)
        for n, page in enumerate(self.pages):
            if n == self.fail_after:
                raise ServerUnavailable("the server did not answer")
            yield [e for e in page if int(e["seq"]) > after]  # type: ignore[call-overload]


def issue(
    state: State, handle: str, created_at: str, registered: bool = False
) -> tuple[str, bytes]:
    """An enrollment this agent issued: (lookup id, binding key)."""
    lookup_id, binding_key = os.urandom(16).hex(), os.urandom(32)
    with state.transaction() as c:
        c.execute(
            "INSERT INTO enrollments (lookup_id, patient_id, handle, binding_key, created_at, "
            "expires_at, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                lookup_id,
                "P" + handle[:6],
                handle,
                binding_key,
                created_at,
                "2099-01-01",
                created_at if registered else None,
            ),
        )
    return lookup_id, binding_key


def entry(
    seq: int, handle: str, lookup_id: str, binding_key: bytes
) -> tuple[dict[str, object], bytes]:
    _, public = fmt.generate_patient_keypair()
    mac = fmt.binding_mac(binding_key, handle, public)
    raw = {
        "seq": seq,
        "handle": handle,
        "lookup_id": lookup_id,
        "public_key": b64(public),
        "binding": b64(mac),
        "registered_at": "2026-01-01T00:00:00Z",
    }
    return raw, public


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    s = open_state(tmp_path / "state.db")
    yield s
    s.close()


def test_binding_check_agrees_with_the_format() -> None:
    handle = os.urandom(16).hex()
    for case in range(200):
        key, public = os.urandom(32), os.urandom(32)
        mac = fmt.binding_mac(key, handle, public)
        if case % 4 == 1:
            mac = bytes([mac[0] ^ 1]) + mac[1:]
        elif case % 4 == 2:
            public = public[:31]
        elif case % 4 == 3:
            key = key + b"\x00"
        try:
            fmt.verify_binding(key, handle, public, mac)
            expected = True
        except (fmt.BindingInvalid, ValueError):
            expected = False
        assert _binding_verifies(key, handle, public, mac) is expected
        assert expected is (case % 4 == 0)


def test_newest_enrollment_wins_across_pages_and_the_cursor_is_the_last_seq(state: State) -> None:
    handle = os.urandom(16).hex()
    old_lookup, old_key = issue(state, handle, "2026-01-01T00:00:00+00:00")
    new_lookup, new_key = issue(state, handle, "2026-02-01T00:00:00+00:00")
    newer, newer_public = entry(5, handle, new_lookup, new_key)
    older, _ = entry(9, handle, old_lookup, old_key)  # listed last, in a later page
    directory = Directory([[newer], [older], []])
    refresh = fetch_keys(directory, state)  # type: ignore[arg-type]
    assert refresh.verified == {handle: (newer_public, new_lookup, 5)}
    assert refresh.refused == [
        (
            9,
            handle,
            old_lookup,
            "registered with an older enrollment than the patient's current key",
        )
    ]
    assert refresh.cursor == 9
    refresh.commit(state)
    assert state.keys() == {handle: newer_public}
    assert state.get("directory_cursor") == "9"
    registered = dict(state.conn.execute("SELECT lookup_id, registered_at FROM enrollments"))
    assert registered[new_lookup] is not None
    assert registered[old_lookup] is None


def test_each_reason_to_refuse(state: State) -> None:
    handles = [os.urandom(16).hex() for _ in range(5)]
    lookups = [issue(state, h, f"2026-01-0{i + 1}T00:00:00+00:00") for i, h in enumerate(handles)]
    good, good_public = entry(1, handles[0], *lookups[0])
    malformed, _ = entry(2, handles[1], *lookups[1])
    malformed["public_key"] = "a"  # not base64
    foreign, _ = entry(3, handles[2], os.urandom(16).hex(), os.urandom(32))
    other_handle, _ = entry(4, handles[0], *lookups[3])  # lookups[3] was issued for handles[3]
    swapped, _ = entry(5, handles[4], *lookups[4])
    swapped["public_key"] = b64(fmt.generate_patient_keypair()[1])
    refresh = fetch_keys(Directory([[good, malformed, foreign, other_handle, swapped]]), state)  # type: ignore[arg-type]
    assert refresh.verified == {handles[0]: (good_public, lookups[0][0], 1)}
    assert [(seq, reason) for seq, _, _, reason in refresh.refused] == [
        (2, "the entry is malformed"),
        (3, "no enrollment issued by this pharmacy has this lookup id"),
        (4, "registered for another handle than the enrollment's"),
        (5, "the binding does not verify with the enrollment's binding key"),
    ]


def test_an_enrollment_registers_one_key_once(state: State) -> None:
    handle = os.urandom(16).hex()
    lookup_id, key = issue(state, handle, "2026-01-01T00:00:00+00:00")
    first, first_public = entry(1, handle, lookup_id, key)
    fetch_keys(Directory([[first]]), state).commit(state)  # type: ignore[arg-type]
    again = dict(first, seq=2)  # the same registration listed again: still the current key
    replayed, _ = entry(3, handle, lookup_id, key)  # another key for the used enrollment
    refresh = fetch_keys(Directory([[first, again, replayed]]), state)  # type: ignore[arg-type]
    assert refresh.verified == {handle: (first_public, lookup_id, 2)}
    assert [(seq, reason) for seq, _, _, reason in refresh.refused] == [
        (3, "this enrollment already registered a key (an old registration replayed)")
    ]


def test_a_fetch_started_early_is_used_and_a_failure_is_raised(state: State) -> None:
    handle = os.urandom(16).hex()
    lookup_id, key = issue(state, handle, "2026-01-01T00:00:00+00:00")
    raw, public = entry(1, handle, lookup_id, key)
    directory = Directory([[raw]])
    early = start_directory_fetch(directory, state)  # type: ignore[arg-type]
    assert fetch_keys(directory, state, early).verified == {handle: (public, lookup_id, 1)}  # type: ignore[arg-type]
    assert directory.fetches == [0]
    # started from another cursor than the state's: fetched again from the state's
    stale = DirectoryFetch(directory, 7)  # type: ignore[arg-type]
    assert fetch_keys(directory, state, stale).cursor == 1  # type: ignore[arg-type]
    assert sorted(directory.fetches) == [0, 0, 7]
    failing = Directory([[raw], [raw]], fail_after=1)
    with pytest.raises(ServerUnavailable):
        fetch_keys(failing, state)  # type: ignore[arg-type]
