"""Harness 7 (issue 8): a model-based test of the daily sync (hypothesis state machine).

A small demo pharmacy (60 patients, 8 enrolled and registered) is edited the way the pharmacy
software does it, through :class:`rxvault.dbf.TableEditor`: patients added, fills edited in
place, memos rewritten in place (same length: the row bytes do not change), fills and patients
deleted, tables PACKed, the records of a table reordered on disk, patients enrolled again with a
new key. Syncs run in between (the real server app, in process, on SQLite), some of them
interrupted: an exception is raised at a step of the run (``crash_point``: after the read, after
sealing, before an upload, after the server's acknowledgement before the local commit, inside a
local transaction, ...).

The model is the set of patients in the source, who is enrolled and with which key. After every
completed sync, every enrolled patient's block on the server decrypts (with the patient's current
key) to exactly the document the agent's preview builds from the tables as they are now;
patients deleted from the source are deleted on the server; the local state knows what the
server has (its outbox is empty).

Short form: 2 examples of up to 10 steps. Long form (``-m long``):
``RXVAULT_SOAK_AGENT_MODEL_EXAMPLES`` examples (default 100) of up to 30 steps.
"""

from __future__ import annotations

import atexit
import collections
import os
import random
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from rxvault import format as fmt
from rxvault.agent import _outbox, _state, _sync, enroll
from rxvault.agent._crash import STEPS
from rxvault.dbf import TableEditor, open_table
from rxvault.demo import generate
from rxvault.demo._schema import FILLS, PATIENTS

from ._agent import Server, check_local, database_server, documents, new_case, records

_TEMPLATE: dict[str, Path] = {}
COUNTS: collections.Counter[str] = collections.Counter()


class Crash(BaseException):
    """An injected fault (BaseException: nothing in the agent may swallow it)."""


def _template() -> Path:
    if "source" not in _TEMPLATE:
        folder = tempfile.mkdtemp(prefix="rxv-model-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = Path(folder) / "pharmacy"
        generate(path, patients=60, seed=5)
        _TEMPLATE["source"] = path
    return _TEMPLATE["source"]


def _rows(path: Path) -> list[dict[str, Any]]:
    with open_table(path) as t:
        return list(t.read(with_recno=True).to_pylist())


def _reorder(path: Path, seed: int) -> None:
    """Rewrite the table's records in another order (same header, same memo pointers)."""
    raw = bytearray(path.read_bytes())
    count = struct.unpack_from("<I", raw, 4)[0]
    header, size = struct.unpack_from("<HH", raw, 8)
    records = [bytes(raw[header + i * size : header + (i + 1) * size]) for i in range(count)]
    random.Random(seed).shuffle(records)
    raw[header : header + count * size] = b"".join(records)
    path.write_bytes(raw)


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="rxv-model-run-"))
        self.source = self.tmp / "pharmacy"
        shutil.copytree(_template(), self.source)
        self._server_cm = database_server(self.tmp, socket=False)
        self.server: Server = self._server_cm.__enter__()
        ids = documents(self.source).patient_ids
        self.case = new_case(
            self.server, self.tmp / "home", self.source, secret=os.urandom(32), ids=ids[:8]
        )
        self.enrolled = set(ids[:8])
        self.gone_since_sync = 0
        self.next_id = max(int(p["patient_id"]) for p in _rows(self.source / "patient.dbf")) + 1
        self.synced = False

    def teardown(self) -> None:
        self._server_cm.__exit__(None, None, None)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- pharmacy edits ------------------------------------------------------------------

    def _edit(self, table: str) -> TableEditor:
        spec = PATIENTS if table == "patient" else FILLS
        return TableEditor(self.source / f"{table}.dbf", long_names=spec.long_names)

    def _live(self, table: str) -> list[dict[str, Any]]:
        return _rows(self.source / f"{table}.dbf")

    # Each rule picks with an integer (modulo the choices), so that the scenario below can
    # call the same steps directly.

    @rule(k=st.integers(0, 10**6))
    def add_patient(self, k: int) -> None:
        patients = self._live("patient")
        template = dict(patients[k % len(patients)])
        template.pop("_recno")
        template.update(patient_id=self.next_id, active=True, last_name=f"NEW{self.next_id}")
        self.next_id += 1
        with self._edit("patient") as ed:
            ed.append([template])

    @rule(k=st.integers(0, 10**6), quantity=st.integers(1, 400))
    def edit_fill(self, k: int, quantity: int) -> None:
        fills = self._live("rxfill")
        with self._edit("rxfill") as ed:
            ed.update(fills[k % len(fills)]["_recno"], {"quantity": quantity, "status": "W"})

    @rule(k=st.integers(0, 10**6), letters=st.text("ABCDEFGH", min_size=4, max_size=4))
    def memo_in_place(self, k: int, letters: str) -> None:
        fills = [f for f in self._live("rxfill") if f.get("sig") and len(f["sig"]) >= 4]
        fill = fills[k % len(fills)]
        with self._edit("rxfill") as ed:
            before = ed.memo_pointer(fill["_recno"], "sig")
            row = ed.read_raw(fill["_recno"])
            ed.update(fill["_recno"], {"sig": letters + fill["sig"][4:]})
            assert ed.memo_pointer(fill["_recno"], "sig") == before  # rewritten in place
            assert ed.read_raw(fill["_recno"]) == row  # the row bytes did not change

    @rule(k=st.integers(0, 10**6))
    def delete_fill(self, k: int) -> None:
        fills = self._live("rxfill")
        with self._edit("rxfill") as ed:
            ed.delete(fills[k % len(fills)]["_recno"])

    @precondition(lambda self: self.gone_since_sync < 2)
    @rule(k=st.integers(0, 10**6))
    def delete_patient(self, k: int) -> None:
        patients = self._live("patient")
        patient = patients[k % len(patients)]
        with self._edit("patient") as ed:
            ed.delete(patient["_recno"])
        if patient.get("active"):
            self.gone_since_sync += 1

    @rule(table=st.sampled_from(["patient", "rxfill"]))
    def pack(self, table: str) -> None:
        with self._edit(table) as ed:
            ed.pack()

    @rule(table=st.sampled_from(["patient", "rxfill"]), seed=st.integers(0, 1000))
    def reorder(self, table: str, seed: int) -> None:
        _reorder(self.source / f"{table}.dbf", seed)

    @rule(k=st.integers(0, 10**6))
    def re_enroll(self, k: int) -> None:
        present = set(documents(self.source).patient_ids)
        choices = sorted(self.enrolled & present)
        if not choices:
            return
        pid = choices[k % len(choices)]
        ctx = self.case.agent.context()
        (e,) = enroll(ctx, [pid], days=30)
        self.case.keys[ctx.handle(pid)] = self.server.harness.register_fast(e.code_text)
        COUNTS["re-enrollments"] += 1

    # --- syncs ---------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        summary = self.case.sync()
        assert summary.exit_code in (0, 1), summary.warnings  # type: ignore[attr-defined]
        self.gone_since_sync = 0
        self.synced = True
        self.check()

    @rule(step=st.sampled_from([s for s in STEPS if s != "outbox-drained"]), nth=st.integers(1, 3))
    def interrupted_sync(self, step: str, nth: int) -> None:
        seen = {"n": 0}

        def crash_point(name: str) -> None:
            if name == step:
                seen["n"] += 1
                if seen["n"] == nth:
                    raise Crash(name)

        with pytest.MonkeyPatch.context() as m:
            for module in (_sync, _outbox, _state):
                m.setattr(module, "crash_point", crash_point)
            try:
                self.case.sync()
            except Crash:
                COUNTS["interrupted syncs"] += 1
            else:
                self.gone_since_sync = 0
                self.synced = True
                self.check()

    def check(self) -> None:
        """The server holds exactly the model's documents for the enrolled patients."""
        COUNTS["checked syncs"] += 1
        docs = documents(self.source)
        ctx = self.case.agent.context()
        on_server = records(self.server.harness, self.case.slug)
        for pid in sorted(self.enrolled):
            handle = ctx.handle(pid)
            index = docs.index_of(pid)
            record = on_server.get(handle)
            if index is None:
                assert record is None or record.state == "deleted", pid
                continue
            assert record is not None, pid
            assert record.state == "live", pid
            assert record.envelope is not None
            opened = fmt.open_block(
                record.envelope,
                recipient_private_key=self.case.keys[handle],
                pharmacy_public_key=ctx.key.public_bytes(),
                expected_handle=handle,
            )
            ((_, expected),) = list(docs.build([index]))
            assert opened.document == expected, pid
            COUNTS["documents compared"] += 1
        check_local(self.case, self.case.view())


