"""Server test fixtures: every database test runs on each database the test settings name.

``RXVAULT_TEST_DATABASES`` (comma-separated: sqlite, postgresql, mariadb) narrows the list; the
default is all three. ``RXVAULT_TEST_POSTGRESQL_URL`` and ``RXVAULT_TEST_MARIADB_URL`` point at
other servers. A named database that cannot be reached fails the run: there is no skip.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.server import Settings, create_app
from rxvault.server._admin import Admin
from rxvault.server._context import AppContext
from rxvault.server._db import create_db_engine, migrate, transaction
from rxvault.server._models import Base

DEFAULT_URLS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}


def selected() -> list[str]:
    raw = os.environ.get("RXVAULT_TEST_DATABASES", "")
    names = [n.strip() for n in raw.split(",") if n.strip()] or list(DEFAULT_URLS)
    unknown = [n for n in names if n not in DEFAULT_URLS]
    if unknown:
        raise ValueError(f"RXVAULT_TEST_DATABASES: unknown database {unknown[0]!r}")
    return names


def admin_url(name: str) -> str:
    return os.environ.get(f"RXVAULT_TEST_{name.upper()}_URL", DEFAULT_URLS[name])


@contextlib.contextmanager
def scratch_database(name: str, tmp_dir: Path) -> Iterator[str]:
    """A new, empty database of kind ``name``; dropped afterwards. Yields its URL."""
    if name == "sqlite":
        yield f"sqlite:///{tmp_dir / f'rxvault-{secrets.token_hex(4)}.db'}"
        return
    base = sa.make_url(admin_url(name))
    db_name = f"rxv_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {db_name}")
        yield base.set(database=db_name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if name == "postgresql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {db_name}")
        admin.dispose()


@pytest.fixture(scope="module", params=selected())
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated scratch database per test module and database kind."""
    tmp: Path = tmp_path_factory.mktemp("db")
    with scratch_database(request.param, tmp) as url:
        engine = create_db_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        yield url


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = create_db_engine(database_url, pool_size=5)
    yield eng
    eng.dispose()


@pytest.fixture
def clean_engine(engine: sa.Engine) -> sa.Engine:
    """The module's engine with every table emptied (the audit chain reset)."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        conn.execute(Base.metadata.tables["audit_head"].insert().values(id=1, seq=0, mac=""))
    return engine


# --- the app, in-process -----------------------------------------------------------------


BASE_URL = "https://portal.test"


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls the ASGI app in this process."""

    def __init__(self, app: Any, address: str) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._inner = httpx.ASGITransport(app=app, client=(address, 50000))

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


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.current = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


class Server:
    """The real app on a scratch database, with a fake clock and admin access."""

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.clock = FakeClock()
        self.pepper = os.urandom(32)
        self.settings = settings or Settings(database_url=url, pepper=self.pepper)
        self.pepper = self.settings.pepper or self.pepper
        self.app = create_app(self.settings, clock=self.clock)
        self.ctx: AppContext = self.app.app.state.rxvault  # type: ignore[attr-defined]
        self._clients: list[httpx.Client] = []

    def client(self, address: str = "192.0.2.10") -> httpx.Client:
        c = httpx.Client(
            transport=InProcessTransport(self.app, address), base_url=BASE_URL, timeout=60
        )
        self._clients.append(c)
        return c

    def admin(self) -> contextlib.AbstractContextManager[Admin]:
        @contextlib.contextmanager
        def _cm() -> Iterator[Admin]:
            with transaction(self.ctx.db) as s:
                yield Admin(s, self.ctx.audit_key, self.clock.now())

        return _cm()

    def close(self) -> None:
        for c in self._clients:
            c.close()
        self.app.app.state.engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def server(clean_engine: sa.Engine, database_url: str) -> Iterator[Server]:
    srv = Server(database_url)
    yield srv
    srv.close()


