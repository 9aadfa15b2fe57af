"""Sync statement costs at 100,000 patients, in CPU seconds of this process (medians).

- agent: the leaves from the local state, the Merkle tree and the signed statement;
- server: ``POST /api/v1/agent/statement`` (the server's leaves read from its records, the tree
  rebuilt and compared, the snapshot stored), through the app in this process;
- fetch: ``GET /api/v1/me/block`` of one patient with no statement, with a statement whose tree
  is cached, and with the cache emptied before each request (the first fetch after a restart or
  a new statement in another process): the alternative is the answer without a statement.

``.venv/bin/python bench/bench_statement.py [--patients 100000] [--repeat 5] [--database URL]
[--markdown FILE]`` (``bench/run.py --only statement`` writes its section of ``bench/README.md``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.agent._state import open_state
from rxvault.agent._statement import local_leaves, local_packed
from rxvault.server import Settings, create_app
from rxvault.server import _statement as server_statement
from rxvault.server._admin import Admin
from rxvault.server._db import create_db_engine, migrate, transaction
from rxvault.server._models import Account, Pharmacy, Record
from rxvault.server._models import Session as SessionRow
from rxvault.server._tokens import new_session_token

COOKIE = "__Host-rxvault-session"


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def cpu(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


class Transport(httpx.BaseTransport):
    def __init__(self, app: Any) -> None:
        self._cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._cm.__enter__()
        self._inner = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def run() -> httpx.Response:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._inner.handle_async_request(inner)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return self._portal.call(run)


def _orm_leaves(session: Any, pharmacy_id: int) -> list[fmt.Leaf]:
    """The server's leaves the plain way: an ORM query, then a ``Leaf`` per record."""
    rows = sorted(
        session.execute(
            sa.select(Record.handle, Record.state, Record.version, Record.block_version).where(
                Record.pharmacy_id == pharmacy_id
            )
        ).all(),
        key=lambda r: r[0],
    )
    return [
        fmt.Leaf(handle, version, True)
        if state == "deleted"
        else fmt.Leaf(handle, block_version or version, False)
        for handle, state, version, block_version in rows
    ]


