"""Harness 11, web attacks: an authorization sweep over every route of the app with every kind of
credential; cross-site requests over every state-changing route; session fixation and replay.

The routes are enumerated from the app itself (``app.routes``, recursively), not from a list in
this file: a new route fails the sweep until it is classified below (public, patient, or agent
with the scope protocol.md §3 gives it), and is then swept with every credential. The catch-alls
(``/api/{rest}`` and the portal's ``/{path}``) are swept too.

Brute force and credential stuffing are in ``test_login_attacks.py``; schemathesis with every
credential kind in ``test_schema_fuzz_credentials.py``; the existing spot checks are
``tests/server/test_authorization.py``, ``test_sessions.py``, ``test_http.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.server._models import Pharmacy
from rxvault.server._schemas import b64decode

from .conftest import PASSWORD, PharmacySide, Server, b64

COOKIE = "__Host-rxvault-session"
WRONG_KEY = b64(b"\x01" * 32)

# Every route of the app. A route missing here fails test_every_route_is_classified.
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/openapi.json"),
    ("HEAD", "/api/v1/openapi.json"),
    ("POST", "/api/v1/prelogin"),
    ("POST", "/api/v1/registration/start"),
    ("POST", "/api/v1/registration"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/logout"),
}
PATIENT = {
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/me/key-bundle"),
    ("GET", "/api/v1/me/block"),
    ("POST", "/api/v1/me/password/start"),
    ("POST", "/api/v1/me/password"),
    ("GET", "/api/v1/me/sessions"),
    ("DELETE", "/api/v1/me/sessions/{session_id}"),
}
AGENT_SCOPE = {  # protocol.md §3
    ("GET", "/api/v1/agent/pharmacy"): "directory",
    ("PUT", "/api/v1/agent/pharmacy-key"): "pharmacy-key",
    ("POST", "/api/v1/agent/enrollments"): "enroll",
    ("DELETE", "/api/v1/agent/enrollments/{lookup_id}"): "enroll",
    ("GET", "/api/v1/agent/key-directory"): "directory",
    ("PUT", "/api/v1/agent/batches/{batch_id}"): "upload",
    ("GET", "/api/v1/agent/records/{handle}"): "directory",
    ("POST", "/api/v1/agent/records/{handle}/restore"): "upload",
    ("POST", "/api/v1/agent/accounts/{handle}/unlock"): "enroll",
    ("POST", "/api/v1/agent/statement"): "upload",
    ("GET", "/api/v1/agent/statement"): "directory",
    ("GET", "/api/v1/agent/leaves"): "directory",
}
CATCH_ALL = {"/api/{rest:path}", "/{path:path}"}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route, walking included routers."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any]) -> None:
        for r in routes:
            if hasattr(r, "path"):
                for method in getattr(r, "methods", None) or ():
                    found.add((method, r.path))
            else:
                sub = getattr(r, "original_router", None) or getattr(r, "router", None)
                assert sub is not None, f"cannot walk {r!r}"
                walk(sub.routes)

    walk(app.app.routes)
    return found


@dataclass
class World:
    server: Server
    p1: PharmacySide
    p2: PharmacySide
    creds: dict[str, dict[str, str]] = field(default_factory=dict)
    handle_a: str = ""
    handle_b: str = ""
    open_lookup: str = ""
    session_ids: dict[str, str] = field(default_factory=dict)
    enrollment_json: dict[str, Any] = field(default_factory=dict)
    addresses: itertools.count = field(default_factory=lambda: itertools.count(1))
    _http: httpx.Client | None = None

    def new_open_enrollment(self) -> None:
        """An enrollment of the first pharmacy, not yet used, for the routes that name one."""
        code = fmt.new_enrollment_code()
        enrollment = fmt.derive_enrollment(code)
        self.open_lookup = enrollment.lookup_id
        self.enrollment_json = {
            "lookup_id": enrollment.lookup_id,
            "handle": self.p1.handle(f"OPEN-{enrollment.lookup_id[:6]}"),
            "pin_tag": b64(fmt.pin_tag(code, self.p1.key.public_bytes())),
            "expires_at": (self.server.clock.now() + dt.timedelta(days=30)).isoformat(),
        }
        r = self.p1.http.post(
            "/api/v1/agent/enrollments", json={"enrollments": [self.enrollment_json]}
        )
        assert r.status_code == 200, r.text

    def http(self) -> httpx.Client:
        """One in-process client, from a new address each time (so that the login limits of
        one address do not shape the sweep), without its own cookies."""
        if self._http is None:
            self._http = self.server.client()
        address = f"198.51.100.{next(self.addresses) % 250 + 1}"
        self._http._transport._inner.client = (address, 50000)  # type: ignore[attr-defined]
        self._http.cookies.clear()
        return self._http

    def send(self, cred: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Accept": "application/json", **self.creds[cred], **kwargs.pop("headers", {})}
        if method not in ("GET", "HEAD") and "content" not in kwargs:
            kwargs.setdefault("json", {})
        return self.http().request(method, path, headers=headers, **kwargs)


def _cookie(client: Any) -> str:
    value = client.http.cookies.get(COOKIE)
    assert value
    return str(value)


def _session_header(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={value}"}


@pytest.fixture
def world(server, pharmacy, patient_client) -> World:
    """Two pharmacies; patients A and B of the first; a session of every kind; tokens of every
    kind."""
    p1 = pharmacy
    p2 = PharmacySide(server, slug="other-town")
    p2.register_key()
    w = World(server, p1, p2)
    a, b = patient_client(), patient_client()
    a.register(p1.enroll("A"), "patient-a", PASSWORD)
    b.register(p1.enroll("B"), "patient-b", PASSWORD)
    w.handle_a, w.handle_b = p1.handle("A"), p1.handle("B")
    p1.upload(*p1.batch([p1.block("A", b'{"a": 1}'), p1.block("B", b'{"b": 2}')]))
    w.creds["none"] = {}
    w.creds["forged session"] = _session_header(base64.urlsafe_b64encode(os.urandom(32)).decode())
    # Sessions that timed out: idle (A logs in again, then waits) and absolute (12 hours).
    idle = patient_client()
    idle.login("patient-a", PASSWORD)
    server.clock.advance(minutes=14)
    a.me(), b.me()  # the live sessions are used meanwhile
    server.clock.advance(minutes=2)
    w.creds["idle-expired session"] = _session_header(_cookie(idle))
    # Logged out.
    gone = patient_client()
    gone.login("patient-a", PASSWORD)
    gone_cookie = _cookie(gone)
    gone.logout()
    w.creds["logged-out session"] = _session_header(gone_cookie)
    # Before a password change: the session that changed it and another one of the account.
    c = patient_client()
    c.register(p1.enroll("C"), "patient-c", PASSWORD)
    c_other = patient_client()
    c_other.login("patient-c", PASSWORD)
    before, other_before = _cookie(c), _cookie(c_other)
    c.change_password(PASSWORD, PASSWORD + " new")
    assert _cookie(c) != before
    w.creds["session before password change"] = _session_header(before)
    w.creds["other session before password change"] = _session_header(other_before)
    w.creds["patient A"] = _session_header(_cookie(a))
    w.creds["patient B"] = _session_header(_cookie(b))
    w.session_ids = {"A": a.sessions()[0]["id"], "B": b.sessions()[0]["id"]}
    with server.admin() as admin:
        revoked, row = admin.create_token(p1.slug)
        admin.revoke_token(p1.slug, row.id)
        admin.create_pharmacy("closed-shop", "Closed Shop")
        disabled, _ = admin.create_token("closed-shop")
        admin.set_pharmacy_disabled("closed-shop", True)
        for scope in AGENT_SCOPE.values():
            w.creds[f"token with only {scope}"] = {
                "Authorization": f"Bearer {admin.create_token(p1.slug, (scope,))[0]}"
            }
    w.creds["pharmacy token"] = {"Authorization": f"Bearer {p1.token}"}
    w.creds["other pharmacy token"] = {"Authorization": f"Bearer {p2.token}"}
    w.creds["revoked token"] = {"Authorization": f"Bearer {revoked}"}
    w.creds["disabled pharmacy token"] = {"Authorization": f"Bearer {disabled}"}
    w.creds["forged token"] = {"Authorization": "Bearer rxvat_" + "A" * 43}
    w.creds["patient A cookie as bearer"] = {"Authorization": f"Bearer {_cookie(a)}"}
    w.new_open_enrollment()
    return w


SESSION_DEAD = (
    "none",
    "forged session",
    "idle-expired session",
    "logged-out session",
    "session before password change",
    "other session before password change",
    "pharmacy token",
    "other pharmacy token",
    "forged token",
)
TOKEN_DEAD = (
    "none",
    "forged token",
    "revoked token",
    "disabled pharmacy token",
    "patient A",
    "patient B",
    "patient A cookie as bearer",
    "forged session",
)


def _patient_request(w: World, method: str, path: str) -> dict[str, Any]:
    if path == "/api/v1/me/password":
        return {
            "json": {
                "current_auth_key": WRONG_KEY,
                "new_auth_key": WRONG_KEY,
                "kdf": {"alg": "argon2id", "m": 65536, "t": 3, "p": 1},
                "key_bundle": b64(b"x" * 120),
            }
        }
    return {}


def _agent_request(w: World, cred: str, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """A well-formed request for the first pharmacy's resources (patient A, an open code)."""
    real = path.replace("{handle}", w.handle_a).replace("{lookup_id}", w.open_lookup)
    if "{batch_id}" in path:
        bid, data = w.p1.batch([w.p1.block("A", b'{"a": "sweep"}')])
        real = path.replace("{batch_id}", bid)
        return real, {
            "content": data,
            "headers": {"Content-Type": "application/octet-stream"},
        }
    if path.endswith("/pharmacy-key"):
        return real, {"json": {"public_key": b64(w.p1.key.public_bytes())}}
    if path.endswith("/enrollments"):
        return real, {"json": {"enrollments": [w.enrollment_json]}}
    if path.endswith("/statement") and method == "POST":
        return real, {"json": {"statement": b64(_statement_of_records(w))}}
    return real, {}


