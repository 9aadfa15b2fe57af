"""Server benchmarks: ingest throughput, fetch-own-block load, login cost, each against an
alternative measured in the same run.

- Ingest: blocks per second for batches of 1,000 sealed ~2 KB blocks, per database, through a
  real ``rxvault serve`` process (uvicorn, one worker) over loopback HTTP; against the naive
  way: one ``INSERT`` and one commit per block, straight into the database, nothing verified.
- Fetch: ``GET /api/v1/me/block`` with 50 concurrent logged-in sessions for a fixed time, in
  a closed loop (capacity) and paced (each session a fetch a second: latency below capacity):
  requests per second, p50/p99 latency, errors (must be zero), the server's CPU per request
  (from ``/proc``: the figure that depends least on the machine's load); the closed loop
  against a minimal ASGI app (uvicorn, one worker) answering the same number of bytes of fixed
  JSON to the same load generator: the floor that uvicorn, loopback HTTP and the Python load
  generator set on this machine.
- Login: the client's Argon2id derivation against the server's share of a login (pre-login and
  login requests), and pre-login for known against unknown names.

Patients are registered as the portal does, except that the Argon2id output (auth key, unlock
key) is random: the server only sees the auth key, so its work is the same; it keeps the setup
short.

``.venv/bin/python bench/bench_server.py [--databases sqlite,postgresql] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.client import PatientClient
from rxvault.server._admin import Admin
from rxvault.server._audit import audit_key
from rxvault.server._db import create_db_engine, migrate, session_factory, transaction

URLS = {
    "sqlite": None,
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
COOKIE = "__Host-rxvault-session"
PASSWORD = "benchmark password 1"


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


@contextlib.contextmanager
def scratch_database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    base = sa.make_url(URLS[kind])
    name = f"rxv_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if kind == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


@contextlib.contextmanager
def running_server(url: str, pepper: bytes) -> Iterator[tuple[str, int]]:
    """``rxvault serve`` on ``url``; yields its base URL and pid."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        RXVAULT_DATABASE_URL=url,
        RXVAULT_CONFIG="",
        RXVAULT_PEPPER=base64.b64encode(pepper).decode(),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from rxvault.cli import main; main()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded machine can take a minute to start it
        while True:
            try:
                if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MINIMAL_APP = """
import os

BODY = open(os.environ["BENCH_BODY"], "rb").read()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""


@contextlib.contextmanager
def minimal_app(tmp: Path, body: bytes) -> Iterator[str]:
    """uvicorn (1 worker) serving ``body`` as fixed JSON for every path: the floor."""
    (tmp / "bench_minimal_app.py").write_text(MINIMAL_APP, encoding="utf-8")
    (tmp / "body.json").write_bytes(body)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench_minimal_app:app",
            "--app-dir",
            str(tmp),
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=dict(os.environ, BENCH_BODY=str(tmp / "body.json")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the minimal app did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Setup:
    """A pharmacy with a registered key and an API token, made through the admin layer."""

    def __init__(self, url: str, pepper: bytes, base: str) -> None:
        engine = create_db_engine(url, pool_size=1)
        with transaction(session_factory(engine)) as s:
            admin = Admin(s, audit_key(pepper), dt.datetime.now(dt.UTC))
            admin.create_pharmacy("bench", "Bench Pharmacy")
            self.token, _ = admin.create_token("bench")
        engine.dispose()
        self.url = url
        self.key = fmt.generate_pharmacy_key()
        self.http = httpx.Client(
            base_url=base, timeout=120, headers={"Authorization": f"Bearer {self.token}"}
        )
        r = self.http.put(
            "/api/v1/agent/pharmacy-key", json={"public_key": b64(self.key.public_bytes())}
        )
        r.raise_for_status()
        self.secret = fmt.generate_handle_secret()

    def upload(self, blocks: list[bytes]) -> float:
        bid = fmt.new_batch_id()
        data = fmt.make_batch(
            pharmacy_key=self.key,
            batch_id=bid,
            blocks=blocks,
            tombstones=[],
            created_at=dt.datetime.now(dt.UTC),
        )
        start = time.perf_counter()
        r = self.http.put(
            f"/api/v1/agent/batches/{bid}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        elapsed = time.perf_counter() - start
        r.raise_for_status()
        return elapsed


def document(i: int) -> bytes:
    rng = secrets.token_hex(1000)  # a ~2 KB document (the format pads the sealed block)
    return fmt.canonical_json({"patient": f"P{i}", "notes": rng})


def bench_ingest(setup: Setup, batches: int, size: int) -> dict[str, float]:
    _, recipient = fmt.generate_patient_keypair()
    now = dt.datetime.now(dt.UTC)
    times = []
    envelope_bytes = 0
    for b in range(batches):
        blocks = [
            fmt.seal_block(
                document(i),
                pharmacy_key=setup.key,
                handle=fmt.patient_handle(setup.secret, f"B{b}-{i}"),
                version=1,
                as_of=now,
                recipient_public_key=recipient,
            )
            for i in range(size)
        ]
        envelope_bytes = sum(len(x) for x in blocks) // len(blocks)
        times.append(setup.upload(blocks))
    naive = naive_ingest(setup.url, blocks)
    return {
        "blocks_per_s": size / statistics.median(times),
        "batch_s": statistics.median(times),
        "block_bytes": envelope_bytes,
        "naive_blocks_per_s": naive,
    }


def naive_ingest(url: str, blocks: list[bytes]) -> float:
    """The alternative: each block straight into a table, one INSERT and one commit per block,
    nothing verified (the engine settings are rxvault's: WAL and synchronous=FULL on SQLite)."""
    engine = create_db_engine(url, pool_size=1)
    table = sa.Table(
        "bench_naive_blocks",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("handle", sa.String(128), unique=True),
        sa.Column("version", sa.BigInteger),
        sa.Column("envelope", sa.LargeBinary(length=2**24)),
    )
    table.create(engine)
    try:
        start = time.perf_counter()
        for i, block in enumerate(blocks):
            with engine.begin() as conn:
                conn.execute(table.insert().values(handle=f"N{i}", version=1, envelope=block))
        elapsed = time.perf_counter() - start
    finally:
        table.drop(engine)
        engine.dispose()
    return len(blocks) / elapsed


def enroll_one(setup: Setup, handle: str) -> fmt.EnrollmentCode:
    code = fmt.new_enrollment_code()
    sec = fmt.derive_enrollment(code)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    setup.http.post(
        "/api/v1/agent/enrollments",
        json={
            "enrollments": [
                {
                    "lookup_id": sec.lookup_id,
                    "handle": handle,
                    "pin_tag": b64(fmt.pin_tag(code, setup.key.public_bytes())),
                    "expires_at": expires.isoformat(),
                }
            ]
        },
    ).raise_for_status()
    return code


def register_patients(setup: Setup, base: str, count: int) -> list[str]:
    """Register ``count`` patients with published blocks; returns their session cookies."""
    cookies = []
    now = dt.datetime.now(dt.UTC)
    http = httpx.Client(base_url=base, timeout=60)
    for i in range(count):
        handle = fmt.patient_handle(setup.secret, f"F{i}")
        code = enroll_one(setup, handle)
        sec = fmt.derive_enrollment(code)
        r = http.post("/api/v1/registration/start", json={"lookup_id": sec.lookup_id})
        r.raise_for_status()
        start = r.json()
        private, public = fmt.generate_patient_keypair()
        bundle = fmt.wrap_key_bundle(
            unlock_key=os.urandom(32),
            server_share=unb64(start["server_share"]),
            account=f"bench{i}",
            patient_private_key=private,
            pharmacy_public_key=setup.key.public_bytes(),
        )
        r = http.post(
            "/api/v1/registration",
            json={
                "lookup_id": sec.lookup_id,
                "username": f"bench{i}",
                "kdf": start["kdf"],
                "auth_key": b64(os.urandom(32)),
                "public_key": b64(public),
                "binding": b64(fmt.binding_mac(sec.binding_key, handle, public)),
                "key_bundle": b64(bundle),
            },
        )
        r.raise_for_status()
        cookies.append(r.cookies[COOKIE] if COOKIE in r.cookies else _cookie(r))
        block = fmt.seal_block(
            document(i),
            pharmacy_key=setup.key,
            handle=handle,
            version=1,
            as_of=now,
            recipient_public_key=public,
        )
        setup.upload([block])
    http.close()
    return cookies


def _cookie(r: httpx.Response) -> str:
    for header in r.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE:
            return rest.split(";", 1)[0]
    raise RuntimeError("no session cookie")


def unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


async def _load(
    base: str, cookies: list[str], seconds: float, interval: float
) -> tuple[list[float], int]:
    """Each session fetches its block in a loop: back to back (``interval`` 0, a closed loop:
    capacity) or one fetch every ``interval`` seconds (an open load at a fixed rate)."""
    latencies: list[float] = []
    errors = 0
    # One client (connection pool) per session, as each patient has a browser: with one pool
    # for all, httpcore can close a connection it has handed to a queued request
    # (tests/reliability/_load.py). Idle connections are dropped before the server's keep-alive.
    limits = httpx.Limits(max_connections=2, keepalive_expiry=30.0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, limits=limits, timeout=30)
            )
            for _ in cookies
        ]
        stop = time.perf_counter() + seconds

        async def worker(http: httpx.AsyncClient, cookie: str, offset: float) -> None:
            nonlocal errors
            headers = {"Cookie": f"{COOKIE}={cookie}"}
            due = time.perf_counter() + offset
            while True:  # at least one fetch per session
                if interval:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                start = time.perf_counter()
                r = await http.get("/api/v1/me/block", headers=headers)
                latencies.append(time.perf_counter() - start)
                if r.status_code != 200 or r.json()["state"] != "live":
                    errors += 1
                due = due + interval if interval else time.perf_counter()
                if due >= stop:
                    break

        await asyncio.gather(
            *(
                worker(h, c, interval * i / len(cookies))
                for i, (h, c) in enumerate(zip(clients, cookies, strict=True))
            )
        )
    return latencies, errors


