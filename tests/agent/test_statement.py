"""The sync statement a sync ends with: its root is the one of the server's records; a server
whose records differ refuses it, and the run finishes with a warning (exit code 1)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.agent import Reporter, SyncOptions, enroll, prepare, read_source, run_sync
from rxvault.agent._state import open_state
from rxvault.agent._statement import local_leaves, local_packed
from rxvault.dbf import TableEditor, open_table
from rxvault.demo import TABLES
from rxvault.server._models import PharmacyStatement, Record

from .conftest import Agent, Harness, make_agent

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


def test_a_server_that_lost_a_record_gets_it_again_in_the_same_run(
    harness: Harness, agent: Agent
) -> None:
    _enrolled(harness, agent, 3)
    assert sync(agent).warnings == []
    # The server loses a record (a database restored from an older backup, say).
    with harness.session() as s:
        lost = s.execute(sa.select(sa.func.min(Record.id))).scalar_one()
        handle = s.get_one(Record, lost).handle
        s.execute(sa.delete(Record).where(Record.id == lost))
    summary = sync(agent)
    assert summary.exit_code == 1
    (warning,) = summary.warnings
    assert warning.startswith(
        "the server's records differed from this agent's state (was the server's database "
        "restored from an older backup?): 1 patients' blocks that it lacked or held in an older "
        "version are sent again, 0 deletions were sent again"
    )
    assert summary.uploaded == 1
    assert harness.records()[handle][:2] == ("live", 2)  # above the version it had before
    statement = _stored(harness, agent)
    assert statement is not None
    assert (statement.seq, statement.size) == (3, 3)  # 2 was refused, 3 covers the repair
    assert statement.root == fmt.merkle_root(_server_leaves(harness))
    again = sync(agent)  # a run with a warning is not a complete run: this one reads
    assert (again.warnings, again.uploaded) == ([], 0)
    assert "read" not in sync(agent).phases


def _rows(harness: Harness, model: type) -> list[dict[str, object]]:
    with harness.session() as s:
        table = model.__table__  # type: ignore[attr-defined]
        return [dict(r._mapping) for r in s.execute(sa.select(table))]


def _restore(harness: Harness, backup: dict[type, list[dict[str, object]]]) -> None:
    """Put back the server's records and statement as a backup had them."""
    with harness.session() as s:
        for model, rows in backup.items():
            table = model.__table__  # type: ignore[attr-defined]
            s.execute(sa.delete(table))
            if rows:
                s.execute(sa.insert(table), rows)


def _fill_of(source: Path, pid: str) -> int | None:
    """The record number of one of the patient's fills, if any."""
    with open_table(source / "rxfill.dbf") as t:
        table = t.read(columns=["patient_id"], with_recno=True)
    for recno, owner in zip(
        table.column("_recno").to_pylist(), table.column("patient_id").to_pylist(), strict=True
    ):
        if str(owner).strip() == pid:
            return int(recno)
    return None


def test_a_server_restored_from_an_older_backup_gets_blocks_and_deletions_again(
    any_harness: Harness, tmp_path: Path, source: Path
) -> None:
    harness = any_harness
    agent = make_agent(harness, tmp_path / "home", source)
    ctx = agent.context()
    ids = _enrolled(harness, agent, 3)
    changed = next(pid for pid in ids if _fill_of(source, pid))
    left, same = (pid for pid in ids if pid != changed)
    assert sync(agent).warnings == []
    backup = {model: _rows(harness, model) for model in (Record, PharmacyStatement)}
    # A day: one patient's fill changes, another patient leaves the pharmacy.
    with TableEditor(source / "rxfill.dbf", long_names=TABLES[3].long_names) as editor:
        editor.update(_fill_of(source, changed) or 0, {"quantity": 987})
    with open_table(source / TABLES[0].file) as t:
        table = t.read(columns=["patient_id"], with_recno=True)
    (recno,) = [
        r
        for r, p in zip(
            table.column("_recno").to_pylist(), table.column("patient_id").to_pylist(), strict=True
        )
        if str(p).strip() == left
    ]
    with TableEditor(source / TABLES[0].file, long_names=TABLES[0].long_names) as editor:
        editor.delete(recno)
    day = sync(agent)
    assert (day.uploaded, day.deleted, day.warnings) == (1, 1, [])
    expected = harness.records()
    # The server's database is restored from the backup of the day before.
    _restore(harness, backup)
    h = ctx.handle
    assert harness.records()[h(changed)][:2] == ("live", 1)
    assert harness.records()[h(left)][:2] == ("live", 1)
    summary = sync(agent)  # the tables did not change since the last run
    assert summary.exit_code == 1
    (warning,) = summary.warnings
    assert (
        ": 1 patients' blocks that it lacked or held in an older version are sent again, "
        "1 deletions were sent again" in warning
    )
    records = harness.records()
    assert records[h(changed)][:2] == ("live", 3)  # newer than the lost version 2
    assert records[h(left)][:2] == ("deleted", 3)
    assert records[h(same)] == expected[h(same)]
    docs = prepare(ctx.mapping(), read_source(ctx.mapping(), source), ctx.config.pharmacy_name)
    ((_, document),) = list(docs.build([docs.index_of(changed)]))
    assert b"987" in document
    envelope = records[h(changed)][2]
    assert envelope is not None
    assert fmt.verify_block(envelope, ctx.key.public_bytes()).version == 3
    statement = _stored(harness, agent)
    assert statement is not None
    assert statement.root == fmt.merkle_root(_server_leaves(harness))
    assert sync(agent).warnings == []


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


