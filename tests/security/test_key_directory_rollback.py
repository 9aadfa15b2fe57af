"""Harnesses 4 and 9, the agent's side: a malicious server replays an old, genuine key-directory
entry (a patient's earlier key, with the binding that verified at the time) after the patient was
enrolled again, or orders two registrations so the older one comes last.

Without a rule the agent would go back to the earlier key: if a thief had registered first with a
stolen letter (threat model §6.5), re-enrollment would not get rid of them. The agent refuses any
registration of an enrollment that already registered a key, and any registration of an
enrollment older than the one of the patient's current key; within one directory page the newest
enrollment wins whatever the order. A key swapped outright is ``tests/agent/test_keys.py``.
"""

from __future__ import annotations

import sqlalchemy as sa

from agent.conftest import Agent, Harness
from agent.test_sync_flow import documents, open_for
from rxvault.agent import Reporter, SyncOptions, enroll, run_sync
from rxvault.agent._state import open_state
from rxvault.server._models import KeyRegistration, Pharmacy

QUIET = Reporter(interactive=False, quiet=True)


def sync(agent: Agent):
    return run_sync(agent.context(), SyncOptions(), QUIET)  # type: ignore[arg-type]


def current_key(agent: Agent, handle: str) -> bytes:
    state = open_state(agent.home / "state.db")
    try:
        row = state.conn.execute(
            "SELECT public_key FROM keys WHERE handle = ?", (handle,)
        ).fetchone()
    finally:
        state.close()
    return bytes(row[0])


def replay(harness: Harness, entry: KeyRegistration) -> None:
    """The server appends a copy of a genuine old entry under a new sequence number."""
    with harness.session() as s:
        pharmacy = s.execute(sa.select(Pharmacy)).scalar_one()
        pharmacy.directory_seq += 1
        s.add(
            KeyRegistration(
                pharmacy_id=pharmacy.id,
                seq=pharmacy.directory_seq,
                handle=entry.handle,
                lookup_id=entry.lookup_id,
                public_key=entry.public_key,
                binding=entry.binding,
                registered_at=harness.ctx.now(),
            )
        )


def entry_for(harness: Harness, public_key: bytes) -> KeyRegistration:
    with harness.session() as s:
        row = s.execute(
            sa.select(KeyRegistration).where(KeyRegistration.public_key == public_key)
        ).scalar_one()
        s.expunge(row)
        return row


def test_replayed_old_registration_is_refused(harness: Harness, agent: Agent) -> None:
    from rxvault import format as fmt

    ctx = agent.context()
    (pid,) = documents(agent).patient_ids[:1]
    handle = ctx.handle(pid)
    (first,) = enroll(ctx, [pid], days=30)
    thief = harness.register_fast(first.code_text)  # whoever held the first letter
    assert sync(agent).uploaded == 1
    (second,) = enroll(ctx, [pid], days=30)  # the pharmacy enrolls the patient again
    patient = harness.register_fast(second.code_text)
    summary = sync(agent)
    assert summary.uploaded == 1  # the whole history, sealed to the new key
    patient_public = fmt.patient_public_key(patient)
    assert current_key(agent, handle) == patient_public

    replay(harness, entry_for(harness, fmt.patient_public_key(thief)))
    summary = sync(agent)
    assert summary.keys_refused == 1
    assert summary.uploaded == 0
    assert any("already registered" in w for w in summary.warnings), summary.warnings
    assert current_key(agent, handle) == patient_public
    version, _ = open_for(harness, ctx, pid, patient)  # still sealed to the patient's key
    assert version == 2


def test_newest_enrollment_wins_whatever_the_order(harness: Harness, agent: Agent) -> None:
    from rxvault import format as fmt

    ctx = agent.context()
    (pid,) = documents(agent).patient_ids[1:2]
    handle = ctx.handle(pid)
    (first,) = enroll(ctx, [pid], days=30)
    (second,) = enroll(ctx, [pid], days=30)
    # Both registered before the agent's next run; the server lists the older one last.
    patient = harness.register_fast(second.code_text)
    thief = harness.register_fast(first.code_text)
    summary = sync(agent)
    assert summary.keys_refused == 1
    assert any("older enrollment than" in w for w in summary.warnings), summary.warnings
    assert current_key(agent, handle) == fmt.patient_public_key(patient)
    assert current_key(agent, handle) != fmt.patient_public_key(thief)
    open_for(harness, ctx, pid, patient)
