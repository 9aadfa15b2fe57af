"""The whole agent flow against the real server app: init, enroll, register, sync, decrypt;
the next day only the changed patients are uploaded; a PACK or a re-run uploads nothing."""

from __future__ import annotations

import json
import shutil

from rxvault import format as fmt
from rxvault.agent import Reporter, SyncOptions, enroll, prepare, read_source, run_sync
from rxvault.client import PatientClient
from rxvault.dbf import TableEditor, open_table
from rxvault.demo import TABLES
from rxvault.demo._next_day import next_day

from .conftest import Agent, Harness, make_agent

QUIET = Reporter(interactive=False, quiet=True)
PASSWORD = "correct horse battery staple"


def sync(agent: Agent, **options: object):
    return run_sync(agent.context(), SyncOptions(**options), QUIET)  # type: ignore[arg-type]


def documents(agent: Agent):
    ctx = agent.context()
    mapping = ctx.mapping()
    return prepare(mapping, read_source(mapping, ctx.config.source_dir), ctx.config.pharmacy_name)


def memo_of(source, pid: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """(record number, directions) of one of the patient's fills that has directions."""
    with open_table(source / "rxfill.dbf") as t:
        table = t.read(columns=["patient_id", "sig"], with_recno=True)
    return next(
        (recno, sig)
        for recno, patient, sig in zip(
            table.column("_recno").to_pylist(),
            table.column("patient_id").to_pylist(),
            table.column("sig").to_pylist(),
            strict=True,
        )
        if str(patient) == pid and sig
    )


def open_for(harness: Harness, ctx, patient_id: str, private: bytes) -> tuple[int, bytes]:
    state, version, envelope = harness.records()[ctx.handle(patient_id)]
    assert state == "live"
    opened = fmt.open_block(
        envelope,
        recipient_private_key=private,
        pharmacy_public_key=ctx.key.public_bytes(),
        expected_handle=ctx.handle(patient_id),
    )
    return version, opened.document


def test_full_flow(any_harness: Harness, tmp_path, source) -> None:
    harness = any_harness
    agent = make_agent(harness, tmp_path / "home", source)
    ctx = agent.context()
    docs = documents(agent)
    ids = docs.patient_ids
    # Learn which patients tomorrow changes (next_day is deterministic) on a scratch copy, and
    # enroll some of them and some others.
    scratch = tmp_path / "scratch"
    shutil.copytree(source, scratch)
    will_change = {str(p) for p in next_day(scratch, seed=11).patient_ids}
    changing = [p for p in ids if p in will_change]
    steady = [p for p in ids if p not in will_change]
    enrolled = [changing[0], steady[0], changing[1], steady[1], steady[2], steady[3], changing[2]]
    made = {e.patient_id: e for e in enroll(ctx, enrolled, days=30)}
    assert set(made) == set(enrolled)

    # One patient registers through the real patient client (password, Argon2id, key bundle).
    alice = PatientClient(http=harness.client())
    alice.register(made[enrolled[0]].code_text, "alice", PASSWORD)
    keys = {pid: harness.register_fast(made[pid].code_text) for pid in enrolled[1:5]}
    registered = enrolled[:5]
    # The others never register: counted as waiting, not uploaded.

    first = sync(agent)
    assert first.patients_read == len(ids)
    assert first.uploaded == 5
    assert first.enrolled == 5
    assert first.waiting_for_enrollment == len(enrolled) - 5
    assert first.not_enrolled == len(ids) - 5
    assert first.keys_verified == 5
    assert first.keys_refused == 0
    assert first.warnings == []
    assert set(harness.records()) == {ctx.handle(p) for p in registered}

    # The patient decrypts exactly the published fields, and nothing else.
    alice_again = PatientClient(http=harness.client())
    alice_again.login("alice", PASSWORD)
    records = alice_again.fetch()
    assert records.state == "live"
    assert records.version == 1
    document = json.loads(records.document)
    mapping = ctx.mapping()
    assert [f["id"] for f in document["patient"]["fields"]] == [
        f.source for f in mapping.patient.fields
    ]
    assert set(document["patient"]["values"]) == {f.source for f in mapping.patient.fields}
    for section, spec in zip(document["sections"], mapping.sections, strict=True):
        for row in section["rows"]:
            assert set(row) == {f.source for f in spec.fields}
    text = records.document.decode()
    for unpublished in ("account_balance", "notes", "dea_number", "pharmacist", "unit_cost"):
        assert unpublished not in text
    # ... and it is the document `preview` shows.
    ((_, preview),) = list(docs.build([docs.index_of(enrolled[0])]))
    assert records.document == preview
    for pid, private in keys.items():
        version, doc = open_for(harness, ctx, pid, private)
        assert version == 1
        assert doc == next(d for _, d in docs.build([docs.index_of(pid)]))

    # A re-run with no change uploads nothing, not a byte.
    again = sync(agent)
    assert (again.uploaded, again.batches, again.bytes_sent) == (0, 0, 0)
    assert again.unchanged == len(ids)

    # The next day: only the enrolled patients whose records changed are uploaded.
    before = documents(agent)
    changes = next_day(source, seed=11)
    after = documents(agent)
    changed_docs = {
        pid
        for pid in registered
        if after.index_of(pid) is None
        or next(d for _, d in after.build([after.index_of(pid)]))
        != next(d for _, d in before.build([before.index_of(pid)]))
    }
    expected = {str(p) for p in changes.patient_ids} & set(registered)
    assert changed_docs == expected == {changing[0], changing[1]}
    day = sync(agent)
    assert day.uploaded == len({p for p in changed_docs if after.index_of(p) is not None})
    for pid in changed_docs:
        if after.index_of(pid) is not None:
            assert harness.records()[ctx.handle(pid)][1] == 2

    # PACK removes deleted records and reorders nothing visible: nothing is uploaded.
    for table in TABLES:
        with TableEditor(source / table.file, long_names=table.long_names) as editor:
            editor.pack()
    packed = sync(agent)
    assert (packed.uploaded, packed.bytes_sent, packed.deleted) == (0, 0, 0)


def test_memo_rewritten_in_place_is_uploaded(harness: Harness, agent: Agent, source) -> None:
    ctx = agent.context()
    docs = documents(agent)
    pid = docs.patient_ids[0]
    (made,) = enroll(ctx, [pid], days=30)
    private = harness.register_fast(made.code_text)
    assert sync(agent).uploaded == 1
    # Rewrite one of the patient's prescription directions (a memo) in place: the row's bytes
    # stay the same, only the memo block changes.
    target = memo_of(source, pid)
    with TableEditor(source / "rxfill.dbf", long_names=TABLES[3].long_names) as editor:
        editor.update(target[0], {"sig": target[1][:-1] + "!"})
    summary = sync(agent)
    assert summary.uploaded == 1
    version, document = open_for(harness, ctx, pid, private)
    assert version == 2
    assert (target[1][:-1] + "!").encode() in document


def test_dry_run_changes_nothing(harness: Harness, agent: Agent) -> None:
    ctx = agent.context()
    docs = documents(agent)
    (made,) = enroll(ctx, [docs.patient_ids[1]], days=30)
    harness.register_fast(made.code_text)
    preview = sync(agent, dry_run=True)
    assert preview.to_upload == 1
    assert preview.uploaded == 0
    assert harness.records() == {}
    real = sync(agent)
    assert real.uploaded == 1


def test_versions_refused_as_stale_are_sent_again_newer(harness: Harness, agent: Agent) -> None:
    """If the local state forgot what the server has (a restored backup of state.db), the server
    refuses the older versions as stale and the agent sends them again above the server's."""
    ctx = agent.context()
    docs = documents(agent)
    pid = docs.patient_ids[2]
    (made,) = enroll(ctx, [pid], days=30)
    private = harness.register_fast(made.code_text)
    assert sync(agent).uploaded == 1
    from rxvault.agent._state import open_state

    state = open_state(agent.home / "state.db")
    try:
        state.conn.execute(
            "UPDATE patients SET version = 0, sent_digest = NULL, server_state = 'none'"
        )
        # a backup from before that sync has no record of a complete run either
        state.conn.execute("DELETE FROM meta WHERE key = 'synced_source'")
    finally:
        state.close()
    summary = sync(agent)
    assert summary.uploaded == 1
    assert summary.warnings == []
    version, document = open_for(harness, ctx, pid, private)
    assert version == 2
    assert document == next(d for _, d in docs.build([docs.index_of(pid)]))
    assert sync(agent).uploaded == 0
