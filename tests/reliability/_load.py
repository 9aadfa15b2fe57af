"""Helpers of the load and soak harness (tests/reliability/test_load.py).

A :class:`World` is PostgreSQL, two ``uvicorn`` processes of the server on it (same database,
same pepper, different ports), the demo pharmacy, an agent home registered with process A, and
``patients`` registered patients whose blocks the agent has published. :meth:`World.add_keys`
enrolls and registers more patients (keys inserted with real binding MACs, as
``bench/bench_sync.py`` does) so that the next ``rxvault agent sync`` is a full sync of them;
:meth:`World.start_sync` runs it as its own process against process A.

:func:`run_load` is the load generator (asyncio, one ``httpx.AsyncClient`` per virtual
patient, in a thread of the test process): ``n`` virtual patients behaving as a
:class:`Workload` says (people with think times, or a closed loop without them): pre-login,
login, key bundle (unwrapped), block fetches, logout. The patients alternate between the two
processes. Every block is checked: the patient's own handle, the pharmacy signature (the key
pinned in the bundle), decryption, and a plaintext equal to the agent's document for that
patient.

Registration skips Argon2id: the auth key and unlock key are random stand-ins for what the
browser derives (the server only ever sees the auth key, so it cannot tell, and does the same
work); this keeps the setup of 200 patients to seconds. The KDF itself is covered by the
server, client and browser tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import http.cookiejar
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from agent.conftest import scratch_database
from rxvault import format as fmt
from rxvault.agent import AgentContext, enroll, init_home, prepare, read_source
from rxvault.demo import generate
from rxvault.server._admin import Admin
from rxvault.server._audit import audit_key
from rxvault.server._db import create_db_engine, migrate, session_factory, transaction
from rxvault.server._models import AuditEntry, Enrollment, KeyRegistration, Pharmacy
from server_process import start_server

COOKIE = "__Host-rxvault-session"
JSON = {"Accept": "application/json", "Content-Type": "application/json"}


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclasses.dataclass
class Patient:
    pid: str
    username: str
    handle: str
    auth_key: bytes
    unlock_key: bytes
    private_key: bytes
    #: SHA-256 of every document the agent made for this patient (one per day in the soak).
    documents: set[str] = dataclasses.field(default_factory=set)
    #: The patient left the pharmacy's published set (a day of the soak): a deletion is right.
    gone: bool = False


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class World:
    def __init__(self, tmp: Path, stack: contextlib.ExitStack, *, size: int) -> None:
        self.tmp = tmp
        self.db_url = stack.enter_context(scratch_database("postgresql", tmp))
        self.pepper = os.urandom(32)
        engine = create_db_engine(self.db_url, pool_size=2)
        migrate(engine)
        self.db = session_factory(engine)
        stack.callback(engine.dispose)
        with transaction(self.db) as s:
            admin = Admin(s, audit_key(self.pepper), dt.datetime.now(dt.UTC))
            admin.create_pharmacy("main-street", "Main Street Pharmacy")
            token, _ = admin.create_token("main-street")
        self.logs = [tmp / f"server-{name}.log" for name in "AB"]
        # Output kept in the logs (a server that logs an error fails the harness), pids known
        # (for RSS and CPU).
        started = [
            stack.enter_context(start_server(self.db_url, self.pepper, log)) for log in self.logs
        ]
        self.urls = [server.url for server in started]
        self.pids = [server.pid for server in started]
        self.source = tmp / "pharmacy"
        generate(self.source, patients=size, seed=11)
        self.home = tmp / "agent"
        init_home(
            self.home,
            pharmacy_name="Main Street Pharmacy",
            server_url=self.urls[0],
            source_dir=self.source,
            token=token,
        )
        self.agent = AgentContext.load(self.home)
        self.taken: set[str] = set()
        self.patients: list[Patient] = []
        self.http = httpx.Client(timeout=60, cookies=NoCookies())
        stack.callback(self.http.close)

    def _documents(self) -> Any:
        mapping = self.agent.mapping()
        return prepare(mapping, read_source(mapping, self.source), "Main Street Pharmacy")

    def _take(self, count: int) -> list[str]:
        """``count`` patients not enrolled yet, among those published now (a day of changes
        removes some)."""
        current = self._documents().patient_ids
        fresh = [pid for pid in current if pid not in self.taken][:count]
        if len(fresh) < count:
            raise AssertionError(f"the demo pharmacy has only {len(current)} patients")
        self.taken.update(fresh)
        return fresh

    def register_patients(self, count: int) -> None:
        """Enroll ``count`` patients and register each through the patient API (alternating
        processes), as the portal would, with stand-ins for the Argon2id output."""
        made = enroll(self.agent, self._take(count), days=30)
        for i, m in enumerate(made):
            base = self.urls[i % 2]
            code = fmt.parse_enrollment_code(m.code_text)
            sec = fmt.derive_enrollment(code)
            start = self._post(base, "/api/v1/registration/start", {"lookup_id": sec.lookup_id})
            pharmacy_key = unb64(start["pharmacy"]["public_key"])
            fmt.verify_pin_tag(code, pharmacy_key, unb64(start["pin_tag"]))
            username = f"load{len(self.patients):05d}"
            auth_key, unlock_key = os.urandom(32), os.urandom(32)
            private_key, public_key = fmt.generate_patient_keypair()
            bundle = fmt.wrap_key_bundle(
                unlock_key=unlock_key,
                server_share=unb64(start["server_share"]),
                account=username,
                patient_private_key=private_key,
                pharmacy_public_key=pharmacy_key,
            )
            handle = start["handle"]
            self._post(
                base,
                "/api/v1/registration",
                {
                    "lookup_id": sec.lookup_id,
                    "username": username,
                    "kdf": start["kdf"],
                    "auth_key": b64(auth_key),
                    "public_key": b64(public_key),
                    "binding": b64(fmt.binding_mac(sec.binding_key, handle, public_key)),
                    "key_bundle": b64(bundle),
                },
            )
            self.patients.append(
                Patient(m.patient_id, username, handle, auth_key, unlock_key, private_key)
            )
        self.refresh_documents()

    def refresh_documents(self) -> None:
        """Add the agent's current document of every load patient to what they may see."""
        docs = self._documents()
        by_pid = {p.pid: p for p in self.patients}
        indices = {pid: docs.index_of(pid) for pid in by_pid}
        for pid, index in indices.items():
            by_pid[pid].gone = by_pid[pid].gone or index is None
        for index, data in docs.build([i for i in indices.values() if i is not None]):
            by_pid[docs.patient_ids[index]].documents.add(hashlib.sha256(data).hexdigest())

    def _post(self, base: str, path: str, body: dict[str, Any]) -> Any:
        r = self.http.post(base + path, json=body, headers=JSON)
        if r.status_code >= 300:
            raise AssertionError(f"{path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def add_keys(self, count: int) -> int:
        """Enroll ``count`` more patients and put their keys in the key directory (real binding
        MACs, no accounts), so that the next sync seals and uploads a block for each."""
        made = enroll(self.agent, self._take(count), days=30)
        binding_keys = {}
        for m in made:
            sec = fmt.derive_enrollment(fmt.parse_enrollment_code(m.code_text))
            binding_keys[sec.lookup_id] = sec.binding_key
        now = dt.datetime.now(dt.UTC)
        with transaction(self.db) as s:
            pharmacy = s.execute(sa.select(Pharmacy).with_for_update()).scalar_one()
            rows = s.execute(
                sa.select(Enrollment.lookup_id, Enrollment.handle).where(
                    Enrollment.lookup_id.in_(list(binding_keys))
                )
            ).all()
            values = []
            for lookup_id, handle in rows:
                _, public = fmt.generate_patient_keypair()
                pharmacy.directory_seq += 1
                values.append(
                    {
                        "pharmacy_id": pharmacy.id,
                        "seq": pharmacy.directory_seq,
                        "handle": handle,
                        "lookup_id": lookup_id,
                        "public_key": public,
                        "binding": fmt.binding_mac(binding_keys[lookup_id], handle, public),
                        "registered_at": now,
                    }
                )
            s.execute(sa.insert(KeyRegistration), values)
            s.execute(
                sa.update(Enrollment)
                .where(Enrollment.lookup_id.in_(list(binding_keys)))
                .values(used_at=now)
            )
        return len(values)

    def start_sync(self) -> subprocess.Popen[str]:
        env = dict(os.environ, RXVAULT_AGENT_HOME=str(self.home))
        return subprocess.Popen(
            [sys.executable, "-m", "rxvault.agent", "sync"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def sync(self) -> str:
        proc = self.start_sync()
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"agent sync failed ({proc.returncode}): {out[-2000:]}")
        return out

    def server_errors(self) -> list[str]:
        """Lines the servers logged at warning level or above (nothing is expected)."""
        lines = []
        for log in self.logs:
            lines += [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        return lines

    def audit_counts(self) -> dict[str, int]:
        with transaction(self.db) as s:
            rows = s.execute(
                sa.select(AuditEntry.action, sa.func.count())
                .where(AuditEntry.outcome == "ok")
                .group_by(AuditEntry.action)
            ).all()
        return {a: int(n) for a, n in rows}


class NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing: every virtual patient sends its own cookie header."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


@dataclasses.dataclass
class LoadResult:
    n: int
    seconds: float
    requests: int
    blocks: int
    logins: int
    block_ms: list[float]
    login_ms: list[float]
    errors: list[str]
    client_cpu_s: float
    server_cpu_s: float
    patients_verified: int
    #: Patients who got at least one block (people who arrived late in a short run may not).
    patients_fetched: int = 0
    sync_overlap: float = 0.0
    workload: str = "closed"
    loadavg: float = 0.0
    loop_lag_ms: list[float] = dataclasses.field(default_factory=list)
    #: ``perf_counter`` at the start of each block fetch (same order as ``block_ms``).
    block_at: list[float] = dataclasses.field(default_factory=list)
    #: The block fetches that started while the agent's sync was running.
    sync_block_ms: list[float] = dataclasses.field(default_factory=list)
    started: float = 0.0
    loadavg_start: float = 0.0

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "workload": self.workload,
            "seconds": round(self.seconds, 1),
            "requests_per_s": round(self.requests / self.seconds, 1),
            "blocks_per_s": round(self.blocks / self.seconds, 1),
            "block_p50_ms": round(self.pct(self.block_ms, 0.5), 1),
            "block_p99_ms": round(self.pct(self.block_ms, 0.99), 1),
            "block_max_ms": round(max(self.block_ms, default=float("nan")), 1),
            # Only the fetches that started while the agent's sync was running.
            "block_during_sync": len(self.sync_block_ms),
            "block_during_sync_p50_ms": round(self.pct(self.sync_block_ms, 0.5), 1),
            "block_during_sync_p99_ms": round(self.pct(self.sync_block_ms, 0.99), 1),
            "login_p50_ms": round(self.pct(self.login_ms, 0.5), 1),
            "login_p99_ms": round(self.pct(self.login_ms, 0.99), 1),
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "blocks": self.blocks,
            "logins": self.logins,
            "client_cpu_ms_per_request": round(self.client_cpu_s * 1000 / max(self.requests, 1), 2),
            "server_cpu_ms_per_request": round(self.server_cpu_s * 1000 / max(self.requests, 1), 2),
            "patients_verified": self.patients_verified,
            "patients_fetched": self.patients_fetched,
            "sync_overlap": round(self.sync_overlap, 2),
            # Cores the two servers and the load generator actually got: on a shared machine
            # this, not the code, often sets the latency.
            "server_cores_used": round(self.server_cpu_s / self.seconds, 2),
            "client_cores_used": round(self.client_cpu_s / self.seconds, 2),
            "loadavg_1min_at_start": round(self.loadavg_start, 1),
            "loadavg_1min_at_end": round(self.loadavg, 1),
            "client_loop_lag_p99_ms": round(self.pct(self.loop_lag_ms, 0.99), 1),
            "client_loop_lag_max_ms": round(max(self.loop_lag_ms, default=float("nan")), 1),
        }

    def line(self) -> str:
        s = self.summary()
        return (
            f"N={s['n']} {s['workload']}: {s['requests_per_s']} req/s "
            f"({s['blocks_per_s']} blocks/s), block "
            f"p50 {s['block_p50_ms']} ms p99 {s['block_p99_ms']} ms max {s['block_max_ms']} ms "
            f"(during the sync: {s['block_during_sync']} fetches, p50 "
            f"{s['block_during_sync_p50_ms']} ms p99 {s['block_during_sync_p99_ms']} ms), "
            f"login p50 {s['login_p50_ms']} ms p99 {s['login_p99_ms']} ms, errors "
            f"{s['errors']}; CPU per request: load generator {s['client_cpu_ms_per_request']} "
            f"ms, servers {s['server_cpu_ms_per_request']} ms; cores used: servers "
            f"{s['server_cores_used']}, load generator {s['client_cores_used']}; sync overlap "
            f"{s['sync_overlap']}; load average {s['loadavg_1min_at_start']} -> "
            f"{s['loadavg_1min_at_end']}; load generator "
            f"loop lag p99 {s['client_loop_lag_p99_ms']} ms max {s['client_loop_lag_max_ms']} ms"
        )


class _Verifier:
    """Checks one patient's answers; decrypts only envelopes not seen before."""

    def __init__(self, patient: Patient) -> None:
        self.p = patient
        self.seen: dict[str, int] = {}
        self.pharmacy_key: bytes | None = None
        self.ok = False
        self.fetched = False

    def bundle(self, body: dict[str, Any]) -> None:
        keys = fmt.unwrap_key_bundle(
            unb64(body["key_bundle"]),
            unlock_key=self.p.unlock_key,
            server_share=unb64(body["server_share"]),
            account=body["username"],
        )
        if keys.patient_private_key != self.p.private_key or body["handle"] != self.p.handle:
            raise AssertionError("the key bundle is not this patient's")
        self.pharmacy_key = keys.pharmacy_public_key

    def block(self, body: dict[str, Any]) -> None:
        self.fetched = True
        if body["handle"] != self.p.handle:
            raise AssertionError("another patient's block")
        if body["state"] == "deleted" and self.p.gone:
            return
        if body["state"] != "live":
            raise AssertionError(f"block state {body['state']!r}, expected live")
        envelope = body["envelope"]
        if envelope in self.seen:
            return
        assert self.pharmacy_key is not None
        opened = fmt.open_block(
            unb64(envelope),
            recipient_private_key=self.p.private_key,
            pharmacy_public_key=self.pharmacy_key,
            expected_handle=self.p.handle,
            min_version=max(self.seen.values(), default=0),
        )
        if hashlib.sha256(opened.document).hexdigest() not in self.p.documents:
            raise AssertionError("the decrypted document is not the agent's for this patient")
        self.seen[envelope] = opened.header.version
        self.ok = True


@dataclasses.dataclass(frozen=True)
class Workload:
    """How each virtual patient behaves.

    ``closed``: a closed loop without think time (pre-login, login, key bundle, ``reads`` block
    fetches, logout, again at once): every patient always has a request in flight, so this
    measures capacity (throughput at saturation), and its latencies are queueing, mostly in the
    load generator itself on this machine.

    ``people``: patients as people (the realistic workload, where the latency target applies).
    A visit is pre-login, login, key bundle, a block fetch; then the patient reads for a think
    time and then, with probability ``1 - 1 / reads_mean``, fetches it again (a reload, a new
    tab), else logs out; after a think time the next visit starts (the next
    patient takes the place: N stays the number of patients using the portal at once). Think
    times are log-normal, median ``think_median`` seconds, shape ``think_sigma``, cut to
    [``think_min``, ``think_max``] (median 3 s, sigma 1: mean 4.9 s, 90 % between 0.6 and 16 s);
    the patients arrive at random moments over the first ``think_median`` seconds.
    """

    name: str
    reads_mean: float = 5.0
    think_median: float = 0.0
    think_sigma: float = 1.0
    think_min: float = 0.2
    think_max: float = 60.0

    def think(self, rng: random.Random) -> float:
        if self.think_median <= 0:
            return 0.0
        t = rng.lognormvariate(math.log(self.think_median), self.think_sigma)
        return min(self.think_max, max(self.think_min, t))


CLOSED = Workload("closed")
PEOPLE = Workload(
    "people",
    reads_mean=3.0,
    think_median=float(os.environ.get("RXVAULT_LOAD_THINK_MEDIAN", "3")),
)


class _Client:
    """One virtual patient's requests, timed, with what failed named (the step, the cause chain,
    whether the connection was new or reused, and the last transport event seen)."""

    def __init__(
        self, http: httpx.AsyncClient, base: str, verifier: _Verifier, result: LoadResult
    ) -> None:
        self.http = http
        self.base = base
        self.v = verifier
        self.result = result
        self.cookie: dict[str, str] = {}
        self.events: list[str] = []

    async def _trace(self, name: str, info: dict[str, Any]) -> None:
        self.events.append(name)

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.events = []
        r = await self.http.request(
            method, self.base + path, extensions={"trace": self._trace}, **kwargs
        )
        self.result.requests += 1
        r.raise_for_status()
        return r

    async def login(self) -> None:
        p = self.v.p
        t0 = time.perf_counter()
        await self.call("POST", "/api/v1/prelogin", json={"username": p.username}, headers=JSON)
        r = await self.call(
            "POST",
            "/api/v1/login",
            json={"username": p.username, "auth_key": b64(p.auth_key)},
            headers=JSON,
        )
        token = r.cookies.get(COOKIE) or _cookie(r)
        self.cookie = {"Cookie": f"{COOKIE}={token}", "Accept": "application/json"}
        r = await self.call("GET", "/api/v1/me/key-bundle", headers=self.cookie)
        self.v.bundle(r.json())
        self.result.login_ms.append((time.perf_counter() - t0) * 1000)
        self.result.logins += 1

    async def block(self) -> None:
        t0 = time.perf_counter()
        r = await self.call("GET", "/api/v1/me/block", headers=self.cookie)
        elapsed = (time.perf_counter() - t0) * 1000
        self.v.block(r.json())
        self.result.block_ms.append(elapsed)
        self.result.block_at.append(t0)
        self.result.blocks += 1

    async def logout(self) -> None:
        await self.call("POST", "/api/v1/logout", json={}, headers={**JSON, **self.cookie})

    def failed(self, step: str, exc: BaseException, t0: float) -> None:
        causes = []
        e: BaseException | None = exc
        while e is not None and len(causes) < 4:
            causes.append(f"{type(e).__name__}: {str(e)[:120]}".rstrip(": "))
            e = e.__cause__ or e.__context__
        connection = "new" if "connection.connect_tcp.complete" in self.events else "reused"
        last = self.events[-1] if self.events else "none"
        self.result.errors.append(
            f"{self.v.p.username} {step}: {' <- '.join(causes)} (connection {connection}, last "
            f"event {last}; after {time.perf_counter() - t0:.1f} s, at "
            f"{t0 - self.result.started:.1f} s)"
        )


async def _patient_loop(
    client: _Client, stop: float, workload: Workload, rng: random.Random
) -> None:
    async def pause() -> bool:
        """A think time (cut at the end of the run); False when the run is over."""
        left = stop - time.perf_counter()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, workload.think(rng)))
        return time.perf_counter() < stop

    if workload.think_median > 0:  # arrivals spread over the first seconds, not all at once
        await asyncio.sleep(min(rng.uniform(0, workload.think_median), stop - time.perf_counter()))
    step = ""
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        try:
            step = "login"
            await client.login()
            reads = 0
            while True:
                step = "block"
                t0 = time.perf_counter()
                await client.block()
                reads += 1
                if not await pause():
                    break
                if workload.think_median > 0:
                    if rng.random() < 1 / workload.reads_mean:
                        break
                elif reads >= workload.reads_mean:
                    break
            step = "logout"
            t0 = time.perf_counter()
            await client.logout()
        except Exception as exc:  # every failure is counted and named, never hidden
            client.failed(step, exc, t0)
            await asyncio.sleep(0.05)
        if workload.think_median > 0:
            await pause()


