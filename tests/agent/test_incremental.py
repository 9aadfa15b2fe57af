"""The incremental read finds exactly what a full read finds: the same patients, in the same
order, with the same digests and documents, after every kind of change a day brings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import rxvault.agent._incremental as incremental
from rxvault.agent import enroll, load_mapping
from rxvault.agent._documents import Documents, prepare
from rxvault.agent._incremental import CACHE_NAME, IncrementalRead, LazyDocuments
from rxvault.agent._mapping import Mapping
from rxvault.agent._source import SourceError, read_source, source_digest
from rxvault.dbf import TableEditor, open_table
from rxvault.demo._next_day import next_day
from rxvault.demo._schema import TABLES

from .conftest import Agent, Harness
from .test_sync_flow import documents, sync

DEMO = Path(__file__).parents[2] / "src" / "rxvault" / "agent" / "mappings" / "demo.toml"
NAME = "Main Street Pharmacy"


@pytest.fixture
def mapping() -> Mapping:
    return load_mapping(DEMO)


def full(mapping: Mapping, source: Path) -> Documents:
    return prepare(mapping, read_source(mapping, source, attempts=1, wait=0.01), NAME)


def incremental_read(
    mapping: Mapping, source: Path, cache: Path, *, hint: bool = True
) -> tuple[IncrementalRead, Documents | LazyDocuments]:
    pages: dict = {}
    source_digest(mapping, source, pages)
    reader = IncrementalRead(
        mapping, NAME, cache, pages=pages if hint else None, attempts=1, wait=0.01
    )
    docs = reader.prepare(reader.read(source))
    reader.save(docs)
    return reader, docs


def assert_same(expected: Documents, got: Documents | LazyDocuments) -> None:
    assert got.patient_ids == expected.patient_ids
    assert np.array_equal(got.digests, expected.digests)
    everyone = list(range(len(expected)))
    assert dict(got.build(everyone)) == dict(expected.build(everyone))


def changed_patients(before: Documents, after: Documents) -> set[str]:
    old = dict(zip(before.patient_ids, before.digests.tolist(), strict=True))
    return {
        p for p, d in zip(after.patient_ids, after.digests.tolist(), strict=True) if old.get(p) != d
    }


def test_days_read_incrementally_equal_full_reads(
    mapping: Mapping, source: Path, tmp_path: Path
) -> None:
    cache = tmp_path / CACHE_NAME
    first, docs = incremental_read(mapping, source, cache)
    assert first.result.full
    assert_same(full(mapping, source), docs)
    for seed in (2, 3, 4):
        before = full(mapping, source)
        day = next_day(source, seed=seed)
        reader, docs = incremental_read(mapping, source, cache, hint=seed != 3)
        assert not reader.result.full
        expected = full(mapping, source)
        assert_same(expected, docs)
        moved = changed_patients(before, expected)
        assert moved, "the day changed nobody's documents"
        # every patient whose document changed was recomputed, and not many more
        ids = pa.array(expected.patient_ids, type=pa.string())
        recomputed = np.isin(incremental.key_hashes(ids), reader.result.dirty)
        assert moved <= {p for p, r in zip(expected.patient_ids, recomputed, strict=True) if r}
        assert len(reader.result.dirty) <= len(day.patient_ids) + 5


def test_a_pack_reads_everything(mapping: Mapping, source: Path, tmp_path: Path) -> None:
    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    next_day(source, seed=2, pack=True)
    reader, docs = incremental_read(mapping, source, cache)
    assert reader.result.full  # fewer records than the cache knows
    assert_same(full(mapping, source), docs)
    reader, docs = incremental_read(mapping, source, cache)  # and the cache is whole again
    assert not reader.result.full
    assert len(reader.result.dirty) == 0
    assert_same(full(mapping, source), docs)


def test_a_changed_drug_recomputes_every_patient_who_takes_it(
    mapping: Mapping, source: Path, tmp_path: Path
) -> None:
    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    before = full(mapping, source)
    drugs = next(t for t in TABLES if t.file == "drug.dbf")
    with TableEditor(source / "drug.dbf", long_names=drugs.long_names) as editor:
        editor.update(1, {"drug_name": "RENAMED DRUG"})
    reader, docs = incremental_read(mapping, source, cache)
    assert not reader.result.full
    expected = full(mapping, source)
    assert_same(expected, docs)
    moved = changed_patients(before, expected)
    assert moved
    assert len(reader.result.dirty) >= len(moved)


def test_a_memo_rewritten_in_place_a_moved_fill_and_a_filtered_patient_are_seen(
    mapping: Mapping, source: Path, tmp_path: Path
) -> None:
    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    before = full(mapping, source)
    fills = next(t for t in TABLES if t.file == "rxfill.dbf")
    with open_table(source / "rxfill.dbf") as t:
        sig = t.read(columns=["sig"]).column("sig")[0].as_py()
    edited = sig[:-1] + ("!" if sig[-1] != "!" else "?")  # same length: rewritten in place
    size = (source / "rxfill.fpt").stat().st_size
    with TableEditor(source / "rxfill.dbf", long_names=fills.long_names) as editor:
        editor.update(1, {"sig": edited})
    assert (source / "rxfill.fpt").stat().st_size == size
    with open_table(source / "rxfill.dbf") as t:
        owner = t.read(columns=["patient_id"]).column("patient_id")[1].as_py()
    someone_else = before.patient_ids[-1]
    with TableEditor(source / "rxfill.dbf", long_names=fills.long_names) as editor:
        editor.update(2, {"patient_id": int(someone_else)})  # a fill moves to another patient
    patients = next(t for t in TABLES if t.file == "patient.dbf")
    with TableEditor(source / "patient.dbf", long_names=patients.long_names) as editor:
        editor.update(5, {"active": False})  # filtered out: the patient leaves
    reader, docs = incremental_read(mapping, source, cache)
    assert not reader.result.full
    expected = full(mapping, source)
    assert_same(expected, docs)
    assert len(expected) == len(before) - 1
    assert {str(owner), someone_else} <= changed_patients(before, expected)


def test_unchanged_patients_are_read_when_their_documents_are_asked_for(
    mapping: Mapping, source: Path, tmp_path: Path
) -> None:
    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    next_day(source, seed=2)
    _, docs = incremental_read(mapping, source, cache)
    assert isinstance(docs, LazyDocuments)
    expected = full(mapping, source)
    # patients whose rows the read did not decode (a key registered today, say)
    picks = [0, len(expected) // 2, len(expected) - 1]
    decoded = docs._sub.docs if docs._sub is not None else None
    assert any(decoded is None or decoded.index_of(expected.patient_ids[i]) is None for i in picks)
    assert dict(docs.build(picks)) == dict(expected.build(picks))


def test_a_cache_it_cannot_vouch_for_is_not_used(
    mapping: Mapping, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    next_day(source, seed=2)
    expected = full(mapping, source)
    other = IncrementalRead(mapping, "Another Pharmacy", cache, attempts=1, wait=0.01)
    assert other.cache is None  # digests are seeded by the pharmacy's name
    cache.write_bytes(cache.read_bytes()[:1000])  # damaged
    reader, docs = incremental_read(mapping, source, cache)
    assert reader.result.full
    assert_same(expected, docs)
    monkeypatch.setattr(incremental, "FULL_EVERY", 0)  # the weekly full read
    reader, docs = incremental_read(mapping, source, cache)
    assert reader.result.full


def test_a_bad_value_in_a_changed_record_is_an_error(
    mapping: Mapping, source: Path, tmp_path: Path
) -> None:
    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    path = source / "rxfill.dbf"
    with open_table(path) as t:
        field = next(f for f in t.fields if f.column_name == "fill_date")
        at = t.header_length + 4 * t.record_length + field.offset
    with path.open("r+b") as f:
        f.seek(at)
        f.write(b"2024XX01")
    with pytest.raises(SourceError, match=r"rxfill\.dbf, record 5, field FILL_DATE"):
        incremental_read(mapping, source, cache)


def test_the_cache_file_is_private(mapping: Mapping, source: Path, tmp_path: Path) -> None:
    import os
    import stat

    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    if os.name == "posix":
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_a_cache_that_cannot_be_written_does_not_fail_the_sync(
    harness: Harness, agent: Agent, source: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = agent.context()
    ids = documents(agent).patient_ids[:3]
    for e in enroll(ctx, ids, days=30):
        harness.register_fast(e.code_text)
    blocked = ctx.config.home / CACHE_NAME
    blocked.mkdir()  # in the way of the file
    with caplog.at_level("WARNING", logger="rxvault.agent"):
        first = sync(agent)
    assert (first.uploaded, first.warnings, first.exit_code, first.read) == (3, [], 0, "full")
    assert "source cache not written" in caplog.text
    blocked.rmdir()
    next_day(source, seed=2)
    second = sync(agent)
    assert (second.warnings, second.read) == ([], "full")  # no cache yet: written now
    next_day(source, seed=3)
    third = sync(agent)
    assert (third.warnings, third.read) == ([], "incremental")
    assert 0 < third.recomputed < third.patients_read
    assert "read incrementally" in "\n".join(third.lines())


def test_a_changed_record_pointing_into_another_records_memo_is_an_error(
    mapping: Mapping, source: Path, tmp_path: Path
) -> None:
    """What a full read's memo budget refuses, the incremental read refuses too: otherwise
    the changed record would publish another patient's note."""
    cache = tmp_path / CACHE_NAME
    incremental_read(mapping, source, cache)
    path = source / "patient.dbf"
    with open_table(path) as t:
        field = next(f for f in t.fields if f.column_name == "allergies")
        pointers = t.raw_records()[:, field.offset : field.offset + 4].copy().view("<u4")[:, 0]
        a, b = (int(i) for i in np.flatnonzero(pointers)[:2])
        at = t.header_length + a * t.record_length + field.offset
        theirs = pointers[b].tobytes()
    with path.open("r+b") as f:
        f.seek(at)
        f.write(theirs)
    with pytest.raises(SourceError, match=rf"patient\.dbf, record {a + 1}, field ALLERGIES"):
        incremental_read(mapping, source, cache)
    # a full read names one of the two records (the one it meets second)
    either = rf"patient\.dbf, record ({a + 1}|{b + 1}), field ALLERGIES: .* shares blocks"
    with pytest.raises(SourceError, match=either):
        full(mapping, source)
