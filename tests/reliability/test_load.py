"""Harness 12 (issue 8), load and soak: PostgreSQL, two server processes (same database, same
pepper), N concurrent patients logging in and reading their block while the agent uploads a
full sync to one of the processes (helpers in ``_load.py``).

Two workloads (``_load.Workload``), the patients alternating between the two processes:

- **people** (the realistic one, where the latency target applies): each patient logs in
  (pre-login, login, key bundle), fetches their block, reads it for a think time (log-normal,
  median ``RXVAULT_LOAD_THINK_MEDIAN`` = 3 s), then fetches it again or logs out (three
  fetches per visit on average), and after another think time the next visit begins;
- **closed** (saturation): the same requests in a closed loop without think time (five fetches
  per visit), every patient always waiting for an answer: this measures throughput at
  capacity; its latencies are queueing (much of it in the load generator itself).

Every block is verified and decrypted and must be the agent's document for that patient.
Before each run, ``add_keys`` registers more patients' keys, so the sync started with the load
is a full sync of all of them (sealed by the agent, verified and stored by the server); the
block-fetch latencies are also given for the fetches made while that sync was running.

Short form (``make test``): N = 10 and 50 closed loop and N = 50 as people,
``RXVAULT_LOAD_SHORT_SECONDS`` (default 4) each.
Asserts zero errors, every patient verified its own block, the audit log holds exactly one
entry per block fetch and login, and the audit chain verifies. Throughput and latency are
printed and written to ``$RXVAULT_LOAD_REPORT`` when set (never asserted: timing asserts are
banned in unit tests).

Long form (``make soak``, marked ``long``):

- ``test_load_long``: N = 10, 50, 200 as people, then N = 10, 50, 200 in a closed loop, for
  ``RXVAULT_LOAD_SECONDS`` (default 60) each;
- ``test_soak``: ``RXVAULT_SOAK_PATIENTS`` (default 50) patients in a closed loop (the most
  requests: the most to leak) for ``RXVAULT_SOAK_SECONDS`` (default 1800) while the agent
  runs a day of changes and a sync in a loop; the RSS of both server processes is sampled
  from ``/proc`` every 5 s and must be stable: over the last 10 minutes (or the last third of
  a shorter soak), the median RSS of the last minute is at most 5 % above the median of the
  first minute of that window. Zero errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxvault.demo._next_day import next_day
from rxvault.server import _audit
from rxvault.server._db import transaction
from rxvault.server.cli import KEEP_ALIVE_SECONDS, MALLOC_ARENAS

from ._load import CLOSED, PEOPLE, LoadResult, RssSampler, Workload, World, run_load

#: Keys added before each N: the full sync that runs during that N's load.
SYNC_SHORT = 200


def _report(name: str, results: list[LoadResult], extra: dict[str, Any] | None = None) -> None:
    for r in results:
        print(f"{name}: {r.line()}")
    target = os.environ.get("RXVAULT_LOAD_REPORT")
    if target:
        path = Path(target)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = {"runs": [r.summary() for r in results], **(extra or {})}
        path.write_text(json.dumps(data, indent=2))


@contextlib.contextmanager
def _world(tmp: Path, *, size: int) -> Iterator[World]:
    with contextlib.ExitStack() as stack:
        yield World(tmp, stack, size=size)


def _check(world: World, results: list[LoadResult], pharmacy_syncs: int) -> None:
    logged = world.server_errors()
    for r in results:
        assert r.errors == [], (
            f"N={r.n}: {len(r.errors)} errors, first: {r.errors[:5]}; servers logged: "
            + "\n".join(logged[:40])
        )
        # Every patient who got a block verified it; in a closed loop every patient got one.
        assert r.patients_verified == r.patients_fetched > 0, (r.patients_verified, r.n)
        if r.workload == "closed":
            assert r.patients_verified == r.n, f"N={r.n}: only {r.patients_verified} verified"
        assert r.blocks > 0
    assert logged == [], "the servers logged:\n" + "\n".join(logged[:40])
    counts = world.audit_counts()
    # One audit entry per block fetch answered and per login: none lost, none doubled.
    assert counts.get("patient.block", 0) == sum(r.blocks for r in results)
    assert counts.get("patient.login", 0) == sum(r.logins for r in results)
    assert counts.get("agent.batch", 0) >= pharmacy_syncs
    with transaction(world.db) as s:
        report = _audit.verify(s, _audit.audit_key(world.pepper))
    assert report.ok, report.problems


def _phase(
    world: World, n: int, seconds: float, keys: int, workload: Workload = CLOSED
) -> LoadResult:
    added = world.add_keys(keys)
    assert added == keys
    sync = world.start_sync()
    try:
        result = run_load(world, n, seconds, sync=sync, workload=workload)
    finally:
        out, _ = sync.communicate(timeout=900)
    assert sync.returncode == 0, out[-2000:]
    return result


@pytest.fixture(autouse=True)
def _as_rxvault_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers keep idle connections as long as ``rxvault serve`` does, and have as many
    malloc arenas (the harness runs uvicorn directly, through ``tests/server_process.py``)."""
    monkeypatch.setenv("UVICORN_TIMEOUT_KEEP_ALIVE", str(KEEP_ALIVE_SECONDS))
    monkeypatch.setenv("MALLOC_ARENA_MAX", str(MALLOC_ARENAS))


