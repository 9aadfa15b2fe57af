"""Harness 10, the stolen database: after a realistic run, nothing from the source, no password,
no code, no token and no key is in the server's database, its audit log or its logs; and without
the pepper no offline check of a password guess is possible (shown by trying).

The run: ``rxvault serve`` in its own process (stdout and stderr captured, request log on), a
generated demo pharmacy, the real agent (init, enroll, sync), several patients registered and
logged in with the Python client, a fetch, the next day's changes and sync, a password change, a
failed login, a logout. Then every table of the live database (reflected, so a table outside the
models is dumped too), and the captured logs, are searched for every distinctive value of every
source table (case-insensitive in text; exact in binary columns; also hex and base64 forms of the
longer ones), and for every secret of the run in raw, hex and base64 forms.

Runs on each database of ``RXVAULT_TEST_DATABASES``. ``tests/server/test_no_secrets.py`` is the
in-process version with a hand-made record; this one uses the whole system.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.agent import AgentContext, Reporter, SyncOptions, enroll, init_home, run_sync
from rxvault.client import ClientError, PatientClient
from rxvault.dbf import open_table
from rxvault.demo import TABLES, generate
from rxvault.demo._next_day import next_day
from rxvault.server import Settings, create_app
from rxvault.server._admin import Admin
from rxvault.server._db import transaction
from server_process import start_server

QUIET = Reporter(interactive=False, quiet=True)
PATIENTS = 3


def source_values(source: Path) -> set[str]:
    """Every distinctive value of every source table: text of 4+ characters that is not only
    digits, digit strings of 7+ (phones, NDCs), dates in the usual written forms."""
    values: set[str] = set()
    for table in TABLES:
        with open_table(source / table.file) as t:
            for row in t.rows():
                for value in row.values():
                    if isinstance(value, str):
                        text = value.strip()
                        if len(text) >= 7 or (len(text) >= 4 and not text.isdigit()):
                            values.add(text)
                    elif isinstance(value, dt.datetime | dt.date):
                        day = value if isinstance(value, dt.date) else value.date()
                        values.update(
                            {
                                day.isoformat(),
                                day.strftime("%Y%m%d"),
                                day.strftime("%m/%d/%Y"),
                            }
                        )
    return values


def forms(secret: bytes) -> list[bytes]:
    out = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    out += [base64.b64encode(secret).rstrip(b"="), base64.urlsafe_b64encode(secret).rstrip(b"=")]
    return [f for f in out if len(f) >= 8]


def dump(database_url: str) -> tuple[bytes, bytes, dict[str, int]]:
    """(text of every text value, bytes of every binary value, rows per table) of every table
    in the live database."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    meta = sa.MetaData()
    text: list[str] = []
    binary: list[bytes] = []
    counts: dict[str, int] = {}
    try:
        meta.reflect(engine)
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                rows = conn.execute(sa.select(table)).all()
                counts[table.name] = len(rows)
                for row in rows:
                    for value in row:
                        if isinstance(value, bytes | bytearray | memoryview):
                            binary.append(bytes(value))
                        elif value is not None:
                            text.append(str(value))
    finally:
        engine.dispose()
    return "\n".join(text).encode(), b"\n".join(binary), counts


def test_a_stolen_database_and_logs_hold_nothing(database_url: str, tmp_path: Path) -> None:
    _stolen(database_url, tmp_path, patients=PATIENTS, demo_size=30, days=1)


@pytest.mark.long
def test_a_stolen_database_and_logs_hold_nothing_long(database_url: str, tmp_path: Path) -> None:
    """``RXVAULT_STOLEN_PATIENTS`` registered (default 10) of a demo pharmacy of
    ``RXVAULT_STOLEN_DEMO`` patients (default 300), over ``RXVAULT_STOLEN_DAYS`` days
    (default 5)."""
    _stolen(
        database_url,
        tmp_path,
        patients=int(os.environ.get("RXVAULT_STOLEN_PATIENTS", "10")),
        demo_size=int(os.environ.get("RXVAULT_STOLEN_DEMO", "300")),
        days=int(os.environ.get("RXVAULT_STOLEN_DAYS", "5")),
    )