_statement_seq = itertools.count(1)


def _statement_of_records(w: World) -> bytes:
    """The first pharmacy's sync statement over the server's records as they are now."""
    from rxvault.server._statement import server_leaves

    with w.server.admin() as admin:
        pharmacy_id = admin.session.execute(
            sa.select(Pharmacy.id).where(Pharmacy.slug == w.p1.slug)
        ).scalar_one()
        leaves = server_leaves(admin.session, pharmacy_id)
    return fmt.make_statement(
        pharmacy_key=w.p1.key,
        seq=next(_statement_seq),
        as_of=w.server.clock.now(),
        leaves=leaves,
    )


# What the first pharmacy's full token gets, and what the other pharmacy's gets, on the first
# pharmacy's resources: (status, error code or None).
AGENT_OWN = {
    ("GET", "/api/v1/agent/pharmacy"): (200, None),
    ("PUT", "/api/v1/agent/pharmacy-key"): (200, None),
    ("POST", "/api/v1/agent/enrollments"): (200, None),
    ("DELETE", "/api/v1/agent/enrollments/{lookup_id}"): (204, None),
    ("GET", "/api/v1/agent/key-directory"): (200, None),
    ("PUT", "/api/v1/agent/batches/{batch_id}"): (200, None),
    ("GET", "/api/v1/agent/records/{handle}"): (200, None),
    ("POST", "/api/v1/agent/records/{handle}/restore"): (404, "not_restorable"),
    ("POST", "/api/v1/agent/accounts/{handle}/unlock"): (200, None),
    ("GET", "/api/v1/agent/statement"): (404, "not_found"),  # before any statement is sent
    ("POST", "/api/v1/agent/statement"): (200, None),
    ("GET", "/api/v1/agent/leaves"): (200, None),
}
AGENT_OTHER = {
    ("GET", "/api/v1/agent/pharmacy"): (200, None),  # its own pharmacy, checked below
    ("PUT", "/api/v1/agent/pharmacy-key"): (409, "pharmacy_key_exists"),
    ("POST", "/api/v1/agent/enrollments"): (409, "enrollment_conflict"),
    ("DELETE", "/api/v1/agent/enrollments/{lookup_id}"): (404, "not_found"),
    ("GET", "/api/v1/agent/key-directory"): (200, None),  # its own, empty of the first's
    ("PUT", "/api/v1/agent/batches/{batch_id}"): (422, "signature_invalid"),
    ("GET", "/api/v1/agent/records/{handle}"): (404, "not_found"),
    ("POST", "/api/v1/agent/records/{handle}/restore"): (404, "not_restorable"),
    ("POST", "/api/v1/agent/accounts/{handle}/unlock"): (404, "not_found"),
    ("GET", "/api/v1/agent/statement"): (404, "not_found"),  # it has none
    ("POST", "/api/v1/agent/statement"): (422, "signature_invalid"),
    ("GET", "/api/v1/agent/leaves"): (200, None),  # its own, without the first's
}


