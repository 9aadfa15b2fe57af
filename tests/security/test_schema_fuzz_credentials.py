"""Harness 11, schemathesis with every credential kind: every operation of the published OpenAPI
schema, generated requests sent with no credential, a patient's session, another patient's,
a logged-out session, a forged cookie, the pharmacy's token, another pharmacy's, a revoked
token, and the patient's cookie together with the pharmacy's token. Never a 500; every error in
the one JSON shape; and no 2xx on a protected route for a credential that must not open it (an
authorization bypass found by generated input, not only by the hand-made sweep).

``tests/server/test_schema_fuzz.py`` fuzzes with both credentials at once and with none. That
every route is in the schema is checked by ``test_web_attacks.py::test_every_route_is_classified``.
Short form: 3 examples per operation. Long form (``pytest -m long``): ``RXVAULT_FUZZ_EXAMPLES``
per operation (default 300).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from rxvault.client import PatientClient
from rxvault.server import Settings, create_app

from .conftest import PASSWORD, PharmacySide, Server
from .test_web_attacks import AGENT_SCOPE, PATIENT

COOKIE = "__Host-rxvault-session"


def _schema() -> dict[str, Any]:
    app = create_app(
        Settings(database_url="sqlite://", pepper=os.urandom(32)), check_database=False
    )
    try:
        return app.app.openapi()  # type: ignore[attr-defined, no-any-return]
    finally:
        app.app.state.engine.dispose()  # type: ignore[attr-defined]


schema = schemathesis.openapi.from_dict(_schema())
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]
PROTECTED_BY_SESSION = {p for _, p in PATIENT}
PROTECTED_BY_TOKEN = {p for _, p in AGENT_SCOPE}
# Credentials that must open no protected route (a patient's cookie opens no agent route, a
# token no patient route: checked per route below).
DEAD = ("none", "logged-out session", "forged session", "revoked token", "forged token")


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only (the generated input is about the app's validation and authorization;
    ``tests/server/test_schema_fuzz.py`` runs on every database)."""
    from rxvault.server._db import create_db_engine, migrate

    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'server.db'}"
    engine = create_db_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="module")
def world(database_url: str) -> Iterator[tuple[Server, dict[str, dict[str, str]]]]:
    srv = Server(database_url)
    p1 = PharmacySide(srv, slug="fuzz-one")
    p1.register_key()
    p2 = PharmacySide(srv, slug="fuzz-two")
    p2.register_key()
    cache: dict[Any, Any] = {}
    a = PatientClient(http=srv.client(), key_cache=cache)
    a.register(p1.enroll("A"), "fuzz-a", PASSWORD)
    gone = PatientClient(http=srv.client(), key_cache=cache)
    gone.login("fuzz-a", PASSWORD)
    gone_cookie = gone.http.cookies.get(COOKIE)
    gone.logout()
    p1.upload(*p1.batch([p1.block("A", b'{"fuzz": true}')]))
    with srv.admin() as admin:
        revoked, row = admin.create_token(p1.slug)
        admin.revoke_token(p1.slug, row.id)
    cookie = a.http.cookies.get(COOKIE)
    creds = {
        "none": {},
        "patient": {"Cookie": f"{COOKIE}={cookie}"},
        "logged-out session": {"Cookie": f"{COOKIE}={gone_cookie}"},
        "forged session": {"Cookie": f"{COOKIE}={'A' * 43}"},
        "pharmacy token": {"Authorization": f"Bearer {p1.token}"},
        "other pharmacy token": {"Authorization": f"Bearer {p2.token}"},
        "revoked token": {"Authorization": f"Bearer {revoked}"},
        "forged token": {"Authorization": "Bearer rxvat_" + "B" * 43},
        "patient and pharmacy": {
            "Cookie": f"{COOKIE}={cookie}",
            "Authorization": f"Bearer {p1.token}",
        },
    }
    yield srv, creds
    srv.close()


@pytest.fixture(scope="module")
def http(world: tuple[Server, dict[str, dict[str, str]]]) -> Any:
    return world[0].client("203.0.113.200")


def _send(case: Any, http: Any, creds: dict[str, dict[str, str]]) -> None:
    kwargs = case.as_transport_kwargs(base_url=str(http.base_url).rstrip("/"))
    base_headers = {
        k: v
        for k, v in kwargs.get("headers", {}).items()
        if k.lower() not in {"connection", "accept-encoding", "cookie", "authorization"}
    }
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    for kind, cred in creds.items():
        http.cookies.clear()
        response = http.request(
            kwargs["method"],
            kwargs["url"],
            headers={**base_headers, **cred},
            params=kwargs.get("params"),
            **body,
        )
        what = (kind, case.method, case.path, response.status_code, response.text[:300])
        assert response.status_code < 500, what
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            error = response.json()["error"]
            assert set(error) <= {"code", "message", "request_id", "details"}, what
        if case.path in PROTECTED_BY_SESSION and (kind in DEAD or "token" in kind):
            assert response.status_code >= 400, what
        if case.path in PROTECTED_BY_TOKEN and (kind in DEAD or kind == "patient"):
            assert response.status_code >= 400, what


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=HEALTH, database=None)
def test_every_operation_with_every_credential(case, world, http) -> None:
    _send(case, http, world[1])


@pytest.mark.long
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("RXVAULT_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=HEALTH,
    database=None,
)
def test_every_operation_with_every_credential_long(case, world, http) -> None:
    _send(case, http, world[1])
