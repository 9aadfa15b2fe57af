"""Login rate limits per name and per address, stored in the database; the lock after 100
failures and its unlock; answers that never tell whether an account exists."""

from __future__ import annotations

import base64

import pytest

from rxvault.server import _ratelimit

PASSWORD = "correct horse battery staple"
WRONG_KEY = base64.urlsafe_b64encode(b"\1" * 32).rstrip(b"=").decode()


def _login(http, name: str, key: str = WRONG_KEY):
    return http.post("/api/v1/login", json={"username": name, "auth_key": key})


@pytest.fixture
def gina(server, pharmacy, patient_client):
    client = patient_client()
    client.register(pharmacy.enroll("P1"), "gina", PASSWORD)
    return client


def test_backoff_after_consecutive_failures_same_for_unknown_names(server, gina) -> None:
    seen = {}
    for name, address in (("gina", "203.0.113.1"), ("nobody", "203.0.113.2")):
        http = server.client(address)
        statuses = [_login(http, name).status_code for _ in range(_ratelimit.FREE_FAILURES)]
        blocked = _login(http, name)
        seen[name] = (
            statuses,
            blocked.status_code,
            blocked.json()["error"]["code"],
            blocked.headers.get("retry-after"),
        )
    assert seen["gina"] == seen["nobody"]
    statuses, status, code, retry_after = seen["gina"]
    assert statuses == [401] * _ratelimit.FREE_FAILURES
    assert (status, code) == (429, "too_many_attempts")
    assert int(retry_after) >= 1
    # After waiting, the right password works and resets the count.
    server.clock.advance(seconds=int(retry_after) + 1)
    gina.login("gina", PASSWORD)
    with server.admin() as admin:
        assert admin.session.get(_ratelimit.RateLimit, _ratelimit.name_key("gina")) is None


def test_lock_after_100_failures_until_the_pharmacy_unlocks(server, pharmacy, gina, patient_client):
    http = server.client("203.0.113.9")
    for _ in range(_ratelimit.LOCK_FAILURES):
        server.clock.advance(minutes=16)  # wait out each backoff (and the address window)
        assert _login(http, "gina").status_code == 401
    server.clock.advance(days=2)
    assert _login(http, "gina").status_code == 429
    with server.admin() as admin:
        assert admin.account("gina").locked_at is not None
    r = pharmacy.http.post(f"/api/v1/agent/accounts/{pharmacy.handle('P1')}/unlock", json={})
    assert r.json() == {"handle": pharmacy.handle("P1"), "was_locked": True}
    patient_client().login("gina", PASSWORD)


def test_admin_unlock_lifts_a_wait(server, gina, patient_client) -> None:
    http = server.client("203.0.113.10")
    for _ in range(_ratelimit.FREE_FAILURES):
        assert _login(http, "gina").status_code == 401
    assert _login(http, "gina").status_code == 429
    with server.admin() as admin:
        admin.unlock_account("gina")
    patient_client().login("gina", PASSWORD)


def test_per_address_limit(server, gina) -> None:
    http = server.client("203.0.113.50")
    for i in range(_ratelimit.ADDRESS_FREE_FAILURES):
        # Many different names from one address: each name stays under its own limit.
        assert _login(http, f"spray{i}").status_code == 401
    assert _login(http, "spray-last").status_code == 429
    # Another address is not affected.
    assert _login(server.client("203.0.113.51"), "spray-last").status_code == 401


def test_prelogin_answers_alike_for_unknown_names(server, gina) -> None:
    http = server.client()
    known = http.post("/api/v1/prelogin", json={"username": "gina"}).json()
    unknown = http.post("/api/v1/prelogin", json={"username": "nobody"}).json()
    again = http.post("/api/v1/prelogin", json={"username": "NOBODY"}).json()
    assert set(known) == set(unknown)
    assert known["kdf"] == unknown["kdf"]
    assert len(base64.urlsafe_b64decode(known["salt"] + "==")) == len(
        base64.urlsafe_b64decode(unknown["salt"] + "==")
    )
    assert unknown == again  # stable: repeated asks reveal nothing
