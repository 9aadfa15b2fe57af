"""The sync statement a sync ends with: its root is the one of the server's records; a server
whose records differ refuses it, and the run finishes with a warning (exit code 1)."""

from __future__ import annotations

import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.agent import Reporter, SyncOptions, enroll, prepare, read_source, run_sync
from rxvault.agent._state import open_state
from rxvault.agent._statement import local_leaves, local_packed
from rxvault.server._models import PharmacyStatement, Record

from .conftest import Agent, Harness

QUIET = Reporter(interactive=False, quiet=True)


def sync(agent: Agent, **options: object):
    return run_sync(agent.context(), SyncOptions(**options), QUIET)  # type: ignore[arg-type]


def _stored(harness: Harness, agent: Agent) -> fmt.Statement | None:
    with harness.session() as s:
        row = s.execute(sa.select(PharmacyStatement)).scalar_one_or_none()
        if row is None:
            return None
        return fmt.verify_statement(row.statement, agent.context().key.public_bytes())


def _server_leaves(harness: Harness) -> list[fmt.Leaf]:
    return sorted(
        (
            fmt.Leaf(handle, version, state == "deleted")
            for handle, (state, version, _) in harness.records().items()
        ),
        key=lambda leaf: leaf.handle,
    )


def _enrolled(harness: Harness, agent: Agent, count: int) -> list[str]:
    ctx = agent.context()
    mapping = ctx.mapping()
    docs = prepare(mapping, read_source(mapping, ctx.config.source_dir), ctx.config.pharmacy_name)
    ids = docs.patient_ids[:count]
    for made in enroll(ctx, ids, days=30):
        harness.register_fast(made.code_text)
    return ids


def test_a_sync_ends_with_a_statement_of_what_the_server_holds(
    harness: Harness, agent: Agent
) -> None:
    assert sync(agent, dry_run=True).warnings == []
    assert _stored(harness, agent) is None  # a dry run sends nothing
    _enrolled(harness, agent, 3)
    first = sync(agent)
    assert (first.uploaded, first.warnings, first.exit_code) == (3, [], 0)
    statement = _stored(harness, agent)
    assert statement is not None
    leaves = _server_leaves(harness)
    assert (statement.seq, statement.size, statement.root) == (1, 3, fmt.merkle_root(leaves))
    state = open_state(agent.home / "state.db")
    try:
        assert local_leaves(state) == leaves
        assert local_packed(state) == fmt.pack_leaves(leaves)
    finally:
        state.close()
    # Nothing changed: a new statement all the same (it is what proves freshness), signed
    # over the tree head the last complete run recorded, without reading the tables.
    again = sync(agent)
    assert (again.uploaded, again.warnings) == (0, [])
    assert "read" not in again.phases
    second = _stored(harness, agent)
    assert second is not None
    assert (second.seq, second.root) == (2, statement.root)
    assert second.as_of >= statement.as_of


def test_a_server_whose_records_differ_refuses_it_with_a_warning(
    harness: Harness, agent: Agent
) -> None:
    _enrolled(harness, agent, 3)
    assert sync(agent).warnings == []
    # The server loses a record (a database restored from an older backup, say).
    with harness.session() as s:
        s.execute(
            sa.delete(Record).where(
                Record.id == s.execute(sa.select(sa.func.min(Record.id))).scalar_one()
            )
        )
    summary = sync(agent)
    assert summary.exit_code == 1
    (warning,) = summary.warnings
    assert warning.startswith(
        "the server's records differ from this agent's state, which lists 3 (3 live, 0 deleted) "
        "patients on the server, so it refused this run's sync statement (The statement covers "
        "3 records but the server holds 2 for this pharmacy (2 live, 0 deleted)); "
    )
    assert "restored from a backup" in warning
    statement = _stored(harness, agent)
    assert statement is not None
    assert (statement.seq, statement.size) == (1, 3)  # nothing stored


def test_a_replaced_state_continues_after_the_servers_sequence_number(
    harness: Harness, agent: Agent
) -> None:
    _enrolled(harness, agent, 2)
    for _ in range(3):
        assert sync(agent).warnings == []
    state = open_state(agent.home / "state.db")
    try:
        with state.transaction() as c:
            state.set(c, "statement_seq", "1")
    finally:
        state.close()
    summary = sync(agent)
    (warning,) = summary.warnings
    assert "sequence number 3, not older than this agent's 2" in warning
    statement = _stored(harness, agent)
    assert statement is not None
    assert statement.seq == 4
    assert sync(agent).warnings == []
    statement = _stored(harness, agent)
    assert statement is not None
    assert statement.seq == 5