def test_records_the_agent_did_not_send_are_reported_not_touched(
    harness: Harness, agent: Agent
) -> None:
    _enrolled(harness, agent, 2)
    assert sync(agent).warnings == []
    with harness.session() as s:
        row = dict(s.execute(sa.select(Record.__table__)).mappings().first() or {})
        row.pop("id")
        row["handle"] = "f" * 32
        s.execute(sa.insert(Record.__table__), [row])
    summary = sync(agent)
    assert summary.uploaded == 0
    first, second = summary.warnings
    assert first.endswith(
        ": 0 patients' blocks that it lacked or held in an older version are sent again, "
        "0 deletions were sent again; it also holds 1 records that this agent did not send "
        "(does another agent sync this pharmacy?)"
    )
    assert second.startswith("the server's records differ from this agent's state")
    assert harness.records()["f" * 32][0] == "live"


def _delete_patients(source: Path, ids: list[str]) -> None:
    with open_table(source / TABLES[0].file) as t:
        table = t.read(columns=["patient_id"], with_recno=True)
    recnos = [
        r
        for r, p in zip(
            table.column("_recno").to_pylist(), table.column("patient_id").to_pylist(), strict=True
        )
        if str(p).strip() in ids
    ]
    assert len(recnos) == len(ids)
    with TableEditor(source / TABLES[0].file, long_names=TABLES[0].long_names) as editor:
        for recno in recnos:
            editor.delete(recno)


def test_deletions_sent_again_stay_within_the_deletion_cap(
    harness: Harness, agent: Agent, source: Path
) -> None:
    ids = _enrolled(harness, agent, 7)
    assert sync(agent).warnings == []
    backup = {model: _rows(harness, model) for model in (Record, PharmacyStatement)}
    _delete_patients(source, ids[:6])
    assert sync(agent, allow_deletions=6).deleted == 6
    _restore(harness, backup)  # the six are live again on the server
    summary = sync(agent)
    assert summary.deleted == 0
    assert summary.warnings[0].startswith(
        "6 patients that this agent deleted are live or missing on the server, more than "
        "the deletion cap of 5: their deletions were not sent again; if they really left, run "
        "`rxvault agent sync --allow-deletions 6`"
    )
    assert sorted(state for state, _, _ in harness.records().values()) == ["live"] * 7
    allowed = sync(agent, allow_deletions=6)
    assert allowed.deleted == 6
    assert sorted(state for state, _, _ in harness.records().values()) == ["deleted"] * 6 + ["live"]
    assert sync(agent).warnings == []


def test_a_version_the_server_claims_past_any_reach_is_left_alone(
    harness: Harness, agent: Agent
) -> None:
    _enrolled(harness, agent, 2)
    assert sync(agent).warnings == []
    last = 2**53 - 1
    with harness.session() as s:
        first = s.execute(sa.select(sa.func.min(Record.id))).scalar_one()
        s.execute(
            sa.update(Record).where(Record.id == first).values(version=last, block_version=last)
        )
    summary = sync(agent)
    assert summary.uploaded == 0
    assert "1 records carry a version on the server that leaves no room" in summary.warnings[0]
    assert summary.exit_code == 1