def _expect(r: httpx.Response, status: int, code: str | None, what: str) -> None:
    assert r.status_code == status, f"{what}: {r.status_code} {r.text[:300]}"
    if code is not None:
        assert r.json()["error"]["code"] == code, f"{what}: {r.text[:300]}"


def test_every_route_is_classified() -> None:
    from rxvault.server import Settings, create_app

    app = create_app(
        Settings(database_url="sqlite://", pepper=os.urandom(32)), check_database=False
    )
    app.app.state.engine.dispose()
    routes = app_routes(app)
    known = PUBLIC | PATIENT | set(AGENT_SCOPE)
    unclassified = {(m, p) for m, p in routes if (m, p) not in known and p not in CATCH_ALL}
    assert not unclassified, f"new routes: classify them in this sweep: {sorted(unclassified)}"
    assert known <= routes, f"routes gone: {sorted(known - routes)}"
    # Every route the schema publishes is one of them, and none is hidden from it but the
    # catch-alls and the schema itself.
    schema = app.app.openapi()
    published = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    hidden = {(m, p) for m, p in routes if (m, p) not in published and p not in CATCH_ALL}
    assert hidden <= {("GET", "/api/v1/openapi.json"), ("HEAD", "/api/v1/openapi.json")}
    assert published <= routes


