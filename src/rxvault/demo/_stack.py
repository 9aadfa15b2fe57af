"""The whole demo on one machine: pharmacy, server, agent, enrollment, one patient, portal.

Everything goes through the real parts, the way an operator and a patient would use them: the
server's settings file, pepper file and migrations (``rxvault server init``), a pharmacy and its
API token (``rxvault server pharmacies create``), the agent's home (``rxvault agent init``),
enrollment codes and letters (``rxvault agent enroll --letters``), a registration through the
patient protocol (:class:`rxvault.client.PatientClient`), and the agent's daily run
(``rxvault agent sync``). The agent and the client talk to the server over HTTP on this machine.

Layout of the demo directory::

    demo.json          what the demo set up (mode 0600: it holds the demo patient's password)
    pharmacy/          the demo pharmacy's Visual FoxPro tables
    server/            rxvault-server.toml, pepper.key (0600), rxvault.db (SQLite)
    agent/             the agent's home (agent.toml, mapping.toml, keys/, state)
    letters.pdf        enrollment letters of the patients left to register
    serving.json       present while ``rxvault demo up`` serves (its address)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from rxvault._cli_errors import UserError
from rxvault.demo._generate import generate
from rxvault.demo._next_day import DayChanges, next_day
from rxvault.demo._schema import ALLERGIES, DBC_NAME, FILLS, PATIENTS
from rxvault.server._settings import Settings

STATE_NAME = "demo.json"
SERVING_NAME = "serving.json"
PHARMACY_SLUG = "main-street"
PHARMACY_NAME = "Main Street Pharmacy"
LETTERS = 3  # patients enrolled with a letter, besides the one registered by the demo
CODE_DAYS = 60
SIMULATE_MAX_BYTES = 20 * 1024 * 1024  # larger pharmacies: no look at tomorrow to pick patients
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind

Echo = Callable[[str], None]

_WORDS = tuple(
    [
        "amber",
        "anchor",
        "apple",
        "aspen",
        "basil",
        "birch",
        "brook",
        "cedar",
        "cobalt",
        "coral",
        "cotton",
        "delta",
        "ember",
        "falcon",
        "fern",
        "flint",
        "garnet",
        "ginger",
        "harbor",
        "hazel",
        "heron",
        "indigo",
        "iris",
        "jasper",
        "juniper",
        "kelp",
        "lantern",
        "lilac",
        "linen",
        "maple",
        "meadow",
        "mint",
        "nectar",
        "nutmeg",
        "olive",
        "orchid",
        "otter",
        "pebble",
        "pepper",
        "pine",
        "plum",
        "quartz",
        "quill",
        "raven",
        "reed",
        "river",
        "saffron",
        "sage",
        "slate",
        "spruce",
        "sumac",
        "thistle",
        "tulip",
        "velvet",
        "violet",
        "walnut",
        "willow",
        "wren",
        "yarrow",
        "zephyr",
    ]
)


@dataclasses.dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / STATE_NAME

    @property
    def serving(self) -> Path:
        return self.root / SERVING_NAME

    @property
    def pharmacy(self) -> Path:
        return self.root / "pharmacy"

    @property
    def server(self) -> Path:
        return self.root / "server"

    @property
    def config(self) -> Path:
        return self.server / "rxvault-server.toml"

    @property
    def pepper(self) -> Path:
        return self.server / "pepper.key"

    @property
    def agent(self) -> Path:
        return self.root / "agent"

    @property
    def letters(self) -> Path:
        return self.root / "letters.pdf"

    def owned(self) -> list[Path]:
        """Everything the demo creates in its directory (what --reset removes)."""
        return [self.state, self.serving, self.pharmacy, self.server, self.agent, self.letters]


@dataclasses.dataclass
class DemoState:
    """What the demo set up, kept in ``demo.json`` so that a rerun picks up where it was."""

    seed: int
    port: int
    database_url: str  # as given (a SQLite default is relative to the server directory)
    enrolled: list[str] = dataclasses.field(default_factory=list)
    letters: list[str] = dataclasses.field(default_factory=list)
    patient_id: str | None = None
    patient_name: str = ""
    username: str | None = None
    password: str | None = None
    registered: bool = False

    @classmethod
    def load(cls, path: Path) -> DemoState:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            fields = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in fields})
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(
                f"{path}: cannot read the demo's state ({exc})",
                hint="start the demo over with `rxvault demo up --reset`",
            ) from None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(dataclasses.asdict(self), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)


def shown_url(url: str) -> str:
    """A database URL fit to print (no password)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def check_database_url(url: str) -> str:
    """The URL with rxvault's drivers filled in (``postgresql://`` → psycopg, ``mysql://`` and
    ``mariadb://`` → PyMySQL), once a connection to it works; else a clear error."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise UserError(
            f"--database-url {url!r} is not a database URL",
            hint="e.g. postgresql://user@127.0.0.1/rxvault or mysql://user@127.0.0.1/rxvault",
        ) from None
    if parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    text = parsed.render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite":
        return text
    try:
        engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise UserError(
            f"--database-url {shown_url(text)}: {exc}",
            hint="rxvault supports SQLite, PostgreSQL (psycopg) and MariaDB/MySQL (PyMySQL)",
        ) from None
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        raise UserError(
            f"cannot connect to {shown_url(text)}: {exc.__cause__ or exc}",
            hint="check the address, the user and that the database exists",
        ) from None
    finally:
        engine.dispose()
    return text


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def portal_url(host: str, port: int) -> str:
    """The address to open in a browser. Browsers keep the session cookie (``Secure``) on
    plain http only for localhost, so a loopback or wildcard bind is shown as localhost."""
    if host in LOOPBACK or host in WILDCARD:
        return f"http://localhost:{port}/"
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def portal_built() -> bool:
    from rxvault.server._web import default_web_root

    return (default_web_root() / "index.html").is_file()


# --- the server ------------------------------------------------------------------------------


def server_settings(paths: DemoPaths) -> Settings:
    """The demo server's settings, from its settings file only (no RXVAULT_* variables)."""
    from rxvault.server._settings import SettingsError, load_settings

    try:
        return load_settings(paths.config, environ={})
    except SettingsError as exc:
        raise UserError(exc.message, hint="start over with `rxvault demo up --reset`") from None


