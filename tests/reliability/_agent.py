"""Helpers of the agent reliability harnesses (tests/reliability/test_agent_*.py).

A *case* is one pharmacy on a server: its own agent home (its own signing key, registered with
the server) but the handle secret that every case of a test shares, so the same patient has the
same handle everywhere. A *reference* is the same work done without any fault on a separate
database; :func:`server_view` makes the two comparable: handle -> (state, version, SHA-256 of
the decrypted document, envelope size). Envelopes themselves differ between two runs (HPKE draws
a fresh ephemeral key), so "the same block" means: same handle, same version, same plaintext,
same padded size.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from agent.conftest import Agent, Harness, make_agent, scratch_database
from rxvault import format as fmt
from rxvault.agent import (
    AgentContext,
    Documents,
    Reporter,
    SyncOptions,
    enroll,
    parse_mapping,
    prepare,
    read_source,
    run_sync,
)
from rxvault.agent._config import write_secret
from rxvault.demo import generate
from rxvault.server._models import Pharmacy, Record
from server_process import server_process

QUIET = Reporter(interactive=False, quiet=True)
ENTRY = Path(__file__).with_name("_agent_entry.py")
View = dict[str, tuple[str, int, str | None, int]]


def make_source(path: Path, patients: int, seed: int = 7) -> Path:
    generate(path, patients=patients, seed=seed)
    return path


def patient_ids(source: Path) -> list[str]:
    """The ids of the patients the demo mapping publishes (its filter leaves some out)."""
    return list(documents(source).patient_ids)


def documents(source: Path) -> Documents:
    """What the agent would build from ``source`` with the demo mapping."""
    text = (importlib.resources.files("rxvault.agent") / "mappings" / "demo.toml").read_text(
        encoding="utf-8"
    )
    mapping = parse_mapping(text, Path("demo.toml"))
    return prepare(mapping, read_source(mapping, source), "Main Street Pharmacy")


@dataclass
class Server:
    """The real server app on one database; ``url`` is set when it also runs over a socket."""

    harness: Harness
    url: str | None = None
    count: int = 0

    def pharmacy(self) -> tuple[str, str]:
        """A new pharmacy: (slug, API token)."""
        self.count += 1
        slug = f"pharmacy-{self.count}"
        return slug, self.harness.add_pharmacy(slug)


@contextlib.contextmanager
def database_server(tmp: Path, *, socket: bool, kind: str = "sqlite") -> Iterator[Server]:
    with scratch_database(kind, tmp) as db:
        harness = Harness(db)
        try:
            if socket:
                with server_process(harness.url, harness.pepper) as url:
                    yield Server(harness, url)
            else:
                yield Server(harness)
        finally:
            harness.close()


@dataclass
class Case:
    agent: Agent
    slug: str
    keys: dict[str, bytes]  # handle -> the patient's private key
    server: Server
    ids: list[str] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.agent.home

    def context(self) -> AgentContext:
        if self.server.url is None:
            return self.agent.context()
        return AgentContext.load(self.agent.home)

    def sync(self, **options: object) -> object:
        return run_sync(self.context(), SyncOptions(**options), QUIET)  # type: ignore[arg-type]

    def view(self) -> View:
        return server_view(self.server.harness, self.slug, self.context(), self.keys)


def new_case(
    server: Server,
    home: Path,
    source: Path,
    *,
    secret: bytes,
    ids: list[str],
    batch_items: int = 4,
) -> Case:
    """A pharmacy on ``server`` with an agent home in ``home`` and ``ids`` enrolled and
    registered (each with a fresh patient key pair)."""
    write_secret(home / "keys" / "handle.secret", secret)
    slug, token = server.pharmacy()
    agent = make_agent(server.harness, home, source, token=token, batch_items=batch_items)
    ctx = agent.context()
    keys = {
        ctx.handle(e.patient_id): server.harness.register_fast(e.code_text)
        for e in enroll(ctx, ids, days=30)
    }
    if server.url is not None:
        config = home / "agent.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                'url = "https://portal.test"', f'url = "{server.url}"'
            ),
            encoding="utf-8",
        )
    return Case(agent, slug, keys, server, list(ids))


def records(harness: Harness, slug: str) -> dict[str, Record]:
    with harness.session() as s:
        stmt = sa.select(Record).join(Pharmacy, Pharmacy.id == Record.pharmacy_id)
        rows = list(s.execute(stmt.where(Pharmacy.slug == slug)).scalars())
        for r in rows:
            s.expunge(r)
    return {r.handle: r for r in rows}


def server_view(harness: Harness, slug: str, ctx: AgentContext, keys: dict[str, bytes]) -> View:
    """handle -> (state, version, SHA-256 of the decrypted document, envelope size)."""
    view: View = {}
    for handle, r in records(harness, slug).items():
        assert handle in keys, f"a record for a handle nobody enrolled: {handle}"
        digest = None
        if r.state == "live":
            assert r.envelope is not None
            opened = fmt.open_block(
                r.envelope,
                recipient_private_key=keys[handle],
                pharmacy_public_key=ctx.key.public_bytes(),
                expected_handle=handle,
            )
            digest = hashlib.sha256(opened.document).hexdigest()
        view[handle] = (r.state, r.version, digest, len(r.envelope or b""))
    return view


def check_local(case: Case, view: View) -> None:
    """The local state passes SQLite's integrity check, holds nothing in its outbox, and knows
    exactly what the server has (no more, no less)."""
    path = case.home / "state.db"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        rows = conn.execute(
            "SELECT handle, server_state, version FROM patients WHERE server_state != 'none'"
        ).fetchall()
    finally:
        conn.close()
    assert [p.name for p in (case.home / "outbox").iterdir()] == []
    local = {h: (s, v) for h, s, v in rows}
    assert local == {h: (v[0], v[1]) for h, v in view.items()}


def check_not_ahead(case: Case) -> None:
    """What the local state says the server has, the server has (it may have more)."""
    conn = sqlite3.connect(case.home / "state.db")
    try:
        rows = conn.execute(
            "SELECT handle, server_state, version FROM patients WHERE server_state != 'none'"
        ).fetchall()
    finally:
        conn.close()
    on_server = records(case.server.harness, case.slug)
    for handle, _state, version in rows:
        assert handle in on_server, f"local state claims {handle} is on the server"
        assert on_server[handle].version >= version, (handle, version, on_server[handle].version)


def reference_views(
    tmp: Path,
    source: Path,
    secret: bytes,
    ids: list[str],
    days: list[Callable[[Path], object]] | None = None,
    batch_items: int = 4,
) -> list[View]:
    """The server after each uninterrupted run, on a separate database (in-process server):
    the first sync, then one more run after each change in ``days`` applied to a copy of
    ``source``."""
    work = tmp / "source"
    shutil.copytree(source, work)
    views = []
    with database_server(tmp, socket=False) as server:
        case = new_case(server, tmp / "home", work, secret=secret, ids=ids, batch_items=batch_items)
        case.sync()
        views.append(case.view())
        for change in days or []:
            change(work)
            case.sync()
            views.append(case.view())
    return views


def agent_command(home: Path, *args: str) -> list[str]:
    """``rxvault agent --home HOME sync …`` as its own process, through the harness's entry
    point (the agent's own code plus two crash points: ``diff`` and ``sealing``)."""
    return [sys.executable, str(ENTRY), "--home", str(home), "sync", "--quiet", *args]


def agent_env(crash: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RXVAULT_AGENT_CRASH_AT", None)
    if crash:
        env["RXVAULT_AGENT_CRASH_AT"] = crash
    return env


def run_agent(home: Path, crash: str | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        agent_command(home, *args),
        env=agent_env(crash),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def wait_for_lock(home: Path, proc: subprocess.Popen[bytes], limit: float = 60.0) -> float:
    """Seconds until ``proc`` holds the run lock (it writes its pid into agent.lock)."""
    started = time.monotonic()
    lock = home / "agent.lock"
    mark = f"{proc.pid}\n".encode("ascii")
    while time.monotonic() - started < limit:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError):
            if lock.read_bytes() == mark:
                break
        time.sleep(0.002)
    return time.monotonic() - started
