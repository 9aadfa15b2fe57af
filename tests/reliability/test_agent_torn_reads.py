"""Harness 8 (issue 8): the agent reads while the pharmacy application writes.

A writer process (``_agent_writer.py``) changes ``patient.dbf`` and ``rxfill.dbf`` of a demo
pharmacy the way Visual FoxPro does (memo blocks, then the record, then the header's count and
date, with a short pause before the header), as fast as it can, and logs the digest of every
state it commits. Meanwhile the agent's consistent read (``rxvault.agent._source.read_source``)
runs READS times:

- every read it accepts is a state the writer had: its digest of each table, taken together,
  matches one line of the writer's log (tables read at different moments must not be mixed);
- torn reads happen and are detected (retried); the figures are printed;
- every 20th read is a whole sync (against the real server app, in process) of a few enrolled
  patients: it never deletes anyone, since the writer never deletes a patient.

Short form: READS = 200 against a writer with ~2 ms pauses. Long form (``-m long``):
``RXVAULT_SOAK_AGENT_TORN_READS`` reads (default 2000) and no pause as well as a 20 ms pause.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rxvault.agent import _source, parse_mapping
from rxvault.agent._documents import prepare
from rxvault.agent._incremental import IncrementalRead
from rxvault.agent._source import read_source
from rxvault.dbf import TableEditor, open_table
from rxvault.demo._schema import FILLS, PATIENTS

from ._agent import database_server, make_source, new_case, patient_ids
from ._agent_writer import TABLES, PausingEditor, table_digest

WRITER = Path(__file__).with_name("_agent_writer.py")


def _mapping():  # type: ignore[no-untyped-def]
    text = (importlib.resources.files("rxvault.agent") / "mappings" / "demo.toml").read_text(
        encoding="utf-8"
    )
    return parse_mapping(text, Path("demo.toml"))


def reads_while_writing(
    tmp: Path, reads: int, pause: float, seed: int, idle: float = 0.3
) -> dict[str, int]:
    source = make_source(tmp / "pharmacy", patients=120)
    mapping = _mapping()
    by_file = {t.file: name for name, t in mapping.tables.items()}
    columns = {f"{t}.dbf": mapping.columns(by_file[f"{t}.dbf"]) for t in TABLES}
    log = tmp / "states.log"
    figures = {"reads": 0, "torn": 0, "syncs": 0, "failed": 0, "incremental": 0}
    cache = tmp / "source-cache.bin"
    with database_server(tmp, socket=False) as server:
        case = new_case(
            server,
            tmp / "home",
            source,
            secret=os.urandom(32),
            ids=patient_ids(source)[:5],
        )
        config = case.home / "agent.toml"
        config.write_text(
            config.read_text(encoding="utf-8") + "read_attempts = 200\n", encoding="utf-8"
        )
        case.sync()  # the first sync, before the writer starts
        writer = subprocess.Popen(
            [
                sys.executable,
                str(WRITER),
                str(source),
                str(log),
                "600",
                str(seed),
                json.dumps(columns),
                str(pause),
            ]
        )
        accepted: list[dict[str, str]] = []
        try:
            while not log.exists() or log.stat().st_size == 0:
                assert writer.poll() is None
                time.sleep(0.01)
            for i in range(reads):
                if i % 20 == 19:
                    summary = case.sync()
                    figures["syncs"] += 1
                    assert summary.gone == 0, "a patient that exists was taken as gone"  # type: ignore[attr-defined]
                    assert summary.deleted == 0  # type: ignore[attr-defined]
                    continue
                if i % 5 == 4:
                    # the incremental read, its cache kept from read to read while the
                    # tables move: checked against a full read once the writer has stopped
                    reader = IncrementalRead(mapping, "Torn", cache, attempts=200, wait=0.001)
                    reader.save(reader.prepare(reader.read(source)))
                    figures["incremental"] += 0 if reader.result.full else 1
                    continue
                read = read_source(mapping, source, attempts=200, wait=0.001)
                figures["reads"] += 1
                figures["torn"] += read.attempts - 1
                accepted.append(
                    {
                        name: table_digest(read.tables[by_file[f"{name}.dbf"]].data)
                        for name in TABLES
                    }
                )
        finally:
            log.with_name(log.name + ".stop").touch()
            assert writer.wait(timeout=120) == 0
        states = {
            json.dumps(json.loads(line), sort_keys=True)
            for line in log.read_text(encoding="utf-8").splitlines()
        }
        figures["states"] = len(states)
        reader = IncrementalRead(mapping, "Torn", cache, attempts=3, wait=0.01)
        docs = reader.prepare(reader.read(source))
        full = prepare(mapping, read_source(mapping, source), "Torn")
        assert docs.patient_ids == full.patient_ids
        assert (docs.digests == full.digests).all(), "the cache went wrong while tables moved"
        never = [a for a in accepted if json.dumps(a, sort_keys=True) not in states]
        assert not never, f"{len(never)} of {len(accepted)} accepted reads were never a state"
        assert all(v[0] == "live" for v in case.view().values())
    return figures


def test_reads_while_the_pharmacy_writes(tmp_path: Path) -> None:
    figures = reads_while_writing(tmp_path, reads=200, pause=0.002, seed=1, idle=0.6)
    print(figures)
    assert figures["states"] > 50  # the writer was busy
    assert figures["incremental"] > 10
    assert figures["torn"] > 0  # and some reads were caught tearing


@pytest.mark.long
@pytest.mark.parametrize("pause", [0.0, 0.02])
def test_long_reads_while_the_pharmacy_writes(tmp_path: Path, pause: float) -> None:
    reads = int(os.environ.get("RXVAULT_SOAK_AGENT_TORN_READS", "2000"))
    figures = reads_while_writing(tmp_path, reads=reads, pause=pause, seed=2)
    print(f"reads while writing (pause {pause}): {figures}")
    assert figures["torn"] > 0


# --- regressions: what the harness found ------------------------------------------------------


def test_a_record_written_before_its_count_is_read_again(tmp_path: Path) -> None:
    """VFP writes an appended record, then the header's count: in between, the strict reader
    sees one whole record more than the header says. That is a table being written, not a
    damaged one: the read waits and reads again (it used to fail the whole sync)."""
    source = make_source(tmp_path / "pharmacy", patients=30)
    mapping = _mapping()
    before = read_source(mapping, source).tables["prescriptions"].data.num_rows
    release = threading.Event()

    class Slow(PausingEditor):
        def _write_header(self) -> None:
            self._fh.flush()
            release.wait(30)
            TableEditor._write_header(self)

    with open_table(source / "rxfill.dbf") as t:
        row = t.read().slice(0, 1).to_pylist()[0]
    row.pop("fill_id")

    def append() -> None:
        with Slow(source / "rxfill.dbf", long_names=FILLS.long_names) as ed:
            ed.append([row])

    size = (source / "rxfill.dbf").stat().st_size
    writer = threading.Thread(target=append)
    writer.start()
    try:
        deadline = time.monotonic() + 10
        while (source / "rxfill.dbf").stat().st_size == size and time.monotonic() < deadline:
            time.sleep(0.005)
        # The header follows 0.3 s later: longer than the reader waits for a table that looks
        # damaged to settle (the long form found a busy machine doing that), so the first
        # attempts see no change; only the last attempt may call the table damaged.
        threading.Timer(0.3, release.set).start()
        read = read_source(mapping, source, attempts=20, wait=0.05)
    finally:
        release.set()
        writer.join()
    assert read.attempts >= 2
    assert read.tables["prescriptions"].data.num_rows == before + 1


def test_tables_read_at_different_moments_are_not_mixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pharmacy changes patient.dbf, then rxfill.dbf, while the agent is between the two:
    the old patient table with the new fills never existed together. The read used to accept
    it (each table was checked only against itself); it must read again."""
    source = make_source(tmp_path / "pharmacy", patients=30)
    mapping = _mapping()
    first = read_source(mapping, source)
    opened = _source.open_table
    done = []

    def open_and_change(path: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if Path(path).name == "rxfill.dbf" and not done:
            done.append(True)
            with TableEditor(source / "patient.dbf", long_names=PATIENTS.long_names) as ed:
                ed.update(1, {"phone": "(555) 000-0000"})
            with TableEditor(source / "rxfill.dbf", long_names=FILLS.long_names) as ed:
                ed.update(1, {"quantity": 999})
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(_source, "open_table", open_and_change)
    read = read_source(mapping, source, attempts=3, wait=0.01)
    assert done
    new_patients = "(555) 000-0000" in read.tables["patients"].data.column("phone").to_pylist()
    new_fills = 999 in read.tables["prescriptions"].data.column("quantity").to_pylist()
    assert 999 not in first.tables["prescriptions"].data.column("quantity").to_pylist()
    assert new_patients == new_fills, "a mix of two moments was accepted"
    assert new_fills


def test_a_damaged_table_is_still_called_damaged(tmp_path: Path) -> None:
    """A header that says one record fewer than the file holds, for good: after the attempts,
    the error is the reader's (naming the file and record), not "changed while it was read"."""
    source = make_source(tmp_path / "pharmacy", patients=30)
    path = source / "rxfill.dbf"
    raw = bytearray(path.read_bytes())
    count = int.from_bytes(raw[4:8], "little")
    raw[4:8] = (count - 1).to_bytes(4, "little")
    path.write_bytes(raw)
    with pytest.raises(_source.SourceError, match=r"rxfill\.dbf, record \d+: header says"):
        read_source(_mapping(), source, attempts=3, wait=0.01)
