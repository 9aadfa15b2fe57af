"""Two server processes (uvicorn, real sockets) on one database agree on sessions and on login
rate limits: nothing that must be shared lives in process memory."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
from collections.abc import Iterator

import httpx
import pytest

from rxvault.client import PatientClient
from server_process import server_process

from .conftest import PharmacySide, Server

PASSWORD = "correct horse battery staple"
COOKIE = "__Host-rxvault-session"


class CookieCarrier:
    """Carries the session cookie by hand: the servers speak plain HTTP on loopback here, and
    a cookie jar would (rightly) keep a ``Secure`` cookie off an ``http://`` URL."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.clients: list[httpx.Client] = []

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def client(self, base_url: str) -> httpx.Client:
        def on_request(request: httpx.Request) -> None:
            if self.value is not None:
                request.headers["Cookie"] = f"{COOKIE}={self.value}"

        def on_response(response: httpx.Response) -> None:
            header = response.headers.get("set-cookie", "")
            if header.startswith(f"{COOKIE}="):
                value = header.split(";")[0].split("=", 1)[1].strip('"')
                self.value = value or None

        client = httpx.Client(
            base_url=base_url,
            timeout=60,
            event_hooks={"request": [on_request], "response": [on_response]},
        )
        self.clients.append(client)
        return client


@pytest.fixture(scope="module")
def two_servers(database_url) -> Iterator[tuple[str, str, Server]]:
    """Two server processes for the whole module (each test uses its own pharmacy)."""
    pepper = os.urandom(32)
    with contextlib.ExitStack() as servers:
        urls = [servers.enter_context(server_process(database_url, pepper)) for _ in range(2)]
        # An in-process app on the same database, for the pharmacy's setup.
        from rxvault.server import Settings

        local = Server(database_url, Settings(database_url=database_url, pepper=pepper))
        yield urls[0], urls[1], local
        local.close()


def test_two_processes_share_sessions_and_rate_limits(two_servers) -> None:
    url_a, url_b, local = two_servers
    local.clock.current = dt.datetime.now(dt.UTC)  # the subprocesses use the real clock
    pharmacy = PharmacySide(local)
    pharmacy.register_key()
    code = pharmacy.enroll("P1", days=30)

    carrier = CookieCarrier()
    try:
        _sessions_and_limits(carrier, url_a, url_b, code)
    finally:
        carrier.close()


def _sessions_and_limits(carrier: CookieCarrier, url_a: str, url_b: str, code: str) -> None:
    on_a = PatientClient(http=carrier.client(url_a))
    on_a.register(code, "ivy", PASSWORD)
    on_b = PatientClient(http=carrier.client(url_b))
    # The session opened by process A is valid on process B ...
    assert on_b.me()["username"] == "ivy"
    # ... logging out on B ends it on A.
    on_b.logout()
    assert carrier.client(url_a).get("/api/v1/me").status_code == 401

    # Failed logins alternate between the processes; the shared count blocks on either.
    wrong = base64.urlsafe_b64encode(b"\2" * 32).rstrip(b"=").decode()
    clients = [CookieCarrier().client(url_a), CookieCarrier().client(url_b)]
    carrier.clients.extend(clients)
    statuses = [
        clients[i % 2]
        .post("/api/v1/login", json={"username": "ivy", "auth_key": wrong})
        .status_code
        for i in range(5)
    ]
    assert statuses == [401] * 5
    blocked = [
        c.post("/api/v1/login", json={"username": "ivy", "auth_key": wrong}) for c in clients
    ]
    assert [r.status_code for r in blocked] == [429, 429]


def test_patient_command_line_against_a_running_server(two_servers, tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from rxvault import format as fmt
    from rxvault.cli import main

    url_a, _, local = two_servers
    local.clock.current = dt.datetime.now(dt.UTC)
    pharmacy = PharmacySide(local, slug="command-line")
    pharmacy.register_key()
    code = pharmacy.enroll("P7", days=30)
    env = {
        "RXVAULT_PASSWORD": PASSWORD,
        "RXVAULT_SERVER": url_a,
        "RXVAULT_PATIENT_STATE": str(tmp_path / "patient-versions.json"),
    }
    runner = CliRunner()
    result = runner.invoke(
        main, ["patient", "register", "--username", "June", "--code", code], env=env
    )
    assert result.exit_code == 0, result.output
    assert "registered june" in result.output
    result = runner.invoke(main, ["patient", "fetch", "--username", "june"], env=env)
    assert result.exit_code == 2
    assert "not published your records yet" in result.output
    document = fmt.canonical_json({"rx": [{"drug": "lisinopril 10 mg"}]})
    assert pharmacy.upload(*pharmacy.batch([pharmacy.block("P7", document)])).status_code == 200
    out = tmp_path / "records.json"
    result = runner.invoke(
        main, ["patient", "fetch", "--username", "june", "-o", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {"rx": [{"drug": "lisinopril 10 mg"}]}
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    result = runner.invoke(
        main,
        ["patient", "fetch", "--username", "june"],
        env={**env, "RXVAULT_PASSWORD": "wrong password"},
    )
    assert result.exit_code == 2
    assert "rxvault: error: The username or password is not correct." in result.output
    result = runner.invoke(
        main,
        ["patient", "fetch", "--username", "june", "--server", "http://portal.example"],
        env=env,
    )
    assert result.exit_code == 2
    assert "https://" in result.output