def _seconds(value: float) -> str:
    return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=None)
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    n = args.patients
    key = fmt.generate_pharmacy_key()
    secret = fmt.generate_handle_secret()
    handles = sorted(fmt.patient_handle(secret, f"P{i}") for i in range(n))
    tmp = Path(tempfile.mkdtemp(prefix="rxv-stmt-"))
    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
    print(f"load average at start: {os.getloadavg()}")

    # --- agent
    state = open_state(tmp / "state.db")
    with state.transaction() as c:
        c.executemany(
            "INSERT INTO patients (patient_id, handle, version, server_state) VALUES (?, ?, ?, ?)",
            (
                (f"P{i}", h, 1 + i % 3, "deleted" if i % 50 == 0 else "live")
                for i, h in enumerate(handles)
            ),
        )
    leaves = local_leaves(state)
    packed = local_packed(state)
    t_leaves = cpu(lambda: local_leaves(state), args.repeat)
    t_tree = cpu(lambda: fmt.merkle_tree(leaves), args.repeat)
    t_packed = cpu(lambda: local_packed(state), args.repeat)
    t_tree_packed = cpu(lambda: fmt.merkle_tree_packed(packed), args.repeat)
    print(
        f"agent, {n} leaves: Leaf objects from the state {t_leaves:.3f} s and their tree "
        f"{t_tree:.3f} s; packed leaves from the state {t_packed:.3f} s and their tree "
        f"{t_tree_packed:.3f} s, what a sync uses (CPU, median of {args.repeat})"
    )

    # --- server
    url = args.database or f"sqlite:///{tmp / 'server.db'}"
    engine = create_db_engine(url)
    migrate(engine)
    settings = Settings(database_url=url, pepper=os.urandom(32))
    app = create_app(settings)
    ctx = app.app.state.rxvault  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.UTC)
    with transaction(ctx.db) as s:
        admin = Admin(s, ctx.audit_key, now)
        admin.create_pharmacy("bench", "Bench Pharmacy")
        token, _ = admin.create_token("bench")
    with transaction(ctx.db) as s:
        pharmacy = s.execute(sa.select(Pharmacy)).scalar_one()
        pharmacy.public_key = key.public_bytes()
        pharmacy.key_id = key.pharmacy_id
        pid = pharmacy.id
        rows = [
            {
                "pharmacy_id": pid,
                "handle": leaf.handle,
                "state": "deleted" if leaf.deleted else "live",
                "version": leaf.version,
                "block_version": None if leaf.deleted else leaf.version,
                "envelope": None if leaf.deleted else b"x" * 64,
                "tombstone": b"t" * 64 if leaf.deleted else None,
                "updated_at": now,
            }
            for leaf in leaves
        ]
        for start in range(0, len(rows), 10_000):
            s.execute(sa.insert(Record), rows[start : start + 10_000])
        account = Account(
            pharmacy_id=pid,
            handle=leaves[n // 2].handle,
            username="bench",
            salt=b"s" * 16,
            kdf_memory_kib=1,
            kdf_iterations=1,
            kdf_parallelism=1,
            verifier=b"v" * 32,
            key_bundle=b"k",
            public_key=b"p" * 32,
            binding=b"b" * 32,
            created_at=now,
            password_changed_at=now,
        )
        s.add(account)
        s.flush()
        cookie, token_hash, public_id = new_session_token()
        s.add(
            SessionRow(
                token_hash=token_hash,
                public_id=public_id,
                account_id=account.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + dt.timedelta(days=1),
                address="x",
                user_agent="x",
            )
        )
    http = httpx.Client(transport=Transport(app), base_url="https://portal.test", timeout=600)
    agent = {"Authorization": f"Bearer {token}"}
    patient = {"Cookie": f"{COOKIE}={cookie}"}

    def fetch() -> dict[str, Any]:
        r = http.get("/api/v1/me/block", headers=patient)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    fetch()
    t_none = cpu(fetch, args.repeat * 20)
    seqs = iter(range(1, 10_000))

    def post() -> None:
        data = fmt.make_statement(pharmacy_key=key, seq=next(seqs), as_of=as_of, leaves=leaves)
        r = http.post("/api/v1/agent/statement", json={"statement": b64(data)}, headers=agent)
        assert r.status_code == 200, r.text

    with transaction(ctx.db) as s:
        t_server_leaves = cpu(lambda: _orm_leaves(s, pid), args.repeat)
        assert fmt.pack_leaves(_orm_leaves(s, pid)) == server_statement.server_packed(s, pid)
        t_server_packed = cpu(lambda: server_statement.server_packed(s, pid), args.repeat)
    t_post = cpu(post, args.repeat)
    print(
        f"server ({engine.dialect.name}), {n} records: leaves from the records "
        f"{t_server_leaves:.3f} s; POST /agent/statement (verify, leaves, tree, store) "
        f"{t_post:.3f} s CPU"
    )
    answer = fetch()
    assert answer["proof"] is not None
    t_cached = cpu(fetch, args.repeat * 20)

    def cold() -> None:
        server_statement._cache.clear()
        fetch()

    t_cold = cpu(cold, args.repeat)
    print(
        f"GET /me/block: no statement {t_none * 1000:.2f} ms, statement + proof (tree cached) "
        f"{t_cached * 1000:.2f} ms, cache emptied first {t_cold * 1000:.1f} ms CPU "
        f"(proof of {len(answer['proof']['path'])} hashes)"
    )
    load_end = os.getloadavg()
    print(f"load average at end: {load_end}")
    if args.markdown:
        rows = [
            (
                f"agent: the leaves from its state and their tree ({n:,} leaves)",
                "`Leaf` objects, `merkle_tree`",
                t_leaves + t_tree,
                "packed leaves, `merkle_tree_packed` (what a sync uses)",
                t_packed + t_tree_packed,
            ),
            (
                f"server: the leaves of its records ({n:,} records, {engine.dialect.name})",
                "ORM rows made into `Leaf` objects",
                t_server_leaves,
                "packed from one Core query (what a statement's check uses)",
                t_server_packed,
            ),
            (
                "`GET /me/block`, tree cached",
                "the answer without a statement",
                t_none,
                f"with the statement and a proof of {len(answer['proof']['path'])} hashes",
                t_cached,
            ),
            (
                "`GET /me/block`, first after a new statement or a restart",
                "the answer without a statement",
                t_none,
                "the tree built from the stored snapshot first",
                t_cold,
            ),
        ]
        lines = [
            "## Sync statements (`bench/bench_statement.py`)",
            "",
            f"CPU seconds of this process, median of {args.repeat} (fetches: of "
            f"{args.repeat * 20}); {n:,} patients, one in 50 deleted; the server app in this "
            f"process on {engine.dialect.name}. `POST /agent/statement` (verify, the server's "
            f"leaves, the tree, compare, store the snapshot): **{t_post:.3f} s**.",
            "",
            "| what | alternative | CPU | rxvault | CPU | alternative / rxvault |",
            "|---|---|---:|---|---:|---:|",
        ]
        for what, alt, t_alt, ours, t_ours in rows:
            lines.append(
                f"| {what} | {alt} | {_seconds(t_alt)} | {ours} | {_seconds(t_ours)} | "
                f"{t_alt / t_ours:.2f}x |"
            )
        lines += [
            "",
            "A fetch with a statement costs more than one without (a ratio below 1): the "
            "statement and the proof are what it buys. The first fetch after a new statement "
            "builds the tree once per process.",
            "",
            f"Machine: {os.cpu_count()} CPUs; load average {load_end[0]:.1f} at the end.",
            "",
        ]
        args.markdown.write_text("\n".join(lines))
    http.close()
    app.app.state.engine.dispose()  # type: ignore[attr-defined]
    engine.dispose()
    state.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
