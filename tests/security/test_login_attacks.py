"""Harness 11, online guessing: brute force against one account (from a new address every try,
honouring every ``Retry-After`` as an optimal attacker would, over two days of the app's injected
clock) and credential stuffing across many names (from one address, and from many). The limits
hold; the right password is refused while a wait is running (no oracle); the legitimate users
get in once the wait or the lock clears.

``tests/server/test_login_limits.py`` checks each limit on its own; this is the attacker's view.
Short form in ``make test``; the long form (``pytest -m long``) stuffs
``RXVAULT_STUFFING_NAMES`` names (default 5000) from ``RXVAULT_STUFFING_ADDRESSES`` addresses
(default 200).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from rxvault.server import _ratelimit

from .conftest import PASSWORD, b64, unb64

WRONG = b64(b"\x01" * 32)


_HTTP: dict[int, object] = {}


def _login(server, address: str, name: str, key: str = WRONG):
    """A login from ``address`` (one in-process client per server, its peer address changed
    per request: a client each would start a thread each)."""
    http = _HTTP.get(id(server))
    if http is None or getattr(http, "server", None) is not server:
        http = server.client()
        http.server = server  # type: ignore[attr-defined]
        _HTTP[id(server)] = http
    http._transport._inner.client = (address, 50000)  # type: ignore[attr-defined]
    r = http.post("/api/v1/login", json={"username": name, "auth_key": key})
    http.cookies.clear()
    return r


@pytest.fixture
def victims(server, pharmacy, patient_client) -> dict[str, str]:
    """Three registered patients and their real auth keys (what a right guess sends)."""
    clients = []
    for i in range(3):
        c = patient_client(f"192.0.2.{100 + i}")
        c.register(pharmacy.enroll(f"V{i}"), f"victim{i}", PASSWORD)
        clients.append(c)
    keys = {}
    for i in range(3):
        pre = server.client().post("/api/v1/prelogin", json={"username": f"victim{i}"}).json()
        salt = unb64(pre["salt"])
        ((auth, _),) = [v for k, v in clients[i]._auth_cache.items() if k[1] == salt]
        keys[f"victim{i}"] = b64(auth)
    return keys


def _brute_force_against_one_account(server, pharmacy, victims) -> None:
    right = victims["victim0"]
    start = server.clock.now()
    evaluated: list[dt.datetime] = []
    refused_right = 0
    address = iter(range(1, 10**6))
    while True:
        r = _login(server, f"10.{next(address) // 250 % 250}.{next(address) % 250}.1", "victim0")
        if r.status_code == 401:
            evaluated.append(server.clock.now())
        else:
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "too_many_attempts"
            wait = int(r.headers["retry-after"])
            if len(evaluated) in (6, 40):
                # The right password during a wait: refused alike, so a guess cannot be tested.
                ok = _login(server, "10.250.0.1", "victim0", right)
                assert (ok.status_code, ok.headers.get("retry-after") is not None) == (429, True)
                refused_right += 1
            with server.admin() as admin:
                if admin.account("victim0").locked_at is not None:
                    break
            server.clock.advance(seconds=wait)
        assert server.clock.now() - start < dt.timedelta(days=3), len(evaluated)
    first_hour = [t for t in evaluated if t - start <= dt.timedelta(hours=1)]
    print(
        f"brute force: {len(evaluated)} guesses evaluated before the lock, "
        f"{len(first_hour)} in the first hour, lock after {server.clock.now() - start}"
    )
    assert len(evaluated) == _ratelimit.LOCK_FAILURES
    assert len(first_hour) <= 20
    assert server.clock.now() - start > dt.timedelta(hours=12)
    assert refused_right == 2
    # Locked: the right password is refused too, whatever the wait.
    server.clock.advance(days=7)
    assert _login(server, "10.251.0.1", "victim0", right).status_code == 429
    # The pharmacy lifts the lock: the patient gets in at once.
    r = pharmacy.http.post(f"/api/v1/agent/accounts/{pharmacy.handle('V0')}/unlock", json={})
    assert r.json()["was_locked"] is True
    assert _login(server, "192.0.2.100", "victim0", right).status_code == 200


def _stuff(server, victims, names: int, addresses: int, net: int = 16) -> dict[str, int]:
    """Try every name with one wrong key from a pool of addresses; the victims' names are in
    the list. Returns counts; each address waits whenever told to (it moves on to the next)."""
    listing = [f"leaked{i}@example.org" for i in range(names)]
    for j, name in enumerate(victims):  # the victims' names are spread over the list
        listing[j * names // len(victims)] = name
    counts = {"evaluated": 0, "told to wait": 0}
    for i, name in enumerate(listing):
        address = f"172.{net}.{i % addresses // 250}.{i % addresses % 250}"
        r = _login(server, address, name)
        if r.status_code == 401:
            counts["evaluated"] += 1
        else:
            assert r.status_code == 429
            counts["told to wait"] += 1
        server.clock.advance(seconds=1)
    return counts


def _credential_stuffing_across_many_names(server, victims) -> None:
    # From one address: after 30 failures within 15 minutes, every name waits, even right ones.
    counts = _stuff(server, victims, names=60, addresses=1)  # one a second
    # 30 free, then each wait twice the last: a handful more within the minute.
    assert (
        _ratelimit.ADDRESS_FREE_FAILURES
        < counts["evaluated"]
        <= (_ratelimit.ADDRESS_FREE_FAILURES + 6)
    )
    assert counts["told to wait"] >= 24
    while _login(server, "172.16.0.0", "one-more@example.org").status_code != 429:
        pass  # (at most one more failure: it starts a wait)
    r = _login(server, "172.16.0.0", "victim1", victims["victim1"])
    assert r.status_code == 429  # even a right password, while the address waits
    # A legitimate user elsewhere is not affected.
    assert _login(server, "192.0.2.101", "victim1", victims["victim1"]).status_code == 200
    # From many addresses (one guess per name each): no name is over its own limit, so the
    # owners get in at once; a name guessed again and again waits, then its owner gets in.
    counts = _stuff(server, victims, names=150, addresses=75, net=18)
    assert counts["told to wait"] == 0
    for name, key in victims.items():
        assert _login(server, "192.0.2.150", name, key).status_code == 200
    for i in range(8):
        _login(server, f"172.17.0.{i}", "victim2")
    r = _login(server, "192.0.2.102", "victim2", victims["victim2"])
    assert r.status_code == 429
    server.clock.advance(seconds=int(r.headers["retry-after"]))
    assert _login(server, "192.0.2.102", "victim2", victims["victim2"]).status_code == 200
    # The address that stuffed waits out its backoff, then is served again.
    while (r := _login(server, "172.16.0.0", "another@example.org")).status_code != 429:
        pass
    server.clock.advance(seconds=int(r.headers["retry-after"]))
    assert _login(server, "172.16.0.0", "victim1", victims["victim1"]).status_code == 200


def test_brute_force_then_credential_stuffing(server, pharmacy, victims) -> None:
    """One set of victims per database (each costs an Argon2id): the brute force locks
    victim0 and the pharmacy unlocks it; then the stuffing runs over all three."""
    _brute_force_against_one_account(server, pharmacy, victims)
    _credential_stuffing_across_many_names(server, victims)


@pytest.mark.long
def test_credential_stuffing_long(server, victims) -> None:
    names = int(os.environ.get("RXVAULT_STUFFING_NAMES", "5000"))
    addresses = int(os.environ.get("RXVAULT_STUFFING_ADDRESSES", "200"))
    counts = _stuff(server, victims, names=names, addresses=addresses)
    print(f"stuffing {names} names from {addresses} addresses: {counts}")
    assert counts["evaluated"] + counts["told to wait"] == names
    for name, key in victims.items():
        r = _login(server, "192.0.2.150", name, key)
        if r.status_code == 429:
            server.clock.advance(seconds=int(r.headers["retry-after"]))
            r = _login(server, "192.0.2.150", name, key)
        assert r.status_code == 200
