"""The whole protocol through the real app: pharmacy key, enrollment, registration, upload,
login, fetch and decrypt, on every database."""

from __future__ import annotations

import json

import httpx
import pytest

from rxvault import format as fmt
from rxvault.client import ClientError

PASSWORD = "correct horse battery staple"


def test_register_upload_login_fetch_decrypt(server, pharmacy, patient_client) -> None:
    code = pharmacy.enroll("P1001")
    alice = patient_client()
    account = alice.register(code, "Alice.Example", PASSWORD)
    assert account["username"] == "alice.example"
    assert account["handle"] == pharmacy.handle("P1001")
    assert alice.fetch().state == "pending"

    document = json.dumps({"patient": "Alice", "rx": ["amoxicillin 500 mg"]}).encode()
    batch_id, data = pharmacy.batch([pharmacy.block("P1001", document)])
    r = pharmacy.upload(batch_id, data)
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == [{"handle": pharmacy.handle("P1001"), "version": 1}]

    again = patient_client()
    again.login("alice.example", PASSWORD)
    records = again.fetch()
    assert records.state == "live"
    assert records.document == document
    assert records.version == 1


def test_batches_are_idempotent_and_versions_only_increase(server, pharmacy, patient_client):
    code = pharmacy.enroll("P1")
    patient_client().register(code, "bob", PASSWORD)
    v2 = pharmacy.block("P1", b'{"v": 2}', version=2)
    batch_id, data = pharmacy.batch([v2])
    first = pharmacy.upload(batch_id, data)
    assert first.status_code == 200
    replay = pharmacy.upload(batch_id, data)
    assert replay.status_code == 200
    assert replay.json() == first.json()

    # The same id with other bytes is refused.
    _, other = pharmacy.batch([pharmacy.block("P1", b'{"v": 3}', version=3)], batch_id=batch_id)
    conflict = pharmacy.upload(batch_id, other)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "batch_conflict"

    # An older or equal version is reported, not applied.
    old_id, old = pharmacy.batch([pharmacy.block("P1", b'{"v": 1}', version=1)])
    stale = pharmacy.upload(old_id, old).json()
    assert stale["applied"] == []
    assert stale["stale"] == [
        {"handle": pharmacy.handle("P1"), "version": 1, "current_version": 2, "kind": "block"}
    ]
    client = patient_client()
    client.login("bob", PASSWORD)
    assert client.fetch().document == b'{"v": 2}'


def test_wrong_password_and_unknown_user_look_the_same(server, pharmacy, patient_client):
    patient_client().register(pharmacy.enroll("P2"), "carol", PASSWORD)
    outcomes = []
    for name in ("carol", "nobody-here"):
        with pytest.raises(ClientError) as info:
            patient_client().login(name, "wrong password")
        outcomes.append((info.value.status, info.value.code, info.value.message))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][:2] == (401, "invalid_credentials")
    assert isinstance(fmt.DEFAULT_KDF, fmt.KdfParams)


class _ReplayingTransport(httpx.BaseTransport):
    """A hostile server: passes requests through, but can answer ``/me/block`` with an old,
    genuine answer it kept."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.last_block: bytes | None = None
        self.replay: bytes | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/me/block") and self.replay is not None:
            return httpx.Response(
                200,
                content=self.replay,
                headers={"Content-Type": "application/json"},
                request=request,
            )
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/me/block"):
            self.last_block = response.read()
        return response

    def close(self) -> None:
        self.inner.close()


def test_an_old_deletion_cannot_be_replayed_over_newer_records(server, pharmacy) -> None:
    from rxvault.client import PatientClient

    from .conftest import BASE_URL, InProcessTransport

    transport = _ReplayingTransport(InProcessTransport(server.app, "192.0.2.10"))
    client = PatientClient(http=httpx.Client(transport=transport, base_url=BASE_URL))
    try:
        client.register(pharmacy.enroll("P1"), "dora", PASSWORD)
        pharmacy.upload(*pharmacy.batch([pharmacy.block("P1", b'{"v": 1}')]))
        pharmacy.upload(*pharmacy.batch([], [pharmacy.tombstone("P1")]))
        deleted = client.fetch()
        assert (deleted.state, deleted.version) == ("deleted", 2)
        old_deletion = transport.last_block
        assert old_deletion is not None
        pharmacy.upload(*pharmacy.batch([pharmacy.block("P1", b'{"v": 3}')]))
        live = client.fetch()
        assert (live.state, live.version, live.document) == ("live", 3, b'{"v": 3}')

        # The server replays the genuine version 2 deletion in place of version 3.
        transport.replay = old_deletion
        with pytest.raises(ClientError) as info:
            client.fetch()
        assert info.value.code == "block_invalid"
        assert "version 2" in info.value.message
        assert "version 3" in info.value.message

        # A fresh client that knows version 3 from before refuses it too.
        pinned = PatientClient(http=httpx.Client(transport=transport, base_url=BASE_URL))
        pinned.min_version = 3
        transport.replay = None
        pinned.login("dora", PASSWORD)
        transport.replay = old_deletion
        with pytest.raises(ClientError, match="not newer"):
            pinned.fetch()

        # A genuine newer deletion is accepted, and again on the next fetch.
        transport.replay = None
        pharmacy.upload(*pharmacy.batch([], [pharmacy.tombstone("P1")]))
        assert (client.fetch().state, client.fetch().version) == ("deleted", 4)
        # After it, the older deletion is still refused.
        transport.replay = old_deletion
        with pytest.raises(ClientError, match="not newer"):
            client.fetch()
    finally:
        client.http.close()