async def _lag_monitor(stop: float, result: LoadResult) -> None:
    """How late the load generator's event loop wakes up: when it is the bottleneck (too little
    CPU for it), every latency it measures includes this."""
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        await asyncio.sleep(0.1)
        result.loop_lag_ms.append((time.perf_counter() - t0 - 0.1) * 1000)


def _cookie(r: httpx.Response) -> str:
    for header in r.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == COOKIE:
            return rest.split(";", 1)[0]
    raise AssertionError("login set no session cookie")


def _run_in_own_thread(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())`` in a thread of its own: in a full test run the browser tests
    leave an event loop running in the main thread, where ``asyncio.run`` refuses to start."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the caller's thread
            failures.append(exc)

    thread = threading.Thread(target=target, name="load-generator")
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def run_load(
    world: World,
    n: int,
    seconds: float,
    *,
    workload: Workload = CLOSED,
    sync: subprocess.Popen[str] | None = None,
    seed: int = 0,
) -> LoadResult:
    """``n`` patients (the first ``n`` registered) for ``seconds``, behaving as ``workload``
    says; see the module docstring."""
    patients = world.patients[:n]
    if len(patients) < n:
        raise AssertionError(f"only {len(world.patients)} patients are registered")
    result = LoadResult(n, 0.0, 0, 0, 0, [], [], [], 0.0, 0.0, 0, workload=workload.name)
    result.loadavg_start = os.getloadavg()[0]
    verifiers = [_Verifier(p) for p in patients]
    cpu0 = sum(cpu_seconds(pid) for pid in world.pids)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    overlap = _Overlap(sync)

    async def main() -> None:
        # One client, with its own connection pool, per patient (as each patient has a
        # browser): a patient's requests never share a pool with another's. With one pool for
        # all, requests failed with ReadError at N = 200 (found by this harness): httpcore
        # 1.0.9's pool hands an idle connection to a queued request, and before that request's
        # task runs (seconds later when the event loop lags), another task's pass sees the
        # connection still idle and past its keep-alive expiry and closes it, under the request
        # once it has started (encode/httpcore#1110). In a pool used by one patient at a time
        # there is no other task to do that. Idle connections are dropped (30 s) well before
        # the server's keep-alive timeout (75 s): a client that keeps them as long as the
        # server does sends requests on connections the server is closing.
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=30.0)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(timeout=60, limits=limits, cookies=NoCookies())
                )
                for _ in verifiers
            ]
            stop = time.perf_counter() + seconds
            await asyncio.gather(
                _lag_monitor(stop, result),
                *(
                    _patient_loop(
                        _Client(clients[i], world.urls[i % 2], v, result),
                        stop,
                        workload,
                        random.Random(seed * 100_003 + i),
                    )
                    for i, v in enumerate(verifiers)
                ),
            )

    started = time.perf_counter()
    result.started = started
    overlap.start()
    _run_in_own_thread(main)
    result.seconds = time.perf_counter() - started
    result.sync_overlap = overlap.stop(result.seconds)
    if sync is not None:
        end = started + overlap.ended if overlap.ended is not None else float("inf")
        result.sync_block_ms = [
            ms for at, ms in zip(result.block_at, result.block_ms, strict=True) if at < end
        ]
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    result.server_cpu_s = sum(cpu_seconds(pid) for pid in world.pids) - cpu0
    result.patients_verified = sum(1 for v in verifiers if v.ok)
    result.patients_fetched = sum(1 for v in verifiers if v.fetched)
    result.loadavg = os.getloadavg()[0]
    return result


