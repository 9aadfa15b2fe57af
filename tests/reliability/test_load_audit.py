"""The read path under concurrency, without timing: the audit group commit keeps one intact
chain with one entry per request, a failed group fails every request in it, and reads take no
write lock (harness 12's fix; see tests/reliability/test_load.py for the load itself)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from rxvault.server import _audit
from rxvault.server._db import (
    create_db_engine,
    migrate,
    read_transaction,
    session_factory,
    transaction,
)
from rxvault.server._models import AuditEntry, AuditHead
from server.conftest import scratch_database, selected


@pytest.fixture(scope="module", params=selected())
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    with scratch_database(request.param, tmp_path_factory.mktemp("db")) as url:
        eng = create_db_engine(url, pool_size=5)
        migrate(eng)
        yield eng
        eng.dispose()


KEY = b"k" * 32
AT = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def _entries(engine: sa.Engine) -> list[AuditEntry]:
    with transaction(session_factory(engine)) as s:
        return list(s.execute(sa.select(AuditEntry).order_by(AuditEntry.seq)).scalars())


def test_group_commit_keeps_one_chain_with_every_entry(engine: sa.Engine) -> None:
    factory = session_factory(engine)
    writer = _audit.AuditWriter(factory, KEY)
    before = len(_entries(engine))
    threads, per_thread = 8, 25
    errors: list[BaseException] = []

    def reader(t: int) -> None:
        try:
            for i in range(per_thread):
                writer.write(_audit.Fields(AT, f"account:{t}", "patient.block", detail=str(i)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def changer() -> None:
        try:
            for _ in range(per_thread):  # entries inside a write transaction, as a login's
                with transaction(factory) as s:
                    _audit.append(s, KEY, at=AT, actor="account:x", action="patient.login")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=reader, args=(t,)) for t in range(threads)]
    workers.append(threading.Thread(target=changer))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    entries = _entries(engine)
    assert len(entries) - before == threads * per_thread + per_thread
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert writer.entries == threads * per_thread
    assert 1 <= writer.groups <= writer.entries
    with transaction(factory) as s:
        report = _audit.verify(s, KEY)
    assert report.ok, report.problems
    # Each thread's entries are all there, in its own order.
    for t in range(threads):
        mine = [e.detail for e in entries if e.actor == f"account:{t}"]
        assert mine == [str(i) for i in range(per_thread)]


def test_a_failed_group_fails_every_request_in_it(engine: sa.Engine) -> None:
    factory = session_factory(engine)
    writer = _audit.AuditWriter(factory, KEY)
    with transaction(factory) as s:
        head = s.execute(sa.select(AuditHead.seq, AuditHead.mac)).one()
        s.execute(sa.delete(AuditHead))
    try:
        with pytest.raises(_audit.AuditWriteFailed):
            writer.write(_audit.Fields(AT, "account:1", "patient.block"))
    finally:
        with transaction(factory) as s:
            s.execute(sa.insert(AuditHead).values(id=1, seq=head.seq, mac=head.mac))
    writer.write(_audit.Fields(AT, "account:1", "patient.block"))  # and it recovers
    with transaction(factory) as s:
        assert _audit.verify(s, KEY).ok


def test_reads_take_no_write_lock_on_sqlite(tmp_path: Path) -> None:
    """A read transaction proceeds while another connection holds the write lock (before the
    fix every read began with BEGIN IMMEDIATE and queued behind writers)."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    factory = session_factory(engine)
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, stmt, *a: seen.append(stmt))
    with transaction(factory) as s:  # holds the write lock
        s.execute(sa.update(AuditHead).values(mac=AuditHead.mac))
        seen.clear()
        with read_transaction(factory) as r:  # would wait 30 s (busy timeout), then fail
            assert r.execute(sa.select(AuditHead.seq)).scalar_one() == 0
    assert seen[0] == "BEGIN"
    engine.dispose()
