"""A bad source never deletes: truncated, corrupt, wrong, old or shrunken sources are refused
with a clear error, and nothing is deleted on the server."""

from __future__ import annotations

import math
import shutil

import pytest

from rxvault._cli_errors import UserError
from rxvault.agent import GuardRefused, Reporter, SourceError, SyncOptions, enroll, run_sync
from rxvault.dbf import TableEditor
from rxvault.demo import TABLES, generate
from rxvault.demo._next_day import next_day

from .conftest import Agent, Harness, make_agent
from .test_sync_flow import documents

QUIET = Reporter(interactive=False, quiet=True)
PATIENTS = TABLES[0]


def sync(agent: Agent, **options: object):
    return run_sync(agent.context(), SyncOptions(**options), QUIET)  # type: ignore[arg-type]


@pytest.fixture
def synced(harness: Harness, agent: Agent) -> tuple[Agent, list[str]]:
    """Every patient enrolled and synced once."""
    ctx = agent.context()
    ids = documents(agent).patient_ids
    for made in enroll(ctx, ids, days=30):
        harness.register_fast(made.code_text)
    assert sync(agent).uploaded == len(ids)
    return agent, ids


def live(harness: Harness) -> int:
    return sum(1 for state, _, _ in harness.records().values() if state == "live")


def delete_patients(source, ids: list[str]) -> None:
    from rxvault.dbf import open_table

    with open_table(source / PATIENTS.file) as t:
        table = t.read(columns=["patient_id"], with_recno=True)
    recnos = [
        r
        for r, p in zip(
            table.column("_recno").to_pylist(), table.column("patient_id").to_pylist(), strict=True
        )
        if str(p) in ids
    ]
    assert len(recnos) == len(ids)
    with TableEditor(source / PATIENTS.file, long_names=PATIENTS.long_names) as editor:
        for r in recnos:
            editor.delete(r)


def test_truncated_table_is_refused(harness, synced, source) -> None:
    agent, ids = synced
    path = source / "rxfill.dbf"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5000])
    with pytest.raises(SourceError) as info:
        sync(agent)
    assert "rxfill.dbf" in info.value.message
    assert info.value.hint
    assert live(harness) == len(ids)


def test_corrupt_memo_is_refused(harness, synced, source) -> None:
    agent, ids = synced
    memo = source / "rxfill.fpt"
    data = memo.read_bytes()
    memo.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError) as info:
        sync(agent)
    assert "rxfill" in info.value.message
    assert live(harness) == len(ids)


def test_source_with_far_fewer_patients_is_refused(harness, synced, source) -> None:
    """Half the patients gone (a partial export, a wrong filter) deletes nobody."""
    agent, ids = synced
    delete_patients(source, ids[: len(ids) // 2])
    with pytest.raises(GuardRefused) as info:
        sync(agent)
    assert "95%" in info.value.message
    assert "--allow-deletions" in (info.value.hint or "")
    assert live(harness) == len(ids)


def test_deletions_over_the_cap_need_the_exact_number(harness, tmp_path) -> None:
    source = tmp_path / "big"
    generate(source, patients=300, seed=5)
    agent = make_agent(harness, tmp_path / "big-home", source)
    ctx = agent.context()
    ids = documents(agent).patient_ids
    cap = max(5, math.ceil(0.02 * len(ids)))
    gone = ids[: cap + 1]  # over the cap, while more than 95% remain
    assert len(ids) - len(gone) >= 0.95 * len(ids)
    for made in enroll(ctx, ids[: cap + 10], days=30):
        harness.register_fast(made.code_text)
    assert sync(agent).uploaded == cap + 10
    delete_patients(source, gone)
    with pytest.raises(GuardRefused) as info:
        sync(agent)
    assert f"more than the cap of {cap}" in info.value.message
    assert live(harness) == cap + 10
    with pytest.raises(GuardRefused):
        sync(agent, allow_deletions=cap)  # not the exact number
    summary = sync(agent, allow_deletions=cap + 1)
    assert summary.deleted == cap + 1
    records = harness.records()
    assert {records[ctx.handle(p)][0] for p in gone} == {"deleted"}
    assert live(harness) == 9
    # Within the cap, deletions need no permission.
    delete_patients(source, ids[cap + 1 : cap + 3])
    assert sync(agent).deleted == 2
    assert live(harness) == 7


def test_wrong_source_is_refused(harness, synced, source, tmp_path) -> None:
    agent, ids = synced
    # Another database with other table structures in the same place.
    from rxvault.dbf import FieldSpec, write_table

    shutil.copy(source / "allergy.dbf", tmp_path / "allergy.bak")
    # Another application's table of the same name: the mapped fields are there (free-table
    # names in upper case), but the structure is not the one synced before.
    write_table(
        source / "allergy.dbf",
        [
            FieldSpec("patient_id", "I"),
            FieldSpec("allergen", "C", 40),
            FieldSpec("reaction", "C", 30),
            FieldSpec("severity", "C", 8),
            FieldSpec("date_noted", "D"),
            FieldSpec("recorder", "C", 10),
        ],
        [],
    )
    with pytest.raises(GuardRefused) as info:
        sync(agent)
    assert "not the ones synced before" in info.value.message
    assert "--accept-new-source" in (info.value.hint or "")
    assert live(harness) == len(ids)
    # Accepted on purpose once, it becomes the source synced before.
    accepted = sync(agent, accept_new_source=True)
    assert accepted.warnings == []
    assert accepted.uploaded > 0  # the patients who had allergies
    assert sync(agent).uploaded == 0


def test_old_source_is_refused(harness, synced, source, tmp_path) -> None:
    agent, _ = synced
    backup = tmp_path / "backup"
    shutil.copytree(source, backup)
    next_day(source, seed=3)
    sync(agent, allow_deletions=None)
    before = harness.records()
    # A backup from the day before is restored over the live data.
    shutil.rmtree(source)
    shutil.copytree(backup, source)
    with pytest.raises(GuardRefused) as info:
        sync(agent)
    assert "older" in info.value.message
    assert harness.records() == before


def test_missing_source_directory(harness, agent, source) -> None:
    shutil.rmtree(source)
    with pytest.raises(UserError) as info:
        sync(agent)
    assert "source directory does not exist" in info.value.message