class _Overlap:
    """How much of the load window the agent's sync process was running."""

    def __init__(self, proc: subprocess.Popen[str] | None) -> None:
        self.proc = proc
        self.ended: float | None = None
        self._t0 = 0.0
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        if self.proc is not None:
            self._thread.start()

    def _watch(self) -> None:
        assert self.proc is not None
        while self.proc.poll() is None:
            time.sleep(0.05)
        self.ended = time.perf_counter() - self._t0

    def stop(self, window: float) -> float:
        if self.proc is None:
            return 0.0
        if self.ended is None:
            return 1.0
        return min(1.0, self.ended / window)


class RssSampler:
    """RSS of the server processes every ``interval`` seconds, in a thread."""

    def __init__(self, pids: list[int], interval: float = 5.0) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, list[int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(
                (time.monotonic() - self._t0, [rss_bytes(pid) for pid in self.pids])
            )
            self._stop.wait(self.interval)

    def curve(self, step: float) -> list[list[float]]:
        """Per ``step`` seconds from the start: each process's median RSS in MB."""
        out = []
        t = 0.0
        while chunk := [s[1] for s in self.samples if t <= s[0] < t + step]:
            out.append(
                [
                    round(statistics.median(c[i] for c in chunk) / 1e6, 1)
                    for i in range(len(self.pids))
                ]
            )
            t += step
        return out

    def growth(self, window: float, span: float = 60.0) -> list[float]:
        """Per process: median RSS over the last ``span`` seconds against the median over the
        ``span`` seconds that start ``window`` seconds before the end, as a fraction."""
        end = self.samples[-1][0]
        start = end - window
        out = []
        for i in range(len(self.pids)):
            first = [s[1][i] for s in self.samples if start <= s[0] <= start + span]
            last = [s[1][i] for s in self.samples if s[0] >= end - span]
            out.append(statistics.median(last) / statistics.median(first) - 1)
        return out
