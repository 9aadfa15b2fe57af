"""Sessions: cookie attributes, idle and absolute timeouts, logout, listing and ending sessions,
password change ending the other sessions."""

from __future__ import annotations

import pytest

from rxvault.client import ClientError

PASSWORD = "correct horse battery staple"
COOKIE = "__Host-rxvault-session"


@pytest.fixture
def alice(server, pharmacy, patient_client):
    client = patient_client()
    client.register(pharmacy.enroll("P1"), "alice", PASSWORD)
    return client


def test_login_sets_a_strict_host_cookie(server, alice, patient_client) -> None:
    other = patient_client()
    pre = other.http.post("/api/v1/prelogin", json={"username": "alice"}).json()
    assert set(pre) == {"salt", "kdf"}
    other.login("alice", PASSWORD)
    r = other.http.get("/api/v1/me")
    assert r.status_code == 200
    # Log in again by hand to see the Set-Cookie header itself.
    auth_key = next(iter(other._auth_cache.values()))[0]
    import base64

    raw = other.http.post(
        "/api/v1/login",
        json={
            "username": "alice",
            "auth_key": base64.urlsafe_b64encode(auth_key).rstrip(b"=").decode(),
        },
    )
    cookie = raw.headers["set-cookie"]
    parts = [p.strip().lower() for p in cookie.split(";")]
    name, _, value = cookie.split(";")[0].partition("=")
    assert name == COOKIE
    assert len(value) >= 43  # 256 bits in base64url
    assert "httponly" in parts
    assert "secure" in parts
    assert "samesite=strict" in parts
    assert "path=/" in parts
    assert not any(p.startswith("domain") for p in parts)


def test_idle_timeout_is_enforced_by_the_server(server, alice) -> None:
    server.clock.advance(minutes=14)
    assert alice.http.get("/api/v1/me").status_code == 200
    server.clock.advance(minutes=14)
    assert alice.http.get("/api/v1/me").status_code == 200
    server.clock.advance(minutes=15, seconds=1)
    r = alice.http.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


def test_default_session_limits() -> None:
    from rxvault.server import Settings

    assert Settings().session_idle_seconds == 15 * 60
    assert Settings().session_absolute_seconds == 12 * 60 * 60


def test_absolute_timeout_is_enforced_by_the_server(make_server, patient_client) -> None:
    from rxvault.client import PatientClient

    from .conftest import PharmacySide

    srv = make_server(session_idle_seconds=120, session_absolute_seconds=600)
    side = PharmacySide(srv)
    side.register_key()
    client = PatientClient(http=srv.client())
    client.register(side.enroll("P1"), "alice", PASSWORD)
    for _ in range(9):  # active every 60 seconds, never idle, for 9 minutes
        srv.clock.advance(seconds=60)
        assert client.http.get("/api/v1/me").status_code == 200
    srv.clock.advance(seconds=60)
    assert client.http.get("/api/v1/me").status_code == 401


def test_logout_destroys_the_session(server, alice) -> None:
    cookie = alice.http.cookies.get(COOKIE)
    alice.logout()
    # Replaying the old cookie value does not work.
    alice.http.cookies.set(COOKIE, cookie, domain="portal.test")
    assert alice.http.get("/api/v1/me").status_code == 401


def test_sessions_are_listed_and_can_be_ended(server, alice, patient_client) -> None:
    phone = patient_client(address="198.51.100.7")
    phone.login("alice", PASSWORD)
    sessions = alice.sessions()
    assert len(sessions) == 2
    assert sum(s["current"] for s in sessions) == 1
    other = next(s for s in sessions if not s["current"])
    assert other["address"] == "198.51.100.7"
    alice.end_session(other["id"])
    assert phone.http.get("/api/v1/me").status_code == 401
    assert alice.http.get("/api/v1/me").status_code == 200
    with pytest.raises(ClientError) as info:
        alice.end_session("0" * 16)
    assert info.value.status == 404


def test_password_change_ends_other_sessions_and_rewraps(server, alice, patient_client):
    phone = patient_client()
    phone.login("alice", PASSWORD)
    old_cookie = alice.http.cookies.get(COOKIE)
    alice.change_password(PASSWORD, "a much better passphrase")
    assert alice.http.cookies.get(COOKIE) != old_cookie
    assert alice.http.get("/api/v1/me").status_code == 200
    assert phone.http.get("/api/v1/me").status_code == 401
    with pytest.raises(ClientError):
        patient_client().login("alice", PASSWORD)
    fresh = patient_client()
    fresh.login("alice", "a much better passphrase")
    assert fresh.unlocked is not None
    assert fresh.unlocked.private_key == alice.unlocked.private_key


def test_password_change_needs_the_current_password(server, alice) -> None:
    with pytest.raises(ClientError) as info:
        alice.change_password("not the password", "another passphrase")
    assert info.value.code == "invalid_credentials"
    assert alice.http.get("/api/v1/me").status_code == 200


def test_expired_sessions_are_not_listed_and_are_cleaned_up(server, alice, patient_client):
    phone = patient_client()
    phone.login("alice", PASSWORD)
    for _ in range(4):
        server.clock.advance(minutes=5)
        assert alice.http.get("/api/v1/me").status_code == 200
    assert [s["current"] for s in alice.sessions()] == [True]
    patient_client().login("alice", PASSWORD)  # a login drops the account's expired sessions
    with server.admin() as admin:
        from rxvault.server._models import Session

        assert admin.session.query(Session).count() == 2