def _patient_routes_with_every_credential(world: World) -> None:
    w = world
    for method, path in sorted(r for r in app_routes(w.server.app) if r in PATIENT):
        real = path.replace("{session_id}", w.session_ids["A"])
        for cred in SESSION_DEAD:
            r = w.send(cred, method, real, **_patient_request(w, method, path))
            _expect(r, 401, "not_authenticated", f"{cred} {method} {path}")
        # B's session on A's session id: as if it did not exist.
        if "{session_id}" in path:
            r = w.send("patient B", method, real)
            _expect(r, 404, "not_found", f"patient B {method} {path}")
            r = w.send("patient A", method, path.replace("{session_id}", "0" * 16))
            _expect(r, 404, "not_found", f"patient A {method} {path} (unknown id)")
            continue
        for cred, handle in (("patient A", w.handle_a), ("patient B", w.handle_b)):
            if path == "/api/v1/me/password":
                w.send(cred, "POST", "/api/v1/me/password/start")
            r = w.send(cred, method, real, **_patient_request(w, method, path))
            if path == "/api/v1/me/password":
                _expect(r, 401, "invalid_credentials", f"{cred} {method} {path}")
                continue
            _expect(r, 200, None, f"{cred} {method} {path}")
            body = r.json()
            # Only the caller's own account, whatever is asked.
            if "handle" in body:
                assert body["handle"] == handle, (cred, path, body)
            if path == "/api/v1/me/sessions":
                ids = {s["id"] for s in body["sessions"]}
                other = w.session_ids["B" if cred == "patient A" else "A"]
                assert other not in ids


def _agent_routes_with_every_credential(world: World) -> None:
    w = world
    for method, path in sorted(r for r in app_routes(w.server.app) if r in AGENT_SCOPE):
        scope = AGENT_SCOPE[(method, path)]
        for cred in TOKEN_DEAD:
            real, kwargs = _agent_request(w, cred, method, path)
            r = w.send(cred, method, real, **kwargs)
            _expect(r, 401, "invalid_token", f"{cred} {method} {path}")
            assert r.headers.get("www-authenticate", "").startswith("Bearer")
        for other_scope in sorted(set(AGENT_SCOPE.values()) - {scope}):
            cred = f"token with only {other_scope}"
            real, kwargs = _agent_request(w, cred, method, path)
            r = w.send(cred, method, real, **kwargs)
            _expect(r, 403, "insufficient_scope", f"{cred} {method} {path}")
        real, kwargs = _agent_request(w, "other pharmacy token", method, path)
        r = w.send("other pharmacy token", method, real, **kwargs)
        _expect(r, *AGENT_OTHER[(method, path)], f"other pharmacy {method} {path}")
        if "{handle}" in path:
            # The same answer as for a handle that exists nowhere: no existence oracle.
            nowhere = w.send("other pharmacy token", method, path.replace("{handle}", "e" * 32))
            assert (nowhere.status_code, nowhere.json()["error"]["code"]) == (
                r.status_code,
                r.json()["error"]["code"],
            )
        if path == "/api/v1/agent/pharmacy":
            assert r.json()["slug"] == "other-town"
        if path == "/api/v1/agent/key-directory":
            handles = {e["handle"] for e in r.json()["entries"]}
            assert not handles & {w.handle_a, w.handle_b}
        if path == "/api/v1/agent/leaves":
            leaves = b64decode(r.json()["leaves"])
            assert w.handle_a.encode() not in leaves
            assert w.handle_b.encode() not in leaves
        # The token with exactly this scope, then the full token: the expected answer.
        for cred in (f"token with only {scope}", "pharmacy token"):
            real, kwargs = _agent_request(w, cred, method, path)
            if path.endswith("{lookup_id}") and cred == "pharmacy token":
                status, code = 404, "not_found"  # revoked a moment ago by the scoped token
            else:
                status, code = AGENT_OWN[(method, path)]
            r = w.send(cred, method, real, **kwargs)
            _expect(r, status, code, f"{cred} {method} {path}")


