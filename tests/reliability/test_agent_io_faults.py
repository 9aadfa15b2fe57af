"""Harness 2 (issue 8): the N-th local write or fsync of a sync fails, for every N.

What is counted, in the order the run does it (one counter for the whole run):

- every SQL statement that writes the state database (``INSERT``, ``UPDATE``, ``DELETE``,
  ``REPLACE``, ``COMMIT``), injected *below* the agent's connection class (so the agent's own
  error handling sees an ``sqlite3.OperationalError`` with ``SQLITE_FULL`` "database or disk is
  full" or ``SQLITE_IOERR`` "disk I/O error", as SQLite raises them);
- every outbox file operation: the batch file's ``write``, its ``fsync``, the ``rename`` into
  place, the directory's ``fsync``, and the removal after the acknowledgement, failing with
  ``OSError`` ``ENOSPC`` or ``EIO``.

Not covered: faults inside SQLite's own page writes and WAL fsyncs (they surface as the same
``SQLITE_FULL`` / ``SQLITE_IOERR`` errors on the statement or the ``COMMIT``, which is what is
injected), and faults on the log file.

For each N the run goes through the command line (``rxvault agent sync``, in this process,
against the real server process over a socket) and must stop with ``rxvault: error: …`` naming
the file, no traceback, exit code 2; the local state must claim nothing the server has not
acknowledged; the next run, without faults, must converge to the reference (an uninterrupted run
on a separate database) with an empty outbox and a state that passes its integrity check.

Short form: every N of a first sync of 2 enrolled patients (one batch), the kind of fault
alternating (disk full / I/O error). Long form (``-m long``): every N with both kinds, for a first
sync of ``RXVAULT_SOAK_AGENT_IO_PATIENTS`` enrolled patients (default 10, batches of 4).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxvault.agent import _outbox, _state
from rxvault.agent.__main__ import main as agent_main

from ._agent import (
    Server,
    check_local,
    check_not_ahead,
    database_server,
    make_source,
    new_case,
    patient_ids,
    reference_views,
)

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "COMMIT")


class Faults:
    """One counter over the run's local writes; the ``fail_at``-th raises."""

    def __init__(self, fail_at: int | None, kind: str) -> None:
        self.fail_at = fail_at
        self.kind = kind  # "full" or "io"
        self.count = 0
        self.ops: list[str] = []
        self.failed: str | None = None

    def _due(self, what: str) -> bool:
        self.count += 1
        self.ops.append(what)
        if self.count == self.fail_at:
            self.failed = what
            return True
        return False

    def sql(self, statement: str) -> None:
        if self._due("sql " + statement.split(maxsplit=1)[0].upper()):
            if self.kind == "full":
                exc = sqlite3.OperationalError("database or disk is full")
                exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
            else:
                exc = sqlite3.OperationalError("disk I/O error")
                exc.sqlite_errorcode = sqlite3.SQLITE_IOERR  # type: ignore[attr-defined]
            raise exc

    def file(self, what: str, path: object) -> None:
        if self._due(what):
            code = errno.ENOSPC if self.kind == "full" else errno.EIO
            raise OSError(code, os.strerror(code), str(path))


def install(monkeypatch: pytest.MonkeyPatch, faults: Faults) -> None:
    class Injecting(sqlite3.Connection):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            if sql.lstrip().upper().startswith(WRITES):
                faults.sql(sql)
            return super().execute(sql, parameters)

        def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
            if sql.lstrip().upper().startswith(WRITES):
                faults.sql(sql)
            return super().executemany(sql, parameters)

    # The agent's connection class, with the faults injected beneath it.
    faulty = type("FaultyConnection", (_state._Connection, Injecting), {})
    monkeypatch.setattr(_state, "_Connection", faulty)

    class File:
        def __init__(self, fh: Any, path: object) -> None:
            self.fh, self.path = fh, path

        def __enter__(self) -> File:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> int:
            faults.file("write", self.path)
            return int(self.fh.write(data))

        def flush(self) -> None:
            self.fh.flush()

        def fileno(self) -> int:
            return int(self.fh.fileno())

    def open_(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return File(open(path, mode, *args, **kwargs), path)

    class Os:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def fsync(self, fd: int) -> None:
            faults.file("fsync", fd)
            os.fsync(fd)

        def replace(self, src: Any, dst: Any) -> None:
            faults.file("rename", dst)
            os.replace(src, dst)

    unlink = Path.unlink

    def unlink_(self: Path, missing_ok: bool = False) -> None:
        if self.parent.name == "outbox":
            faults.file("unlink", self)
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(_outbox, "open", open_, raising=False)
    monkeypatch.setattr(_outbox, "os", Os())
    monkeypatch.setattr(Path, "unlink", unlink_)


def cli_sync(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["rxvault agent", "--home", str(home), "sync", "--quiet"])
    try:
        agent_main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


class World:
    def __init__(self, server: Server, source: Path, ids: list[str], batch: int, tmp: Path):
        self.server, self.source, self.ids, self.batch = server, source, ids, batch
        self.secret = os.urandom(32)
        (self.reference,) = reference_views(
            tmp / "reference", source, self.secret, ids, batch_items=batch
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with database_server(tmp_path_factory.mktemp("io-faults"), socket=True) as s:
        yield s


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("io-source") / "pharmacy", patients=40)


def one_fault(
    world: World,
    tmp: Path,
    n: int | None,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> Faults:
    case = new_case(
        world.server,
        tmp / "home",
        world.source,
        secret=world.secret,
        ids=world.ids,
        batch_items=world.batch,
    )
    faults = Faults(n, kind)
    with monkeypatch.context() as m:
        install(m, faults)
        code, err = cli_sync(case.home, m, capsys)
    if faults.failed is not None:
        assert code == 2, (n, faults.failed, code, err)
        assert err.startswith("rxvault: error: "), err
        assert "could not be written" in err, err
        assert "Traceback" not in err, err
        assert "rxvault: hint: " in err
        check_not_ahead(case)
        code, err = cli_sync(case.home, monkeypatch, capsys)
    assert code == 0, (n, faults.failed, err)
    view = case.view()
    assert view == world.reference, (n, faults.failed)
    check_local(case, view)
    return faults


def sweep(
    world: World, tmp: Path, kinds: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> tuple[int, list[str]]:
    total = one_fault(world, tmp / "count", None, "full", monkeypatch, capsys).count
    assert total > 10
    failed = []
    for n in range(1, total + 1):
        for kind in kinds if len(kinds) > 1 else [kinds[0] if n % 2 else "io"]:
            faults = one_fault(world, tmp / f"{kind}-{n}", n, kind, monkeypatch, capsys)
            assert faults.failed is not None
            failed.append(faults.failed)
    return total, failed


def test_every_local_write_failing_stops_clearly_and_converges(
    server: Server, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    world = World(server, source, patient_ids(source)[:2], 2, tmp_path)
    _total, failed = sweep(world, tmp_path, ["full"], monkeypatch, capsys)
    kinds = {f.split()[0] for f in failed}
    assert kinds >= {"sql", "write", "fsync", "rename", "unlink"}, kinds


@pytest.mark.long
def test_long_every_local_write_both_faults(
    server: Server, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    patients = int(os.environ.get("RXVAULT_SOAK_AGENT_IO_PATIENTS", "10"))
    world = World(server, source, patient_ids(source)[:patients], 4, tmp_path)
    total, failed = sweep(world, tmp_path, ["full", "io"], monkeypatch, capsys)
    print(f"I/O faults: {total} local writes per run, {len(failed)} faulty runs converged")