def test_load_short(tmp_path: Path) -> None:
    seconds = float(os.environ.get("RXVAULT_LOAD_SHORT_SECONDS", "4"))
    with _world(tmp_path, size=1100) as world:
        world.register_patients(50)
        world.sync()  # the load patients' blocks
        results = [_phase(world, n, seconds, SYNC_SHORT) for n in (10, 50)]
        results.append(_phase(world, 50, seconds, SYNC_SHORT, PEOPLE))
        _report("short", results)
        _check(world, results, pharmacy_syncs=4)


@pytest.mark.long
def test_load_long(tmp_path: Path) -> None:
    """N = 10, 50, 200 as people, then in a closed loop, for ``RXVAULT_LOAD_SECONDS`` (default
    60) each, each during a full sync of ``RXVAULT_LOAD_SYNC_KEYS`` (default 50 per second of
    load) newly registered keys."""
    seconds = float(os.environ.get("RXVAULT_LOAD_SECONDS", "60"))
    keys = int(os.environ.get("RXVAULT_LOAD_SYNC_KEYS", str(int(seconds * 50))))
    with _world(tmp_path, size=int((200 + 6 * keys) * 1.1) + 100) as world:
        world.register_patients(200)
        world.sync()
        results = [_phase(world, n, seconds, keys, PEOPLE) for n in (10, 50, 200)]
        results += [_phase(world, n, seconds, keys, CLOSED) for n in (10, 50, 200)]
        _report("long", results, {"sync_keys_per_phase": keys})
        _check(world, results, pharmacy_syncs=7)


