"""A re-run on byte-identical tables skips reading them, and only when that is safe.

A complete run records the digest of the source's bytes; the next run hashes the tables, and if
nothing changed and the key directory has no new entry it stops there. These tests show when it
must not: a changed byte (even with the file's times put back), a new key, a run that did not
complete.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rxvault._cli_errors import UserError
from rxvault.agent import enroll
from rxvault.agent._api import ServerApi
from rxvault.agent._state import open_state
from rxvault.agent._sync import SYNCED_SOURCE
from rxvault.dbf import TableEditor
from rxvault.demo import TABLES

from .conftest import Agent, Harness
from .test_sync_flow import documents, memo_of, open_for, sync


def skipped_read(summary) -> bool:  # type: ignore[no-untyped-def]
    return "read" not in summary.phases and "source digest" in summary.phases


def synced_record(agent: Agent) -> object:
    state = open_state(agent.context().config.state_path)
    try:
        return state.get_json(SYNCED_SOURCE)
    finally:
        state.close()


@pytest.fixture
def enrolled(harness: Harness, agent: Agent) -> dict[str, bytes]:
    """Two patients enrolled with registered keys, and a complete first sync."""
    ctx = agent.context()
    ids = documents(agent).patient_ids[:2]
    keys = {e.patient_id: harness.register_fast(e.code_text) for e in enroll(ctx, ids, days=30)}
    first = sync(agent)
    assert (first.uploaded, first.warnings) == (2, [])
    assert not skipped_read(first)
    return keys


def test_rerun_on_identical_tables_skips_the_read(agent: Agent, enrolled) -> None:
    second = sync(agent)  # the first sync's record is used at once
    again = sync(agent)
    for summary in (second, again):
        assert skipped_read(summary)
        assert (summary.uploaded, summary.batches, summary.bytes_sent) == (0, 0, 0)
    patients = len(documents(agent).patient_ids)
    assert (again.patients_read, again.unchanged, again.enrolled) == (patients, patients, 2)
    assert again.not_enrolled == patients - 2
    assert again.warnings == []


def test_dry_run_on_identical_tables_also_skips(agent: Agent, enrolled) -> None:
    dry = sync(agent, dry_run=True)
    assert skipped_read(dry)
    assert dry.to_upload == 0


def test_one_byte_changed_with_the_times_put_back_is_seen(
    harness: Harness, agent: Agent, source: Path, enrolled
) -> None:
    pid = next(iter(enrolled))
    recno, sig = memo_of(source, pid)
    files = [source / "rxfill.dbf", source / "rxfill.fpt"]
    times = {p: (p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in files}
    sizes = {p: p.stat().st_size for p in files}
    edited = sig[:-1] + ("!" if sig[-1] != "!" else "?")
    with TableEditor(source / "rxfill.dbf", long_names=TABLES[3].long_names) as editor:
        editor.update(recno, {"sig": edited})
    for p, (atime, mtime) in times.items():
        os.utime(p, ns=(atime, mtime))
    assert {p: p.stat().st_size for p in files} == sizes  # the memo was rewritten in place
    assert {p: p.stat().st_mtime_ns for p in files} == {p: t[1] for p, t in times.items()}

    summary = sync(agent)
    assert not skipped_read(summary)
    assert summary.uploaded == 1
    version, document = open_for(harness, agent.context(), pid, enrolled[pid])
    assert version == 2
    assert edited.encode() in document


def test_a_new_key_on_identical_tables_is_uploaded(
    harness: Harness, agent: Agent, enrolled
) -> None:
    ctx = agent.context()
    pid = documents(agent).patient_ids[5]
    (made,) = enroll(ctx, [pid], days=30)
    private = harness.register_fast(made.code_text)
    summary = sync(agent)
    assert not skipped_read(summary)
    assert (summary.keys_verified, summary.uploaded) == (1, 1)
    assert open_for(harness, ctx, pid, private)[0] == 1
    assert skipped_read(sync(agent))


def test_an_interrupted_run_forgets_the_record(
    harness: Harness, agent: Agent, source: Path, tmp_path: Path, enrolled, monkeypatch
) -> None:
    """Tables changed, a run uploads the change but never learns it landed, the tables are put
    back byte for byte: the server holds the changed document, so the next run must not trust
    the record of the complete run before."""
    pid = next(iter(enrolled))
    ctx = agent.context()
    _, original = open_for(harness, ctx, pid, enrolled[pid])
    backup = tmp_path / "backup"
    shutil.copytree(source, backup)
    recno, sig = memo_of(source, pid)
    with TableEditor(source / "rxfill.dbf", long_names=TABLES[3].long_names) as editor:
        editor.update(recno, {"sig": sig + " (changed)"})

    applied_without_answer = ServerApi.put_batch

    def lost_answer(self: ServerApi, batch_id: str, data: bytes) -> dict[str, object]:
        applied_without_answer(self, batch_id, data)
        raise UserError("the connection was lost (test)")

    monkeypatch.setattr(ServerApi, "put_batch", lost_answer)
    with pytest.raises(UserError):
        sync(agent)
    monkeypatch.undo()
    assert synced_record(agent) is None
    version, changed = open_for(harness, ctx, pid, enrolled[pid])
    assert (version, b"(changed)" in changed) == (2, True)

    shutil.rmtree(source)
    shutil.copytree(backup, source)
    summary = sync(agent)
    assert not skipped_read(summary)
    version, document = open_for(harness, ctx, pid, enrolled[pid])
    assert (version, document) == (3, original)


def test_another_mapping_or_name_reads_again(agent: Agent, enrolled) -> None:
    home = agent.home
    toml = home / "agent.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace("Main Street Pharmacy", "Main Street Pharmacy & Co"), "utf-8")
    renamed = sync(agent)
    assert not skipped_read(renamed)
    assert renamed.uploaded == 2  # the pharmacy's name is in every document
    assert skipped_read(sync(agent))


def test_tables_that_moved_during_the_read_are_not_recorded(
    agent: Agent, enrolled, monkeypatch
) -> None:
    """The record is written only if the tables hashed the same before and after the read."""
    import rxvault.agent._sync as sync_module

    real = sync_module.source_digest
    calls: list[str | None] = []

    def moving(mapping, directory, pages=None):  # type: ignore[no-untyped-def]
        digest = real(mapping, directory, pages)
        calls.append(digest)
        return digest if len(calls) % 2 else "0" * 64  # the second hash of a run differs

    assert synced_record(agent) is not None
    monkeypatch.setattr(sync_module, "source_digest", moving)
    # the record of the first sync still matches the tables: the run stops after the first hash
    assert skipped_read(sync(agent))
    calls.clear()
    (agent.context().config.source_dir / "patient.dbf").touch()  # times alone change nothing
    assert skipped_read(sync(agent))
    # a new mapping text forces a full read, during which the tables "move"
    toml = agent.home / "agent.toml"
    toml.write_text(toml.read_text("utf-8").replace("Main Street Pharmacy", "Main St."), "utf-8")
    calls.clear()
    summary = sync(agent)
    assert not skipped_read(summary)
    assert len(calls) == 2
    assert synced_record(agent) is None
    monkeypatch.undo()
    assert not skipped_read(sync(agent))  # read in full again, and recorded this time
    assert skipped_read(sync(agent))
