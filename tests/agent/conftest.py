"""Agent test fixtures: the real server app (in-process or over a socket), a demo pharmacy,
and an agent home initialised against that server.

``RXVAULT_TEST_DATABASES`` (comma-separated: sqlite, postgresql) chooses the databases of the
tests marked as running on each; a named database that cannot be reached fails the run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.agent import AgentContext, init_home
from rxvault.demo import generate
from rxvault.server import Settings, create_app, create_db_engine, migrate
from rxvault.server._admin import Admin
from rxvault.server._db import transaction
from rxvault.server._models import Enrollment, KeyRegistration, Pharmacy, Record
from server_process import server_process

BASE_URL = "https://portal.test"
PG_URL = os.environ.get(
    "RXVAULT_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DEMO_PATIENTS = 120


def selected_databases() -> list[str]:
    raw = os.environ.get("RXVAULT_TEST_DATABASES", "")
    names = [n.strip() for n in raw.split(",") if n.strip()] or ["sqlite", "postgresql"]
    return [n for n in names if n in ("sqlite", "postgresql")]


@contextlib.contextmanager
def scratch_database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'server-{secrets.token_hex(4)}.db'}"
        return
    base = sa.make_url(PG_URL)
    name = f"rxv_agent_{secrets.token_hex(6)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls the ASGI app in this process."""

    def __init__(self, app: Any) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._inner = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def run() -> httpx.Response:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._inner.handle_async_request(inner)
            content = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )

        return self._portal.call(run)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


class Harness:
    """The real server app on a scratch database, one pharmacy and its API token."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pepper = os.urandom(32)
        engine = create_db_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        self.settings = Settings(database_url=url, pepper=self.pepper)
        self.app = create_app(self.settings)
        self.ctx = self.app.app.state.rxvault  # type: ignore[attr-defined]
        self.clients: list[httpx.Client] = []
        self.token = self.add_pharmacy("main-street")

    def add_pharmacy(self, slug: str) -> str:
        """Create a pharmacy; returns its API token."""
        with self.session() as s:
            admin = Admin(s, self.ctx.audit_key, self.ctx.now())
            admin.create_pharmacy(slug, f"{slug.title()} Pharmacy")
            token, _ = admin.create_token(slug)
        return token

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        with transaction(self.ctx.db) as s:
            yield s

    def client(self, base_url: str = BASE_URL) -> httpx.Client:
        c = httpx.Client(transport=InProcessTransport(self.app), base_url=base_url, timeout=60)
        self.clients.append(c)
        return c

    def records(self) -> dict[str, tuple[str, int, bytes | None]]:
        """handle -> (state, version, envelope) of every record on the server."""
        with self.session() as s:
            return {
                r.handle: (r.state, r.version, r.envelope)
                for r in s.execute(sa.select(Record)).scalars()
            }

    def register_fast(self, code_text: str) -> bytes:
        """Register a patient key for an enrollment code the way the portal would, but without
        the password part (no account): a real X25519 key pair and a real binding MAC.
        Returns the private key."""
        code = fmt.parse_enrollment_code(code_text)
        secrets_ = fmt.derive_enrollment(code)
        private, public = fmt.generate_patient_keypair()
        with self.session() as s:
            enrollment = s.execute(
                sa.select(Enrollment).where(Enrollment.lookup_id == secrets_.lookup_id)
            ).scalar_one()
            pharmacy = s.get_one(Pharmacy, enrollment.pharmacy_id)
            pharmacy.directory_seq += 1
            s.add(
                KeyRegistration(
                    pharmacy_id=pharmacy.id,
                    seq=pharmacy.directory_seq,
                    handle=enrollment.handle,
                    lookup_id=enrollment.lookup_id,
                    public_key=public,
                    binding=fmt.binding_mac(secrets_.binding_key, enrollment.handle, public),
                    registered_at=self.ctx.now(),
                )
            )
            enrollment.used_at = self.ctx.now()
        return private

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.app.app.state.engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated demo pharmacy (copied for each test that changes it)."""
    path = tmp_path_factory.mktemp("demo") / "pharmacy"
    generate(path, patients=DEMO_PATIENTS, seed=7)
    return path


@pytest.fixture
def source(demo_source: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "pharmacy"
    shutil.copytree(demo_source, dest)
    return dest


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with scratch_database("sqlite", tmp_path) as url:
        h = Harness(url)
        yield h
        h.close()


@pytest.fixture(params=selected_databases())
def any_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with scratch_database(request.param, tmp_path) as url:
        h = Harness(url)
        yield h
        h.close()


@dataclass
class Agent:
    home: Path
    harness: Harness

    def context(self) -> AgentContext:
        return AgentContext.load(self.home, self.harness.client)


def make_agent(
    harness: Harness, home: Path, source: Path, token: str | None = None, **sync: object
) -> Agent:
    init_home(
        home,
        pharmacy_name="Main Street Pharmacy",
        server_url=BASE_URL,
        source_dir=source,
        token=token or harness.token,
        http_factory=harness.client,
    )
    settings = {"retries": 2, "backoff": 0.01, "read_wait": 0.01, **sync}
    text = (home / "agent.toml").read_text(encoding="utf-8")
    text = (
        text.split("[sync]")[0]
        + "[sync]\n"
        + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in settings.items())
    )
    (home / "agent.toml").write_text(text, encoding="utf-8")
    return Agent(home, harness)


@pytest.fixture
def agent(harness: Harness, tmp_path: Path, source: Path) -> Agent:
    return make_agent(harness, tmp_path / "home", source)


# --- a server over a real socket ------------------------------------------------------------


@contextlib.contextmanager
def socket_server(harness: Harness) -> Iterator[str]:
    """uvicorn in a subprocess on the harness's database; yields its base URL."""
    with server_process(harness.url, harness.pepper) as url:
        yield url