@pytest.mark.long
def test_soak(tmp_path: Path) -> None:
    """``RXVAULT_SOAK_PATIENTS`` (default 50) patients for ``RXVAULT_SOAK_SECONDS`` (default
    1800 = 30 minutes): every minute a day of changes (``next_day``), 100 more keys and a sync,
    under continuous load; server RSS sampled every 5 s must be stable (module docstring)."""
    seconds = float(os.environ.get("RXVAULT_SOAK_SECONDS", "1800"))
    n = int(os.environ.get("RXVAULT_SOAK_PATIENTS", "50"))
    rounds = max(1, int(seconds // 60))
    with _world(tmp_path, size=int((n + 100 * rounds) * 1.1) + 200) as world:
        world.register_patients(n)
        world.sync()
        results: list[LoadResult] = []
        deadline = time.monotonic() + seconds
        with RssSampler(world.pids, interval=5.0) as rss:
            day = 0
            while (left := deadline - time.monotonic()) > 1:
                day += 1
                next_day(world.source, seed=100 + day)
                world.refresh_documents()
                world.add_keys(100)
                sync = world.start_sync()
                results.append(run_load(world, n, min(60.0, left), sync=sync))
                out, _ = sync.communicate(timeout=900)
                assert sync.returncode == 0, out[-2000:]
        window = min(600.0, seconds / 3)
        growth = rss.growth(window, span=min(60.0, window / 3))
        first, last = rss.samples[0][1], rss.samples[-1][1]
        peak = [max(s[1][i] for s in rss.samples) for i in range(len(world.pids))]
        total = _merge(results)
        extra = {
            "seconds": seconds,
            "days": day,
            "rss_mb_first": [round(b / 1e6, 1) for b in first],
            "rss_mb_last": [round(b / 1e6, 1) for b in last],
            "rss_mb_peak": [round(b / 1e6, 1) for b in peak],
            "rss_growth_last_window": [round(g, 4) for g in growth],
            "window_seconds": window,
            # The growth curve: each process's median RSS (MB) per 5 minutes of the soak.
            "rss_mb_per_5_minutes": rss.curve(300.0),
            "total": total.summary(),
        }
        print(f"soak: {json.dumps(extra)}")
        _report("soak", [total], extra)
        _check(world, results, pharmacy_syncs=day + 1)
        assert all(g < 0.05 for g in growth), f"server memory grew: {extra}"


def _merge(results: list[LoadResult]) -> LoadResult:
    total = LoadResult(results[0].n, 0.0, 0, 0, 0, [], [], [], 0.0, 0.0, 0)
    for r in results:
        total.seconds += r.seconds
        total.requests += r.requests
        total.blocks += r.blocks
        total.logins += r.logins
        total.block_ms += r.block_ms
        total.sync_block_ms += r.sync_block_ms
        total.login_ms += r.login_ms
        total.loop_lag_ms += r.loop_lag_ms
        total.errors += r.errors
        total.client_cpu_s += r.client_cpu_s
        total.server_cpu_s += r.server_cpu_s
        total.patients_verified = max(total.patients_verified, r.patients_verified)
        total.patients_fetched = max(total.patients_fetched, r.patients_fetched)
    total.sync_overlap = sum(r.sync_overlap * r.seconds for r in results) / total.seconds
    total.loadavg = sum(r.loadavg for r in results) / len(results)
    return total


def _serve_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``rxvault serve`` needs to start: a migrated SQLite database and a pepper."""
    import base64

    from rxvault.server._db import create_db_engine, migrate

    url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = create_db_engine(url)
    migrate(engine)
    engine.dispose()
    monkeypatch.setenv("RXVAULT_DATABASE_URL", url)
    monkeypatch.setenv("RXVAULT_PEPPER", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("RXVAULT_CONFIG", "")


def test_serve_keeps_idle_connections_longer_than_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (found by this harness): ``rxvault serve`` ran uvicorn with its 5 s
    keep-alive, the same as httpx's idle expiry, and requests sent on a connection the server
    was closing failed ("Server disconnected without sending a response")."""
    import httpx
    import uvicorn
    from click.testing import CliRunner

    from rxvault.server.cli import serve_command

    _serve_settings(tmp_path, monkeypatch)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    result = CliRunner().invoke(serve_command, [])
    assert result.exit_code == 0, result.output
    client_idle = httpx.Limits().keepalive_expiry or 0.0
    assert seen["timeout_keep_alive"] >= max(60, 2 * client_idle)


def test_serve_caps_malloc_arenas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (found by the soak): the ingesting process's memory grew in steps from
    glibc's per-thread malloc arenas; ``rxvault serve`` caps them for itself and its workers,
    unless the operator chose a value."""
    import uvicorn
    from click.testing import CliRunner

    from rxvault.server.cli import serve_command

    _serve_settings(tmp_path, monkeypatch)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert CliRunner().invoke(serve_command, []).exit_code == 0
    assert os.environ["MALLOC_ARENA_MAX"] == str(MALLOC_ARENAS)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert CliRunner().invoke(serve_command, []).exit_code == 0
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