def _public_routes_ignore_every_credential(world: World) -> None:
    """Public routes answer the same whoever calls; no credential changes what they reveal."""
    w = world
    creds = sorted(w.creds)
    for i, cred in enumerate(creds):
        r = w.send(cred, "GET", "/api/v1/health")
        _expect(r, 200, None, f"{cred} health")
        r = w.send(cred, "GET", "/api/v1/openapi.json")
        _expect(r, 200, None, f"{cred} openapi")
        r = w.send(cred, "POST", "/api/v1/prelogin", json={"username": "patient-a"})
        _expect(r, 200, None, f"{cred} prelogin")
        r = w.send(cred, "POST", "/api/v1/registration/start", json={"lookup_id": "0" * 32})
        _expect(r, 404, "enrollment_invalid", f"{cred} registration/start")
        r = w.send(
            cred,
            "POST",
            "/api/v1/registration",
            json={
                "lookup_id": "0" * 32,
                "username": f"someone-{i}",
                "kdf": {"alg": "argon2id", "m": 65536, "t": 3, "p": 1},
                "auth_key": WRONG_KEY,
                "public_key": b64(b"\x02" * 32),
                "binding": b64(b"\x03" * 32),
                "key_bundle": b64(b"\x04" * 120),
            },
        )
        _expect(r, 404, "enrollment_invalid", f"{cred} registration")
        r = w.send(
            cred, "POST", "/api/v1/login", json={"username": f"nobody-{i}", "auth_key": WRONG_KEY}
        )
        _expect(r, 401, "invalid_credentials", f"{cred} login")
        assert "set-cookie" not in r.headers
    # Logout with any credential but a live session: 204, and no live session is touched.
    for cred in creds:
        if cred.startswith("patient"):
            continue
        r = w.send(cred, "POST", "/api/v1/logout")
        _expect(r, 204, None, f"{cred} logout")
    assert w.send("patient A", "GET", "/api/v1/me").status_code == 200
    assert w.send("patient B", "GET", "/api/v1/me").status_code == 200
    # The catch-alls: unknown API paths are 404 whoever asks, never a portal page.
    for cred in ("none", "patient A", "pharmacy token", "revoked token"):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            r = w.send(cred, method, "/api/v1/admin/accounts")
            _expect(r, 404, "not_found", f"{cred} {method} unknown api path")
    # And logout with a live session ends exactly that one.
    r = w.send("patient A", "POST", "/api/v1/logout")
    _expect(r, 204, None, "patient A logout")
    _expect(w.send("patient A", "GET", "/api/v1/me"), 401, "not_authenticated", "A after logout")
    _expect(w.send("patient B", "GET", "/api/v1/me"), 200, None, "B after A's logout")


# --- cross-site requests ---------------------------------------------------------------------

CROSS_SITE = (
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "https://portal.test.evil.example"},
    {"Origin": "http://portal.test"},  # another scheme is another origin
    {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
)