class PharmacySide:
    """What the agent does, built from rxvault.format directly (the agent is another package)."""

    def __init__(self, server: Server, slug: str = "main-street") -> None:
        self.server = server
        self.slug = slug
        with server.admin() as admin:
            admin.create_pharmacy(slug, f"{slug.title()} Pharmacy")
            self.token, _ = admin.create_token(slug)
        self.key = fmt.generate_pharmacy_key()
        self.handle_secret = fmt.generate_handle_secret()
        self.http = server.client()
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self.versions: dict[str, int] = {}
        self.codes: dict[str, fmt.EnrollmentCode] = {}

    def register_key(self) -> None:
        r = self.http.put(
            "/api/v1/agent/pharmacy-key",
            json={"public_key": b64(self.key.public_bytes())},
        )
        assert r.status_code == 200, r.text

    def handle(self, patient_id: str) -> str:
        return fmt.patient_handle(self.handle_secret, patient_id)

    def enroll(self, patient_id: str, days: int = 30) -> str:
        code = fmt.new_enrollment_code()
        secrets_ = fmt.derive_enrollment(code)
        expires = self.server.clock.now() + dt.timedelta(days=days)
        r = self.http.post(
            "/api/v1/agent/enrollments",
            json={
                "enrollments": [
                    {
                        "lookup_id": secrets_.lookup_id,
                        "handle": self.handle(patient_id),
                        "pin_tag": b64(fmt.pin_tag(code, self.key.public_bytes())),
                        "expires_at": expires.isoformat(),
                    }
                ]
            },
        )
        assert r.status_code == 200, r.text
        self.codes[secrets_.lookup_id] = code
        return code.text

    def directory(self, after: int = 0) -> dict[str, bytes]:
        """Verified patient keys by handle (what the agent encrypts to)."""
        r = self.http.get("/api/v1/agent/key-directory", params={"after": after})
        assert r.status_code == 200, r.text
        keys: dict[str, bytes] = {}
        by_lookup = self.codes
        for entry in r.json()["entries"]:
            code = by_lookup[entry["lookup_id"]]
            public_key = unb64(entry["public_key"])
            fmt.verify_binding(
                fmt.derive_enrollment(code).binding_key,
                entry["handle"],
                public_key,
                unb64(entry["binding"]),
            )
            keys[entry["handle"]] = public_key
        return keys

    def block(self, patient_id: str, document: bytes, version: int | None = None) -> bytes:
        handle = self.handle(patient_id)
        if version is None:
            version = self.versions.get(handle, 0) + 1
        self.versions[handle] = max(self.versions.get(handle, 0), version)
        return fmt.seal_block(
            document,
            pharmacy_key=self.key,
            handle=handle,
            version=version,
            as_of=self.server.clock.now(),
            recipient_public_key=self.directory()[handle],
        )

    def tombstone(self, patient_id: str) -> bytes:
        handle = self.handle(patient_id)
        version = self.versions.get(handle, 0) + 1
        self.versions[handle] = version
        return fmt.make_tombstone(
            pharmacy_key=self.key,
            handle=handle,
            version=version,
            deleted_at=self.server.clock.now(),
        )

    def batch(
        self,
        blocks: list[bytes],
        tombstones: tuple[bytes, ...] | list[bytes] = (),
        batch_id: str | None = None,
    ) -> tuple[str, bytes]:
        bid = batch_id or fmt.new_batch_id()
        data = fmt.make_batch(
            pharmacy_key=self.key,
            batch_id=bid,
            blocks=list(blocks),
            tombstones=list(tombstones),
            created_at=self.server.clock.now(),
        )
        return bid, data

    def upload(self, batch_id: str, data: bytes) -> Any:
        return self.http.put(
            f"/api/v1/agent/batches/{batch_id}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


PASSWORD = "correct horse battery staple"


@pytest.fixture
def pharmacy(server: Server) -> PharmacySide:
    side = PharmacySide(server)
    side.register_key()
    return side


@pytest.fixture
def patient_client(server: Server) -> Any:
    """A factory of patient clients talking to the in-process app."""
    from rxvault.client import PatientClient

    cache: dict[Any, Any] = {}

    def make(address: str = "192.0.2.10") -> PatientClient:
        return PatientClient(http=server.client(address), key_cache=cache)

    return make


@pytest.fixture
def make_server(clean_engine: sa.Engine, database_url: str) -> Iterator[Any]:
    """A factory of servers on the module's database with settings changed by keyword."""
    import dataclasses

    made: list[Server] = []

    def make(**changes: Any) -> Server:
        base = Settings(database_url=database_url, pepper=os.urandom(32))
        srv = Server(database_url, dataclasses.replace(base, **changes))
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()