def _init_server(paths: DemoPaths, database_url: str) -> None:
    """What ``rxvault server init --dir DIR/server`` does: settings file, pepper, schema."""
    from rxvault.server._settings import new_pepper_text

    paths.server.mkdir(parents=True, exist_ok=True)
    if not paths.pepper.exists():
        fd = os.open(paths.pepper, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(new_pepper_text() + "\n")
    lines = [
        "# rxvault server settings of the demo (written by `rxvault demo`).",
        "[server]",
        f"database_url = {json.dumps(database_url)}",
        'pepper_file = "pepper.key"  # keep it outside the database backups; mode 0600',
        "frame_ancestors = \"'none'\"",
        "",
    ]
    tmp = paths.config.with_suffix(".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, paths.config)


def migrate_database(settings: Settings) -> None:
    """``rxvault server migrate``: bring the schema up to date (nothing to do when it is)."""
    from rxvault.server._db import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        migrate(engine)
    except sa.exc.SQLAlchemyError as exc:
        raise UserError(
            f"cannot prepare the database {shown_url(settings.database_url)}: "
            f"{exc.__cause__ or exc}",
            hint="check the database URL, that the server runs and that the database exists",
        ) from None
    finally:
        engine.dispose()


def _create_pharmacy(settings: Settings) -> str:
    """``rxvault server pharmacies create``: the pharmacy and its first API token."""
    from rxvault.server._admin import Admin, AdminError
    from rxvault.server._audit import audit_key
    from rxvault.server._db import create_db_engine, session_factory, transaction

    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        with transaction(session_factory(engine)) as session:
            admin = Admin(session, audit_key(settings.require_pepper()), dt.datetime.now(dt.UTC))
            admin.create_pharmacy(PHARMACY_SLUG, PHARMACY_NAME)
            token, _ = admin.create_token(PHARMACY_SLUG, label="demo")
    except AdminError as exc:
        raise UserError(
            f"{shown_url(settings.database_url)}: {exc} (left by an earlier demo?)",
            hint="`rxvault demo up --reset` wipes the demo's tables and starts over",
        ) from None
    finally:
        engine.dispose()
    return token


def wipe_database(url: str) -> bool:
    """Drop every table rxvault created in the database at ``url`` (PostgreSQL, MariaDB).

    Refuses a database holding another pharmacy than the demo's: it is not the demo's.
    Returns whether anything was dropped.
    """
    from rxvault.server._models import Base

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            names = set(sa.inspect(conn).get_table_names())
            if "pharmacies" in names:
                slugs = conn.execute(sa.text("SELECT slug FROM pharmacies")).scalars().all()
                others = sorted(set(slugs) - {PHARMACY_SLUG})
                if others:
                    raise UserError(
                        f"{shown_url(url)} holds other pharmacies than the demo's "
                        f"({', '.join(others[:3])}); refusing to wipe it",
                        hint="give the demo a database of its own with --database-url",
                    )
            ours = [t for t in Base.metadata.sorted_tables if t.name in names]
            if not ours and "alembic_version" not in names:
                return False
            Base.metadata.drop_all(conn, tables=ours)
            if "alembic_version" in names:
                conn.execute(sa.text("DROP TABLE alembic_version"))
            return True
    except sa.exc.SQLAlchemyError as exc:
        raise UserError(
            f"cannot wipe the demo's tables in {shown_url(url)}: {exc.__cause__ or exc}",
            hint="check the database URL and that the database server runs",
        ) from None
    finally:
        engine.dispose()


class DemoServer:
    """The real server app, served by uvicorn in a thread of this process."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        import uvicorn

        from rxvault.server._app import create_app
        from rxvault.server._db import DatabaseError
        from rxvault.server._settings import SettingsError

        try:
            self.app = create_app(settings)
        except SettingsError as exc:
            raise UserError(exc.message, hint=exc.hint) from None
        except DatabaseError as exc:
            raise UserError(str(exc), hint="start over with `rxvault demo up --reset`") from None
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="rxvault-demo", daemon=True)
        self.host = host
        self.port = port

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise UserError(
                    f"the server could not listen on {self.host}:{self.port}",
                    hint="choose another --port",
                )
            time.sleep(0.01)
        if self.port == 0:
            self.port = int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The address this process uses to reach it (the agent and the client)."""
        host = "127.0.0.1" if self.host in WILDCARD or self.host == "localhost" else self.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises KeyboardInterrupt here)."""
        while self.thread.is_alive():
            self.thread.join(0.5)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(10)
        self.app.app.state.engine.dispose()  # type: ignore[attr-defined]


@contextlib.contextmanager
def private_server(settings: Settings) -> Iterator[DemoServer]:
    """The server on a free loopback port for the duration of a setup or a sync."""
    server = DemoServer(settings, "127.0.0.1", 0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror})",
                hint="is the demo already running? choose another port with --port",
            ) from None


def serving_url(paths: DemoPaths) -> str | None:
    """The address of a ``rxvault demo up`` serving this demo right now, if any."""
    try:
        raw = json.loads(paths.serving.read_text(encoding="utf-8"))
        url = str(raw["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        response = httpx.get(url + "/api/v1/health", timeout=2)
        if response.status_code == 200 and response.json().get("status") == "ok":
            return url
    except (httpx.HTTPError, ValueError):
        pass
    return None


# --- the agent -------------------------------------------------------------------------------


def _http_factory(url: str) -> Callable[[str], httpx.Client]:
    """The agent's HTTP client, aimed at the demo server's actual address."""

    def factory(_configured: str) -> httpx.Client:
        return httpx.Client(base_url=url, timeout=120)

    return factory


def agent_context(paths: DemoPaths, url: str) -> Any:
    from rxvault.agent import AgentContext

    return AgentContext.load(paths.agent, _http_factory(url))


def run_agent_sync(paths: DemoPaths, url: str) -> Any:
    """``rxvault agent sync``: returns the agent's summary (its log goes to agent/logs)."""
    from rxvault.agent import Reporter, SyncOptions, run_sync
    from rxvault.agent._report import log, setup_log

    ctx = agent_context(paths, url)
    handler = setup_log(ctx.config.log_path)
    try:
        return run_sync(ctx, SyncOptions(), Reporter(quiet=True))
    finally:
        log.removeHandler(handler)
        handler.close()


# --- choosing the demo's patients ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Candidate:
    patient_id: int
    first: str
    last: str


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c for c in folded if c.isascii() and (c.isalnum())).lower()