def _stolen(database_url: str, tmp_path: Path, *, patients: int, demo_size: int, days: int) -> None:
    pepper = os.urandom(32)
    run_started = dt.datetime.now(dt.UTC).date()
    settings = Settings(database_url=database_url, pepper=pepper)
    admin_app = create_app(settings)
    ctx = admin_app.app.state.rxvault  # type: ignore[attr-defined]
    with transaction(ctx.db) as s:
        admin = Admin(s, ctx.audit_key, ctx.now())
        admin.create_pharmacy("demo-pharmacy", "Demo Pharmacy")
        token, _ = admin.create_token("demo-pharmacy")
    admin_app.app.state.engine.dispose()  # type: ignore[attr-defined]

    source = tmp_path / "pharmacy"
    generate(source, patients=demo_size, seed=23)
    logs = tmp_path / "logs"
    logs.mkdir()
    secrets: dict[str, bytes] = {"pepper": pepper, "api token": token.encode()}
    # ``rxvault serve`` as an operator runs it, its stdout and stderr in the log.
    with start_server(database_url, pepper, logs / "server.log", command="rxvault serve") as server:
        url = server.url
        home = tmp_path / "agent"
        init_home(
            home,
            pharmacy_name="Demo Pharmacy",
            server_url=url,
            source_dir=source,
            token=token,
        )
        agent = AgentContext.load(home)
        secrets["pharmacy private key"] = agent.key.private_bytes()
        secrets["handle secret"] = agent.handle_secret
        summary = run_sync(agent, SyncOptions(), QUIET)
        assert summary.exit_code == 0, summary.warnings
        ids = summary_ids(agent)[:patients]
        made = enroll(agent, ids, days=30)
        clients: list[tuple[PatientClient, str, str]] = []
        for i, e in enumerate(made):
            code = fmt.parse_enrollment_code(e.code_text)
            enr = fmt.derive_enrollment(code)
            secrets[f"code {i}"] = code.text.encode()
            secrets[f"code {i} compact"] = code.compact.encode()
            secrets[f"code {i} secret"] = code.secret
            secrets[f"binding key {i}"] = enr.binding_key
            secrets[f"pin key {i}"] = enr.pin_key
            password = f"Unique-Passphrase-{i}-{os.urandom(4).hex()}"
            secrets[f"password {i}"] = password.encode()
            client = PatientClient(url)
            client.register(e.code_text, f"demo.patient{i}", password)
            clients.append((client, f"demo.patient{i}", password))
        assert run_sync(agent, SyncOptions(), QUIET).uploaded == patients
        for client, name, password in clients:
            client.login(name, password)
            assert client.fetch().state == "live"
        for day in range(days):
            next_day(source, seed=5 + day)
            assert run_sync(agent, SyncOptions(), QUIET).exit_code == 0
            for client, name, password in clients:
                if client.http.get("/api/v1/me").status_code != 200:
                    client.login(name, password)  # (a long run outlives the idle timeout)
                assert client.fetch().state == "live"
        # A password change, a failed login, a logout.
        first, first_name, first_password = clients[0]
        new_password = "Another-Unique-Passphrase-" + os.urandom(4).hex()
        secrets["new password"] = new_password.encode()
        first.change_password(first_password, new_password)
        first.login(first_name, new_password)
        wrong = PatientClient(url)
        with pytest.raises(ClientError):
            wrong.login(first_name, "Wrong-Guess-" + os.urandom(4).hex())
        clients.append((wrong, first_name, ""))
        clients[1][0].logout()
        for i, (client, _, _) in enumerate(clients):
            for j, (auth_key, unlock_key) in enumerate(client._auth_cache.values()):
                secrets[f"auth key {i}.{j}"] = auth_key
                secrets[f"unlock key {i}.{j}"] = unlock_key
            if client.unlocked is not None:
                secrets[f"private key {i}"] = client.unlocked.private_key
            session = _session_value(client)
            if session:
                secrets[f"session token {i}"] = session.encode()
        for i, (client, _, _) in enumerate(clients[:patients]):
            if client.unlocked is None:
                continue
            bundle = client.http.get("/api/v1/me/key-bundle").json()
            secrets[f"server share {i}"] = base64.urlsafe_b64decode(bundle["server_share"] + "==")
        # A control: the source values are what the patient's own records show.
        shown = (clients[2][0].fetch().document or b"").lower()
        final_source = source_values(source)
        assert sum(v.lower().encode() in shown for v in final_source) >= 10
        for client, _, _ in clients:
            client.close()
    text, binary, counts = dump(database_url)
    log_text = (logs / "server.log").read_bytes()
    agent_log = (home / "logs" / "agent.log").read_bytes() if (home / "logs").exists() else b""

    # The run really happened and was logged; the dump holds what it should (so a search in
    # it can find something).
    assert b"demo.patient0" in text
    assert b"demo pharmacy" in text.lower()
    assert counts["accounts"] == patients
    assert counts["records"] >= patients
    assert counts["audit_log"] > 20
    assert counts["sessions"] >= 1
    assert b"/api/v1/login" in log_text, log_text[-2000:]
    assert b"/api/v1/agent/batches/" in log_text

    # The server's own timestamps (ISO dates) name the days of the run; a source date that is
    # one of those days (a fill made "today" by the next-day changes) is not distinctive in ISO
    # form. Its other written forms are still searched.
    run_days = {
        (run_started + dt.timedelta(days=d)).isoformat()
        for d in range(-1, (dt.datetime.now(dt.UTC).date() - run_started).days + 2)
    }
    # (The same for a time stamp of the run written into the source, e.g. a record's "changed
    # at": the server stamps its own rows with the same clock.)
    final_source = {v for v in final_source if v[:10] not in run_days}
    lower_text = text.lower()
    lower_logs = log_text.lower()
    assert len(final_source) > 500
    found = []
    for value in sorted(final_source):
        v = value.lower().encode()
        if v in lower_text or v in lower_logs or value.encode() in binary:
            found.append(value)
            continue
        if len(value) >= 8:
            for form in forms(value.encode()):
                if form in text or form in binary or form in log_text:
                    found.append(f"{value} ({form!r})")
    assert not found, f"source values in the stolen database or logs: {found[:20]}"
    print(
        f"searched {len(final_source)} source values and {len(secrets)} secrets in "
        f"{sum(counts.values())} rows of {len(counts)} tables ({len(text) + len(binary)} bytes) "
        f"and {len(log_text)} bytes of logs"
    )
    for name, secret in secrets.items():
        for form in forms(secret):
            assert form not in text, f"{name} in a text column"
            assert form not in binary, f"{name} in a binary column"
            assert form not in log_text, f"{name} in the server's logs"
    assert b"Unique-Passphrase" not in agent_log

    offline_guessing_needs_the_pepper(database_url, pepper, first_name, new_password)