SHORT = settings(
    max_examples=2,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def test_model_scenario() -> None:
    """Every kind of step at least once, in an order that matters (a memo rewritten in place
    and a re-enrollment, each followed by a sync; an interrupted sync; PACK and reorder that
    must upload nothing new)."""
    m = SyncMachine()
    try:
        m.sync()
        m.memo_in_place(3, "HGFE")
        m.re_enroll(1)
        m.sync()
        m.add_patient(5)
        m.edit_fill(7, 321)
        m.delete_fill(11)
        m.delete_patient(2)
        m.interrupted_sync("sent", 1)
        m.sync()
        m.pack("rxfill")
        m.reorder("patient", 4)
        m.pack("patient")
        before = len(_batches(m))
        m.sync()
        assert len(_batches(m)) == before  # PACK and reorder upload nothing
    finally:
        m.teardown()


def _batches(m: SyncMachine) -> list[object]:
    from rxvault.server._models import Batch, Pharmacy

    with m.server.harness.session() as s:
        return list(
            s.execute(
                sa.select(Batch.batch_id)
                .join(Pharmacy, Pharmacy.id == Batch.pharmacy_id)
                .where(Pharmacy.slug == m.case.slug)
            ).scalars()
        )


def test_model_based_sync() -> None:
    machine = SyncMachine
    machine.TestCase.settings = SHORT
    COUNTS.clear()
    machine.TestCase().runTest()
    print(dict(COUNTS))
    assert COUNTS["documents compared"] > 0


@pytest.mark.long
def test_long_model_based_sync() -> None:
    examples = int(os.environ.get("RXVAULT_SOAK_AGENT_MODEL_EXAMPLES", "100"))
    machine = SyncMachine
    machine.TestCase.settings = settings(
        SHORT, max_examples=examples, stateful_step_count=30, derandomize=False
    )
    COUNTS.clear()
    machine.TestCase().runTest()
    print(f"model-based sync: {examples} examples, {dict(COUNTS)}")