def _tomorrow(pharmacy: Path, seed: int) -> tuple[set[int], set[int], set[int]]:
    """Who tomorrow's ``next-day`` changes: (new fills, any change, deleted), on a copy."""
    from rxvault.dbf import open_table

    size = sum(p.stat().st_size for p in pharmacy.iterdir())
    if size > SIMULATE_MAX_BYTES:
        return set(), set(), set()
    with tempfile.TemporaryDirectory(prefix="rxvault-demo-") as tmp:
        copy = Path(tmp) / "pharmacy"
        shutil.copytree(pharmacy, copy)
        changes = next_day(copy, seed=seed)
        new = set(changes.new_fill_ids)
        with open_table(copy / FILLS.file) as t:
            fills = t.read(["fill_id", "patient_id"])
        with_new_fill = {
            int(p)
            for f, p in zip(
                fills.column("fill_id").to_pylist(),
                fills.column("patient_id").to_pylist(),
                strict=True,
            )
            if f in new
        }
    return with_new_fill, set(changes.patient_ids), set(changes.deleted_patient_ids)


def choose_patients(pharmacy: Path, seed: int, count: int) -> list[_Candidate]:
    """Active patients worth showing, best first: one who gets a new fill tomorrow (so that
    ``next-day`` shows something in the portal), with allergies and many fills."""
    from rxvault.dbf import open_table

    with open_table(pharmacy / PATIENTS.file) as t:
        patients = t.read(["patient_id", "first_name", "last_name", "active"])
    with open_table(pharmacy / FILLS.file) as t:
        fills = Counter(t.read(["patient_id"]).column("patient_id").to_pylist())
    with open_table(pharmacy / ALLERGIES.file) as t:
        allergic = set(t.read(["patient_id"]).column("patient_id").to_pylist())
    new_fill, changed, deleted = _tomorrow(pharmacy, seed)
    rows = [
        _Candidate(int(pid), str(first or "").strip(), str(last or "").strip())
        for pid, first, last, active in zip(
            patients.column("patient_id").to_pylist(),
            patients.column("first_name").to_pylist(),
            patients.column("last_name").to_pylist(),
            patients.column("active").to_pylist(),
            strict=True,
        )
        if active and pid not in deleted
    ]
    rows.sort(
        key=lambda c: (
            c.patient_id not in new_fill,
            c.patient_id not in changed,
            c.patient_id not in allergic,
            -fills[c.patient_id],
            c.patient_id,
        )
    )
    return rows[:count]