def summary_ids(agent: AgentContext) -> list[str]:
    from rxvault.agent import prepare, read_source

    mapping = agent.mapping()
    docs = prepare(mapping, read_source(mapping, agent.config.source_dir), "Demo Pharmacy")
    return list(docs.patient_ids)


def _session_value(client: PatientClient) -> str:
    """The session token the client holds (the loopback client keeps it by hand)."""
    hooks = client.http.event_hooks.get("request", [])
    request = httpx.Request("GET", "http://127.0.0.1/")
    for hook in hooks:
        hook(request)
    cookie = request.headers.get("cookie", "")
    return cookie.partition("=")[2]


def offline_guessing_needs_the_pepper(
    database_url: str, pepper: bytes, username: str, password: str
) -> None:
    """With the stolen row and the right password, but not the pepper, no computation tells
    the right password from a wrong one; with the pepper the same computation does (so the
    check can fail)."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT salt, kdf_memory_kib, kdf_iterations, kdf_parallelism, verifier, "
                    "key_bundle FROM accounts "
                    "WHERE username = :u"
                ),
                {"u": username},
            ).one()
    finally:
        engine.dispose()
    salt, m, t, p, verifier, bundle = (
        bytes(row[0]),
        row[1],
        row[2],
        row[3],
        bytes(row[4]),
        bytes(row[5]),
    )
    params = fmt.KdfParams(memory_kib=m, iterations=t, parallelism=p)
    guesses = [password, password + "!"]
    keys = {g: fmt.derive_client_keys(g, salt, params) for g in guesses}

    def attempts(g: str, candidate_pepper: bytes | None) -> dict[str, Any]:
        k = keys[g]
        out: dict[str, Any] = {}
        if candidate_pepper is None:
            # What an attacker without the pepper can compute from the guess and the row.
            out["sha256(auth)"] = hashlib.sha256(k.auth_key).digest()
            out["sha256(salt+auth)"] = hashlib.sha256(salt + k.auth_key).digest()
            out["hmac(salt, auth)"] = hmac.new(salt, k.auth_key, "sha256").digest()
            out["hmac(auth, salt)"] = hmac.new(k.auth_key, salt, "sha256").digest()
            out["auth key"] = k.auth_key
            out["verifier, empty pepper"] = fmt.auth_verifier(b"\0" * 32, salt, k.auth_key)
        else:
            out["verifier"] = fmt.auth_verifier(candidate_pepper, salt, k.auth_key)
        share = fmt.server_key_share(candidate_pepper or b"\0" * 32, salt)
        try:
            fmt.unwrap_key_bundle(
                bundle, unlock_key=k.unlock_key, server_share=share, account=username
            )
            out["bundle opens"] = True
        except fmt.DecryptionFailed:
            out["bundle opens"] = False
        return out

    for wrong_pepper in (None, os.urandom(32), pepper[:-1] + bytes([pepper[-1] ^ 1])):
        for g in guesses:
            result = attempts(g, wrong_pepper)
            assert result.pop("bundle opens") is False, g
            assert verifier not in result.values(), (g, result.keys())
    # With the pepper the right password, and only it, matches and opens.
    for g in guesses:
        result = attempts(g, pepper)
        assert (result["verifier"] == verifier) == (g == password)
        assert result["bundle opens"] == (g == password)
