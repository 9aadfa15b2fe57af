"""The agent encrypts only to keys it can verify: a key swapped on the server is refused,
reported, and never used."""

from __future__ import annotations

import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.agent import Reporter, SyncOptions, enroll, run_sync
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
