"""``rxvault demo up`` / ``next-day``: the whole chain set up by one command, on each database.

``RXVAULT_TEST_DATABASES`` (comma-separated: sqlite, postgresql, mariadb; default all three)
chooses the databases; ``RXVAULT_TEST_POSTGRESQL_URL`` / ``RXVAULT_TEST_MARIADB_URL`` point at
other servers. PostgreSQL and MariaDB runs use a database of their own, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from rxvault._cli_errors import UserError
from rxvault.agent import enroll
from rxvault.cli import main
from rxvault.client import PatientClient
from rxvault.demo import _stack
from rxvault.demo._next_day import next_day
from rxvault.server._models import Account, Enrollment, Record

URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}


def selected() -> list[str]:
    raw = os.environ.get("RXVAULT_TEST_DATABASES", "")
    return [n.strip() for n in raw.split(",") if n.strip()] or ["sqlite", *URLS]


@contextlib.contextmanager
def demo_database(kind: str) -> Iterator[str | None]:
    """None for SQLite (the demo's default); else a new database, dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    base = sa.make_url(os.environ.get(f"RXVAULT_TEST_{kind.upper()}_URL", URLS[kind]))
    name = f"rxvault_demo_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if kind == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


def up(demo: Path, *extra: str) -> Any:
    result = CliRunner().invoke(
        main, ["demo", "up", "--dir", str(demo), "--no-serve", "--patients", "20", *extra]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def state(demo: Path) -> dict[str, Any]:
    return json.loads((demo / "demo.json").read_text(encoding="utf-8"))


def count(demo: Path, model: Any) -> int:
    settings = _stack.server_settings(_stack.DemoPaths(demo))
    engine = sa.create_engine(settings.database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one())
    finally:
        engine.dispose()


def read_records(demo: Path, username: str, password: str) -> dict[str, Any]:
    """Log in as the patient with the Python client; the decrypted document."""
    settings = _stack.server_settings(_stack.DemoPaths(demo))
    with _stack.private_server(settings) as server:
        client = PatientClient(server.url)
        try:
            client.login(username, password)
            records = client.fetch()
        finally:
            client.close()
    assert records.state == "live"
    assert records.document is not None
    document: dict[str, Any] = json.loads(records.document)
    return document


@pytest.mark.parametrize("kind", selected())
def test_up_then_the_patient_reads_the_records_then_rerun_and_reset(
    kind: str, tmp_path: Path
) -> None:
    demo = tmp_path / "demo"
    with demo_database(kind) as url:
        extra = ["--database-url", url] if url else []
        first = up(demo, *extra)
        assert "Setting up the demo" in first.output
        assert "uploaded:                1" in first.output
        s = state(demo)
        assert f"log in as  {s['username']} / {s['password']}" in first.output
        assert (demo / "letters.pdf").read_bytes().startswith(b"%PDF")
        assert (demo / "server" / "pepper.key").stat().st_mode & 0o077 == 0
        assert (demo / "demo.json").stat().st_mode & 0o077 == 0
        if url:
            assert "rxvault.db" not in first.output
            assert not (demo / "server" / "rxvault.db").exists()
        document = read_records(demo, s["username"], s["password"])
        assert document["pharmacy"]["name"] == "Main Street Pharmacy"
        values = document["patient"]["values"]
        assert s["patient_name"] == f"{values['first_name']} {values['last_name']}"
        assert document["sections"][0]["rows"], "the demo patient has prescriptions"

        # A rerun reuses everything: no new enrollment, account or upload.
        enrollments = count(demo, Enrollment)
        assert enrollments == 4
        again = up(demo, *extra)
        assert "Using the demo" in again.output
        assert "\n  enrolled   " not in again.output
        assert "\n  registered " not in again.output
        assert "uploaded:                0" in again.output
        assert f"log in as  {s['username']} / {s['password']}" in again.output
        assert count(demo, Enrollment) == enrollments
        assert count(demo, Account) == 1
        assert state(demo) == s

        # --reset starts over: a new pharmacy key, a new password; the old account is gone.
        reset = up(demo, "--reset")  # on the same database
        assert "Setting up the demo" in reset.output
        assert "removed the demo's files" in reset.output
        if url:
            assert "dropped the demo's tables" in reset.output
        fresh = state(demo)
        assert fresh["password"] != s["password"]
        assert fresh["database_url"] == s["database_url"]
        assert count(demo, Enrollment) == 4
        assert count(demo, Account) == 1
        assert count(demo, Record) == 1


def test_next_day_uploads_only_the_changed_patients(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    up(demo)
    paths = _stack.DemoPaths(demo)
    s = state(demo)
    # Tomorrow, on a copy: who changes (next_day is seeded by the pharmacy's seed and the day).
    copy = tmp_path / "tomorrow"
    shutil.copytree(paths.pharmacy, copy)
    changes = next_day(copy, seed=s["seed"])
    changed = {str(p) for p in changes.patient_ids}
    edited = [str(p) for p in changes.edited_patient_ids]  # phone, address or email: published
    assert s["patient_id"] in changed, "the demo patient is chosen among tomorrow's changes"
    # Two more patients register from their letters' codes: one who changes tomorrow, one not.
    settings = _stack.server_settings(paths)
    with _stack.private_server(settings) as server:
        ctx = _stack.agent_context(paths, server.url)
        ids = [str(i) for i in range(1, 21)]
        active = set(_published(ctx))
        stays = next(i for i in ids if i in active and i not in changed and i != s["patient_id"])
        moves = next(i for i in edited if i in active and i != s["patient_id"])
        for pid, code in ((e.patient_id, e.code_text) for e in enroll(ctx, [stays, moves], days=5)):
            client = PatientClient(server.url)
            client.register(code, f"user{pid}", "correct horse battery staple")
            client.close()
        assert _stack.run_agent_sync(paths, server.url).uploaded == 2
        handles = {pid: ctx.handle(pid) for pid in (stays, moves, s["patient_id"])}
    before = _versions(demo)

    result = CliRunner().invoke(main, ["demo", "next-day", "--dir", str(demo)])
    assert result.exit_code == 0, result.output
    assert "the demo server is not running" in result.output
    assert "uploaded:                2" in result.output
    assert "new fill" in result.output  # the demo patient's
    after = _versions(demo)
    bumped = {pid for pid, h in handles.items() if after[h] > before[h]}
    assert bumped == {moves, s["patient_id"]}


def _published(ctx: Any) -> list[str]:
    from rxvault.agent import prepare, read_source

    mapping = ctx.mapping()
    ids: list[str] = prepare(
        mapping, read_source(mapping, ctx.config.source_dir), ctx.config.pharmacy_name
    ).patient_ids
    return ids


def _versions(demo: Path) -> dict[str, int]:
    settings = _stack.server_settings(_stack.DemoPaths(demo))
    engine = sa.create_engine(settings.database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {h: v for h, v in conn.execute(sa.select(Record.handle, Record.version))}
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_up_serves_the_portal_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    up(demo, "--patients", "15")  # set up here; the process below reuses it and serves
    port = free_port()
    command = [sys.executable, "-c", "from rxvault.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "demo", "up", "--dir", str(demo), "--port", str(port), "--patients", "15"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            with contextlib.suppress(queue.Empty):
                if lines.get(timeout=1).startswith("Serving the portal at "):
                    break
        portal = f"http://localhost:{port}"
        assert f"  portal     {portal}/\n" in output
        page = httpx.get(portal + "/", timeout=30)
        assert page.status_code == 200
        assert "<!doctype html>" in page.text.lower()
        health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=30)
        assert health.json()["status"] == "ok"
        # The patient logs in on the served portal's API; next-day syncs to this server.
        s = state(demo)
        client = PatientClient(portal)
        try:
            client.login(s["username"], s["password"])
            assert client.fetch().state == "live"
        finally:
            client.close()
        result = CliRunner().invoke(main, ["demo", "next-day", "--dir", str(demo)])
        assert result.exit_code == 0, result.output
        assert f"to the demo server at http://127.0.0.1:{port}" in result.output
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(5)
    assert process.stdout is not None
    process.stdout.close()
    text = "".join(output)
    assert "Traceback" not in text
    assert text.rstrip().endswith("stopped.")
    assert not (demo / "serving.json").exists()


def test_up_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            main, ["demo", "up", "--dir", str(tmp_path / "demo"), "--port", str(port)]
        )
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port" in result.output
    assert not (tmp_path / "demo").exists()  # refused before setting anything up


def test_next_day_without_a_demo_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "next-day", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no demo in" in result.output
    assert "rxvault demo up" in result.output


def test_reset_refuses_to_wipe_a_database_with_other_pharmacies(tmp_path: Path) -> None:
    from rxvault.server._admin import Admin
    from rxvault.server._db import create_db_engine, migrate, session_factory, transaction

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = create_db_engine(url)
    try:
        migrate(engine)
        for slug in ("main-street", "elm-street"):
            with transaction(session_factory(engine)) as s:
                Admin(s, b"k" * 32, dt.datetime.now(dt.UTC)).create_pharmacy(slug, slug)
    finally:
        engine.dispose()
    with pytest.raises(UserError, match="holds other pharmacies than the demo's \\(elm-street\\)"):
        _stack.wipe_database(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    assert "pharmacies" in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM pharmacies WHERE slug = 'elm-street'"))
    assert _stack.wipe_database(url)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("oracle://scott@127.0.0.1/x", "--database-url oracle://scott@127.0.0.1/x"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot connect to postgresql+psycopg://"),
    ],
)
def test_a_bad_database_url_is_refused_before_anything_is_set_up(
    tmp_path: Path, url: str, message: str
) -> None:
    demo = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["demo", "up", "--dir", str(demo), "--no-serve", "--database-url", url]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not demo.exists()


def test_demo_without_a_subcommand_is_demo_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int]] = []

    def probe(host: str, port: int) -> None:
        seen.append((host, port))
        raise UserError("stop here")

    monkeypatch.setattr(_stack, "check_port_free", probe)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 2, result.output
    assert seen == [("127.0.0.1", 8000)]  # up's defaults, serving
    help_text = CliRunner().invoke(main, ["demo", "--help"]).output
    for command in ("up", "next-day", "tables"):
        assert f"  {command} " in help_text


def test_tables_reads_the_demo_but_will_not_regenerate_its_pharmacy(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    args = ["demo", "tables", "--dir", str(demo), "--samples", "0", "--patients", "8"]
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0, shown.output
    assert "Generated the demo pharmacy" in shown.output
    (demo / "demo.json").write_text("{}", encoding="utf-8")  # as `demo up` leaves it
    refused = CliRunner().invoke(main, ["demo", "tables", "--dir", str(demo), "--reset"])
    assert refused.exit_code == 2
    assert "rxvault demo up --reset" in refused.output