def _username(c: _Candidate) -> str:
    name = ".".join(p for p in (_ascii(c.first), _ascii(c.last)) if p)
    return name if len(name) >= 3 else f"patient{c.patient_id}"


def _password() -> str:
    words = [secrets.choice(_WORDS) for _ in range(3)]
    return "-".join([*words, f"{secrets.randbelow(90) + 10}"])


# --- setting up and running ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UpOptions:
    directory: Path
    database_url: str | None
    host: str
    port: int
    patients: int
    seed: int
    reset: bool


def reset_demo(paths: DemoPaths, database_url: str | None, echo: Echo) -> None:
    """Remove what the demo made: its files, and its tables on PostgreSQL or MariaDB."""
    if serving_url(paths):
        raise UserError(
            f"the demo in {paths.root} is being served right now",
            hint="stop `rxvault demo up` (Ctrl-C) first",
        )
    url = database_url
    if url is None and paths.state.exists():
        url = DemoState.load(paths.state).database_url
    if url is not None and not _is_sqlite(url) and wipe_database(url):
        echo(f"  reset      dropped the demo's tables in {shown_url(url)}")
    removed = False
    for path in paths.owned():
        if path.is_dir():
            shutil.rmtree(path)
            removed = True
        elif path.exists():
            path.unlink()
            removed = True
    if removed:
        echo(f"  reset      removed the demo's files in {paths.root}")


def load_state(paths: DemoPaths) -> DemoState:
    if not paths.state.exists():
        raise UserError(
            f"no demo in {paths.root}",
            hint="set it up with `rxvault demo up` (or give its --dir)",
        )
    return DemoState.load(paths.state)