def _cross_site_state_changes_are_refused_on_every_route(world: World) -> None:
    """Every state-changing route, with the credential that would succeed, refuses a cross-site
    request before doing anything; a plain form's content type is refused too."""
    w = world
    changing = sorted(
        (m, p)
        for m, p in app_routes(w.server.app)
        if m in ("POST", "PUT", "PATCH", "DELETE") and p not in CATCH_ALL
    )
    assert len(changing) >= 14
    w.new_open_enrollment()
    version = w.p1.http.get(f"/api/v1/agent/records/{w.handle_a}").json()["version"]
    for method, path in changing:
        if (method, path) in AGENT_SCOPE:
            cred = "pharmacy token"
            real, kwargs = _agent_request(w, cred, method, path)
        else:
            cred = "patient A"
            real = path.replace("{session_id}", w.session_ids["A"])
            kwargs = _patient_request(w, method, path) or {"json": {}}
        for headers in CROSS_SITE:
            extra = {**kwargs, "headers": {**kwargs.get("headers", {}), **headers}}
            r = w.send(cred, method, real, **extra)
            _expect(r, 403, "cross_site_refused", f"{headers} {method} {path}")
            assert "access-control-allow-origin" not in r.headers
        if (method, path) not in AGENT_SCOPE:
            # What an HTML form can send: refused whatever the route.
            r = w.send(
                cred,
                method,
                real,
                content=b"username=patient-a",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            _expect(r, 415, "unsupported_media_type", f"form {method} {path}")
    # Nothing happened: A's session lives, the open enrollment is still open, no batch applied.
    _expect(w.send("patient A", "GET", "/api/v1/me"), 200, None, "A after the attempts")
    state = w.p1.http.get(f"/api/v1/agent/records/{w.handle_a}").json()
    assert state["version"] == version
    r = w.p1.http.request("DELETE", f"/api/v1/agent/enrollments/{w.open_lookup}")
    assert r.status_code == 204


def _no_cors_grant_to_another_origin(world: World) -> None:
    w = world
    evil = {"Origin": "https://evil.example"}
    for method, path in (("GET", "/api/v1/me/block"), ("GET", "/api/v1/me/key-bundle")):
        r = w.send("patient A", method, path, headers=evil)
        assert not any(h.startswith("access-control-") for h in r.headers), r.headers
    preflight = w.http().request(
        "OPTIONS",
        "/api/v1/me/password",
        headers={
            **evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code in (404, 405)
    assert not any(h.startswith("access-control-") for h in preflight.headers)


# --- session fixation and replay --------------------------------------------------------------


def _session_fixation_is_impossible(world: World, patient_client) -> None:
    """A cookie planted before login (random, or the attacker's own live session) is never
    promoted: login issues a new token, the planted one stays what it was."""
    w = world
    victim = patient_client()
    planted = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    victim.http.cookies.set(COOKIE, planted, domain="portal.test")
    victim.login("patient-b", PASSWORD)
    assert _cookie(victim) != planted
    _expect(w.send("none", "GET", "/api/v1/me", headers=_session_header(planted)), 401, None, "x")
    # The attacker plants their own session (patient A) in the victim's browser.
    attacker_cookie = w.creds["patient A"]["Cookie"].split("=", 1)[1]
    victim2 = patient_client()
    victim2.http.cookies.set(COOKIE, attacker_cookie, domain="portal.test")
    victim2.login("patient-b", PASSWORD)
    assert _cookie(victim2) != attacker_cookie
    r = w.send("patient A", "GET", "/api/v1/me")
    assert r.json()["username"] == "patient-a"  # still the attacker's own, not the victim's
    assert victim2.me()["username"] == "patient-b"


def _no_replay_after_logout_timeout_or_password_change(world: World) -> None:
    """The dead sessions of the sweep stay dead, also after the account is used again (a new
    login does not revive an old token) and across a later password change back."""
    w = world
    for cred in (
        "logged-out session",
        "idle-expired session",
        "session before password change",
        "other session before password change",
    ):
        for path in ("/api/v1/me", "/api/v1/me/block", "/api/v1/me/key-bundle"):
            _expect(w.send(cred, "GET", path), 401, "not_authenticated", f"{cred} {path}")
    # (The absolute timeout is tests/server/test_sessions.py.)


def test_web_attack_sweep(world: World, patient_client) -> None:
    """One world per database (its patients cost an Argon2id each), swept in an order where
    each part leaves what the next needs: sessions stay live until the public-route part logs
    patient A out, and the replay part ends with the absolute timeout."""
    _patient_routes_with_every_credential(world)
    _agent_routes_with_every_credential(world)
    _cross_site_state_changes_are_refused_on_every_route(world)
    _no_cors_grant_to_another_origin(world)
    _session_fixation_is_impossible(world, patient_client)
    _public_routes_ignore_every_credential(world)
    _no_replay_after_logout_timeout_or_password_change(world)