def bench_fetch(
    base: str, cookies: list[str], seconds: float, *, interval: float = 0.0, pid: int | None = None
) -> dict[str, float]:
    """Requests per second, p50/p99 and errors; with ``pid``, the server's CPU per request."""
    cpu0 = cpu_seconds(pid) if pid else float("nan")
    start = time.perf_counter()
    latencies, errors = asyncio.run(_load(base, cookies, seconds, interval))
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds(pid) - cpu0) if pid else float("nan")
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "requests": len(latencies),
        "errors": errors,
        "server_cpu_ms": cpu * 1000 / max(len(latencies), 1),
    }


def bench_login(setup: Setup, base: str, repeat: int) -> dict[str, float]:
    client = PatientClient(base)
    code = enroll_one(setup, fmt.patient_handle(setup.secret, "login"))
    client.register(code.text, "benchlogin", PASSWORD)  # with the real Argon2id
    pre = client.http.post("/api/v1/prelogin", json={"username": "benchlogin"}).json()
    salt = base64.urlsafe_b64decode(pre["salt"] + "==")
    params = fmt.KdfParams.from_dict(pre["kdf"])
    kdf_times, server_times, known, unknown = [], [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        keys = fmt.derive_client_keys(PASSWORD, salt, params)
        kdf_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        client.http.post("/api/v1/prelogin", json={"username": "benchlogin"}).raise_for_status()
        r = client.http.post(
            "/api/v1/login", json={"username": "benchlogin", "auth_key": b64(keys.auth_key)}
        )
        server_times.append(time.perf_counter() - start)
        r.raise_for_status()
    for _ in range(repeat * 5):
        for name, sink in (("benchlogin", known), (f"nobody{secrets.token_hex(3)}", unknown)):
            start = time.perf_counter()
            client.http.post("/api/v1/prelogin", json={"username": name}).raise_for_status()
            sink.append(time.perf_counter() - start)
    client.close()
    return {
        "kdf_ms": statistics.median(kdf_times) * 1000,
        "server_ms": statistics.median(server_times) * 1000,
        "prelogin_known_ms": statistics.median(known) * 1000,
        "prelogin_unknown_ms": statistics.median(unknown) * 1000,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="paced fetch: seconds between a session's"
    )
    parser.add_argument("--logins", type=int, default=5)
    parser.add_argument("--markdown", type=Path, default=None)
    args, _ = parser.parse_known_args(argv)
    rows_ingest, rows_fetch, rows_paced, rows_login = [], [], [], []
    baseline: dict[str, float] | None = None
    for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
        pepper = os.urandom(32)
        with tempfile.TemporaryDirectory() as tmp, scratch_database(kind, Path(tmp)) as url:
            engine = create_db_engine(url, pool_size=1)
            migrate(engine)
            engine.dispose()
            with running_server(url, pepper) as (base, pid):
                setup = Setup(url, pepper, base)
                print(f"{kind}: ingest …", file=sys.stderr, flush=True)
                ingest = bench_ingest(setup, args.batches, args.batch_size)
                rows_ingest.append((kind, ingest))
                print(
                    f"{kind}: registering {args.sessions} patients …", file=sys.stderr, flush=True
                )
                cookies = register_patients(setup, base, args.sessions)
                print(f"{kind}: fetch load …", file=sys.stderr, flush=True)
                rows_fetch.append((kind, bench_fetch(base, cookies, args.seconds, pid=pid)))
                paced = bench_fetch(base, cookies, args.seconds, interval=args.interval, pid=pid)
                rows_paced.append((kind, paced))
                if baseline is None:
                    body = httpx.get(
                        base + "/api/v1/me/block", headers={"Cookie": f"{COOKIE}={cookies[0]}"}
                    ).content
                    print("minimal ASGI app: fetch load …", file=sys.stderr, flush=True)
                    with (
                        tempfile.TemporaryDirectory() as btmp,
                        minimal_app(Path(btmp), body) as bbase,
                    ):
                        baseline = bench_fetch(bbase, cookies, args.seconds)
                rows_login.append((kind, bench_login(setup, base, args.logins)))
                setup.http.close()
    lines = [
        "## Server (`bench/bench_server.py`)",
        "",
        f"One `rxvault serve` process (uvicorn, 1 worker) on loopback HTTP, on a "
        f"{os.cpu_count()}-core machine shared with other work; the load generator runs on the "
        "same machine. Reproduce: `.venv/bin/python bench/bench_server.py`.",
        "",
        f"**Ingest** ({args.batches} batches of {args.batch_size} blocks sealed from ~2 KB "
        "documents, padded by the format; median batch; signatures of the batch and of every "
        "block verified by the server):",
        "",
        "| database | block size | seconds per batch | blocks per second | naive: INSERT + "
        "commit per block, nothing verified | rxvault / naive |",
        "|---|---|---|---|---|---|",
    ]
    for kind, r in rows_ingest:
        lines.append(
            f"| {kind} | {r['block_bytes']:.0f} B | {r['batch_s']:.2f} | {r['blocks_per_s']:,.0f} "
            f"| {r['naive_blocks_per_s']:,.0f} "
            f"| {r['blocks_per_s'] / r['naive_blocks_per_s']:.1f}x |"
        )
    lines += [
        "",
        f"**Fetch own block** ({args.sessions} concurrent sessions in a closed loop, "
        f"{args.seconds:.0f} s; each request reads the session and the block without a lock, "
        "commits its audit entry (grouped with concurrent ones) and returns the block as JSON); "
        "the minimal ASGI app answers the same bytes to the same load generator, so its row is "
        "what uvicorn, loopback HTTP and the Python load generator cost on this machine:",
        "",
        "| server | requests | requests per second | p50 | p99 | p99 vs minimal app "
        "| server CPU per request | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, r in rows_fetch + ([("minimal ASGI app", baseline)] if baseline else []):
        ratio = f"{r['p99_ms'] / baseline['p99_ms']:.1f}x" if baseline else "-"
        lines.append(
            f"| {kind} | {r['requests']:.0f} | {r['rps']:,.0f} | {r['p50_ms']:.1f} ms | "
            f"{r['p99_ms']:.1f} ms | {ratio} | {r['server_cpu_ms']:.2f} ms | {r['errors']:.0f} |"
        )
    lines += [
        "",
        f"**Fetch own block, paced** (the same {args.sessions} sessions, each fetching once every "
        f"{args.interval:g} s, starts spread evenly: an offered load of "
        f"{args.sessions / args.interval:.0f} requests per second, well under capacity, so the "
        "latency is the server's answer time rather than queueing):",
        "",
        "| server | requests | requests per second | p50 | p99 | server CPU per request | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, r in rows_paced:
        lines.append(
            f"| {kind} | {r['requests']:.0f} | {r['rps']:,.0f} | {r['p50_ms']:.1f} ms | "
            f"{r['p99_ms']:.1f} ms | {r['server_cpu_ms']:.2f} ms | {r['errors']:.0f} |"
        )
    lines += [
        "",
        "**Login cost** (median): the client's Argon2id (m = 64 MiB, t = 3, p = 1; Python "
        "`cryptography`) against the server's pre-login + login requests; and pre-login for an "
        "existing against an unknown name (the answers must not tell them apart):",
        "",
        "| database | client KDF | server (pre-login + login) | client KDF / server | "
        "pre-login known | pre-login unknown |",
        "|---|---|---|---|---|---|",
    ]
    for kind, r in rows_login:
        lines.append(
            f"| {kind} | {r['kdf_ms']:.0f} ms | {r['server_ms']:.1f} ms | "
            f"{r['kdf_ms'] / r['server_ms']:.0f}x | "
            f"{r['prelogin_known_ms']:.2f} ms | {r['prelogin_unknown_ms']:.2f} ms |"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += [
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; measured "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC (load average at the end {load:.1f}: "
        "other work on the machine slows every number here).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