def set_up(options: UpOptions, echo: Echo) -> DemoState:
    """Set up what is missing (all of it on a first run), then run the agent's sync."""
    from rxvault.agent import enroll, init_home

    paths = DemoPaths(options.directory)
    if options.directory.exists() and not options.directory.is_dir():
        raise UserError(f"{options.directory} is not a directory", hint="choose another --dir")
    database_url = options.database_url
    if database_url is not None:
        database_url = check_database_url(database_url)
    if options.reset:
        if database_url is None and paths.state.exists():
            # Start over on the same database (give --database-url to change it).
            database_url = DemoState.load(paths.state).database_url
        reset_demo(paths, database_url, echo)
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create {paths.root}: {exc.strerror}", hint="choose a writable --dir"
        ) from None

    if paths.state.exists():
        state = DemoState.load(paths.state)
        if database_url is not None and database_url != state.database_url:
            raise UserError(
                f"the demo in {paths.root} uses {shown_url(state.database_url)}, "
                f"not {shown_url(database_url)}",
                hint="add --reset to start over on the new database (or use another --dir)",
            )
        echo(f"Using the demo in {paths.root} (--reset starts over).")
    else:
        state = DemoState(
            seed=options.seed,
            port=options.port,
            database_url=database_url or "sqlite:///rxvault.db",
        )
        state.save(paths.state)
        echo(f"Setting up the demo in {paths.root}:")

    if not (paths.pharmacy / DBC_NAME).exists():
        info = generate(paths.pharmacy, patients=options.patients, seed=state.seed)
        echo(f"  pharmacy   {info.patients:,} patients as Visual FoxPro tables in {paths.pharmacy}")

    fresh_server = not paths.config.exists()
    if fresh_server:
        _init_server(paths, state.database_url)
    settings = server_settings(paths)
    migrate_database(settings)
    if fresh_server:
        where = (
            f"SQLite {paths.server / 'rxvault.db'}"
            if state.database_url == "sqlite:///rxvault.db"
            else shown_url(settings.database_url)
        )
        echo(f"  server     database ready ({where}); its pepper is in {paths.pepper}")

    with private_server(settings) as server:
        if not (paths.agent / "keys" / "api-token").exists():
            token = _create_pharmacy(settings)
            init_home(
                paths.agent,
                pharmacy_name=PHARMACY_NAME,
                server_url=f"http://127.0.0.1:{state.port}",
                source_dir=Path("..") / "pharmacy",
                portal_url=portal_url(options.host, state.port),
                token=token,
                http_factory=_http_factory(server.url),
            )
            echo(f"  agent      {PHARMACY_NAME} and its API token created; agent in {paths.agent}")

        ctx = agent_context(paths, server.url)
        codes: dict[str, str] = {}
        if not state.enrolled:
            from rxvault.agent._letters import write_letters  # (fpdf: slow to import)

            chosen = choose_patients(paths.pharmacy, state.seed, 1 + LETTERS)
            if not chosen:
                raise UserError(
                    f"{paths.pharmacy}: no active patient to enroll",
                    hint="start over with more patients: `rxvault demo up --reset --patients 50`",
                )
            made = enroll(ctx, [str(c.patient_id) for c in chosen], days=CODE_DAYS)
            codes = {e.patient_id: e.code_text for e in made}
            first = chosen[0]
            state.patient_id = str(first.patient_id)
            state.patient_name = f"{first.first} {first.last}".strip()
            state.username = _username(first)
            state.enrolled = [e.patient_id for e in made]
            state.letters = [e.patient_id for e in made[1:]]
            if made[1:]:
                write_letters(
                    paths.letters,
                    made[1:],
                    pharmacy_name=ctx.config.pharmacy_name,
                    portal_url=ctx.config.portal_url,
                )
            state.save(paths.state)
            echo(
                f"  enrolled   {len(made)} patients; letters for {len(made) - 1} in {paths.letters}"
            )

        if not state.registered and state.patient_id is not None:
            from rxvault.client import ClientError, PatientClient

            if state.patient_id not in codes:  # the code is never kept: enroll again
                (again,) = enroll(ctx, [state.patient_id], days=CODE_DAYS)
                codes[state.patient_id] = again.code_text
            username = state.username or f"patient{state.patient_id}"
            password = _password()
            client = PatientClient(server.url)
            try:
                client.register(codes[state.patient_id], username, password)
            except ClientError as exc:
                raise UserError(
                    f"registering the demo patient failed: {exc}",
                    hint="start over with `rxvault demo up --reset`",
                ) from None
            finally:
                client.close()
            state.username, state.password, state.registered = username, password, True
            state.save(paths.state)
            echo(
                f"  registered patient #{state.patient_id} {state.patient_name} as {username} "
                "(as the portal would)"
            )

        summary = run_agent_sync(paths, server.url)
    echo("  sync       the agent's daily run:")
    for line in summary.lines():
        echo(f"    {line}")
    return state


def apply_days(paths: DemoPaths, state: DemoState, days: int, pack: bool) -> list[DayChanges]:
    return [
        next_day(paths.pharmacy, seed=state.seed, pack=pack and day == days - 1)
        for day in range(days)
    ]


def new_fills_of(pharmacy: Path, changes: list[DayChanges], patient_id: str | None) -> int:
    """How many of the days' new fills are the given patient's."""
    from rxvault.dbf import open_table

    if patient_id is None:
        return 0
    new = {f for c in changes for f in c.new_fill_ids}
    with open_table(pharmacy / FILLS.file) as t:
        fills = t.read(["fill_id", "patient_id"])
    return sum(
        1
        for f, p in zip(
            fills.column("fill_id").to_pylist(),
            fills.column("patient_id").to_pylist(),
            strict=True,
        )
        if f in new and str(p) == patient_id
    )


@contextlib.contextmanager
def serving_marker(paths: DemoPaths, url: str) -> Iterator[None]:
    """``serving.json`` tells ``rxvault demo next-day`` where the running server is."""
    paths.serving.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n", "utf-8")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            paths.serving.unlink()
